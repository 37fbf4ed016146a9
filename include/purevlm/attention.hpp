// SPDX-License-Identifier: MIT
// attention.hpp: causal multi-head attention with a product-kernel score. Each head of width D is
// split into m equal parts and score(q, k) = scale · Π_f (q_f · k_f): m = 1 with scale 1/√D is the
// usual dot product; m = 2 with scale 1/D is the seed's "tensor attention", a degree-4 kernel
// (q1⊗q2)·(k1⊗k2) with no extra parameters. (Not Zhang et al.'s "Tensor Product Attention",
// arXiv 2501.06425, a different method.) Derivation: docs/attention.md.
// Letters: Tq query rows, Tk key rows (Tk ≥ Tq: queries are the last Tq positions), C = H·D.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

#include "tape.hpp"

namespace purevlm {

// score(q, k) = scale · Π_{f < factors} (q_f · k_f)
struct attention_score {
  std::size_t factors = 2;
  double scale = 0.125;
  static attention_score dot(std::size_t D) { return {1, 1.0 / std::sqrt(double(D))}; }
  static attention_score tensor(std::size_t D, std::size_t m = 2) { return {m, 1.0 / double(D)}; }
};

namespace detail {
// The row stride of a transposed head: Tk rounded up to whole vectors, plus one vector so that
// rows are never a multiple of 4 KiB apart (at Tk = 1024 they all fell in one cache set).
inline std::size_t padded_keys(std::size_t Tk) { return (Tk + 7) / 8 * 8 + 8; }
}  // namespace detail

// What the forward saves for the backward: only each row's softmax max and 1/sum, stats[H, Tq, 2].
// The backward recomputes the scores from q and k (as FlashAttention does): the same multiply-adds
// again, instead of writing and reading back m + 1 arrays of [H, Tq, Tk] — the memory traffic
// that made the tensor score (m = 2 partial scores to keep) cost more than the dot score.
inline std::size_t attention_saved_size(std::size_t Tq, std::size_t H) { return 2 * H * Tq; }
// Scratch per call: K, V, dK and dV of one head transposed to [D, Tp] (so that every inner loop
// runs over key positions t, contiguous and vectorizable whatever D is), plus 2 + 2m rows of Tp;
// Tp = detail::padded_keys(Tk), its padding columns zeros.
inline std::size_t attention_scratch_size(std::size_t Tk, std::size_t D, std::size_t m) {
  return (4 * D + 2 + 2 * m) * detail::padded_keys(Tk);
}

namespace detail {
// Row loops run over w = n rounded up to a multiple of 8 (within Tk): whole vectors and no
// scalar tail. The extra keys get attention weight exactly 0, so they change no value or gradient.
inline std::size_t work_width(std::size_t n, std::size_t Tk) { return std::min(Tk, (n + 7) / 8 * 8); }
// dst[d, t] = src[t, d] for one head, [Tk, C] → [D, Tp], padding columns zeroed
template <std::floating_point T>
void head_transpose(T* dst, const T* src, std::size_t Tk, std::size_t C, std::size_t D) {
  const std::size_t Tp = padded_keys(Tk);
  transpose(dst, src, Tk, D, C, Tp);
  for (std::size_t d = 0; d < D; ++d) std::fill(dst + d * Tp + Tk, dst + (d + 1) * Tp, T(0));
}
// Scores of query q[D] against keys kT[D, Tp] at positions [0, w): a[t] = scale · Π_f part_f[t]
// with part_f[t] = q_f · k_f[t], stored at part[f·Tp + t] unless part is null. a and part are
// rows of Tp (whole vectors: stores may run past w). Blocks of c vectors of positions are
// accumulated in registers across d: each q[d] is broadcast once per block, and c independent
// chains of multiply-adds keep the FMA units busy. M > 0 fixes the number of factors at compile
// time, unrolled so that p and prod stay in registers; M = 0 takes m at run time.
template <std::size_t c, std::size_t M, std::floating_point T>
void product_scores_block(T* a, T* part, const T* q, const T* kT, std::size_t Tp, std::size_t t, std::size_t D,
                          std::size_t m_, T scale) {
  using V = typename simd<T>::type;
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  const std::size_t m = M ? M : m_, Dm = D / m;
  V prod[c], p[c], k;
  for (std::size_t j = 0; j < c; ++j) prod[j] = V{} + scale;
  auto factor = [&](std::size_t f) {
    for (std::size_t j = 0; j < c; ++j) p[j] = V{};
    for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d)
      for (std::size_t j = 0; j < c; ++j) {
        std::memcpy(&k, kT + d * Tp + t + j * L, sizeof k);
        p[j] += q[d] * k;
      }
    for (std::size_t j = 0; j < c; ++j) prod[j] *= p[j];
    if (part)
      for (std::size_t j = 0; j < c; ++j) std::memcpy(part + f * Tp + t + j * L, &p[j], sizeof(V));
  };
  if constexpr (M > 0) [&]<std::size_t... F>(std::index_sequence<F...>) { (factor(F), ...); }(std::make_index_sequence<M>{});
  else for (std::size_t f = 0; f < m; ++f) factor(f);
  for (std::size_t j = 0; j < c; ++j) std::memcpy(a + t + j * L, &prod[j], sizeof(V));
}
template <std::size_t M, std::floating_point T>
void product_scores_m(T* a, T* part, const T* q, const T* kT, std::size_t Tp, std::size_t w, std::size_t D,
                      std::size_t m, T scale) {
  constexpr std::size_t L = sizeof(typename simd<T>::type) / sizeof(T);
  std::size_t t = 0;
  for (; t + 4 * L <= w; t += 4 * L) product_scores_block<4, M>(a, part, q, kT, Tp, t, D, m, scale);
  for (; t < w; t += L) product_scores_block<1, M>(a, part, q, kT, Tp, t, D, m, scale);
}
template <std::floating_point T>
void product_scores(T* a, T* part, const T* q, const T* kT, std::size_t Tp, std::size_t w, std::size_t D,
                    std::size_t m, T scale) {
  if (m == 1) product_scores_m<1>(a, part, q, kT, Tp, w, D, m, scale);
  else if (m == 2) product_scores_m<2>(a, part, q, kT, Tp, w, D, m, scale);
  else product_scores_m<0>(a, part, q, kT, Tp, w, D, m, scale);
}
// a[0, w) ← softmax weights from a[t] = e^(score_t − max) for t < n: times inv = 1/Σ, and 0 from
// n on (the future: zero weight, so its gradients vanish too).
template <std::floating_point T>
void normalise(T* a, std::size_t n, std::size_t w, T inv) {
  for (std::size_t t = 0; t < n; ++t) a[t] *= inv;
  std::fill(a + n, a + w, T(0));
}
// out[0, c·L) += Σ_{t<n} a[t] · v[t·stride + (0, c·L)] for c vectors of L columns, kept in
// registers while t runs.
template <std::size_t c, std::floating_point T>
void weighted_rows_block(T* out, const T* a, const T* v, std::size_t n, std::size_t stride) {
  using V = typename simd<T>::type;
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  V acc[c] = {}, x;
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t j = 0; j < c; ++j) {
      std::memcpy(&x, v + t * stride + j * L, sizeof x);
      acc[j] += a[t] * x;
    }
  for (std::size_t j = 0; j < c; ++j) {
    std::memcpy(&x, out + j * L, sizeof x);
    x += acc[j];
    std::memcpy(out + j * L, &x, sizeof x);
  }
}
// out[0, D) += Σ_{t<n} a[t] · v[t·stride + (0, D)]: the weighted sum of value rows.
template <std::floating_point T>
void weighted_rows(T* out, const T* a, const T* v, std::size_t n, std::size_t stride, std::size_t D) {
  constexpr std::size_t L = sizeof(typename simd<T>::type) / sizeof(T);
  std::size_t d = 0;
  for (; d + 4 * L <= D; d += 4 * L) weighted_rows_block<4>(out + d, a, v + d, n, stride);
  for (; d + L <= D; d += L) weighted_rows_block<1>(out + d, a, v + d, n, stride);
  for (; d < D; ++d)
    for (std::size_t t = 0; t < n; ++t) out[d] += a[t] * v[t * stride + d];
}
}  // namespace detail

// out[Tq,C] = softmax(causal scores) · v per head; saves stats (see attention_saved_size).
template <std::floating_point T>
void attention_forward(std::span<T> out, std::span<T> saved, std::span<T> scratch, std::span<const T> q,
                       std::span<const T> k, std::span<const T> v, std::size_t Tq, std::size_t Tk, std::size_t C,
                       std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Tp = detail::padded_keys(Tk);
  T *stats = saved.data(), *kT = scratch.data(), *a = kT + D * Tp;
  std::fill(out.begin(), out.end(), T(0));
  for (std::size_t h = 0; h < H; ++h) {
    detail::head_transpose(kT, &k[h * D], Tk, C, D);
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t row = h * Tq + i, n = Tk - Tq + i + 1;  // causal: query i sees keys 0..n-1
      const std::size_t w = detail::work_width(n, Tk);
      detail::product_scores(a, static_cast<T*>(nullptr), &q[i * C + h * D], kT, Tp, w, D, m, T(score.scale));
      const T mx = detail::max_of(a, n);
      T* st = &stats[2 * row];
      st[0] = mx;
      st[1] = T(1) / detail::exp_sum(a, n, mx);
      detail::normalise(a, n, w, st[1]);
      detail::weighted_rows(&out[i * C + h * D], a, &v[h * D], n, C, D);
    }
  }
}

template <std::floating_point T>
void attention_backward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<T> scratch,
                        std::span<const T> dout, std::span<const T> saved, std::span<const T> q,
                        std::span<const T> k, std::span<const T> v, std::size_t Tq, std::size_t Tk, std::size_t C,
                        std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m, Tp = detail::padded_keys(Tk);
  const T sc = T(score.scale);
  const T* stats = saved.data();
  T *kT = scratch.data(), *vT = kT + D * Tp, *dkT = vT + D * Tp, *dvT = dkT + D * Tp, *a = dvT + D * Tp,
    *datt = a + Tp, *part = datt + Tp, *g = part + m * Tp;
  for (std::size_t h = 0; h < H; ++h) {
    detail::head_transpose(kT, &k[h * D], Tk, C, D);
    detail::head_transpose(vT, &v[h * D], Tk, C, D);
    std::fill(dkT, dkT + 2 * D * Tp, T(0));  // dkT and dvT
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t row = h * Tq + i, n = Tk - Tq + i + 1, w = detail::work_width(n, Tk);
      const T* doi = &dout[i * C + h * D];
      const T* qi = &q[i * C + h * D];
      // the forward's softmax row, recomputed the same way, keeping the partial scores this time
      detail::product_scores(a, m > 1 ? part : nullptr, qi, kT, Tp, w, D, m, sc);  // m = 1 needs no parts
      detail::exp_sum(a, n, stats[2 * row]);
      detail::normalise(a, n, w, stats[2 * row + 1]);
      detail::product_scores(datt, static_cast<T*>(nullptr), doi, vT, Tp, w, D, 1, T(1));  // ∂out_i/∂att_t = v_t
      for (std::size_t d = 0; d < D; ++d) detail::axpy(dvT + d * Tp, doi[d], a, w);  // ∂out_i/∂v_t = att_t
      const T s = detail::dot(a, datt, w);
      // softmax backward, times the scale: datt becomes d(score) · scale
      for (std::size_t t = 0; t < w; ++t) datt[t] = sc * (a[t] * (datt[t] - s));
      // g_f = ∂score/∂(q_f·k_f) · d(score) = scale · Π_{o≠f} part_o · d(score), one row per factor;
      // m = 1: datt itself; m = 2: each part times datt lands in the other's row, in one pass
      if (m == 2)
        for (std::size_t t = 0; t < w; ++t) {
          const T p0 = part[t], p1 = part[Tp + t];
          g[t] = datt[t] * p1;
          g[Tp + t] = datt[t] * p0;
        }
      else if (m > 2)
        for (std::size_t f = 0; f < m; ++f) {
          T* gf = g + f * Tp;
          std::copy(datt, datt + w, gf);
          for (std::size_t o = 0; o < m; ++o)
            if (o != f)
              for (std::size_t t = 0; t < w; ++t) gf[t] *= part[o * Tp + t];
        }
      for (std::size_t f = 0; f < m; ++f) {
        const T* gf = m == 1 ? datt : g + f * Tp;
        for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d) {
          dq[i * C + h * D + d] += detail::dot(gf, kT + d * Tp, w);  // dq_f += Σ_t g_t k_f[t]
          detail::axpy(dkT + d * Tp, qi[d], gf, w);                   // dk_f[t] += g_t q_f
        }
      }
    }
    for (std::size_t t = 0; t < Tk; ++t)
      for (std::size_t d = 0; d < D; ++d) {
        dk[t * C + h * D + d] += dkT[d * Tp + t];
        dv[t * C + h * D + d] += dvT[d * Tp + t];
      }
  }
}

// q[Tq,C] attends causally over k, v [Tk,C] (the queries are the last Tq of the Tk positions).
template <std::floating_point T>
var attention(basic_tape<T>& t, var q, var k, var v, std::size_t H, attention_score score) {
  const std::size_t Tq = t.rows(q), Tk = t.rows(k), C = t.cols(q);
  t.require(t.cols(k) == C && t.cols(v) == C && t.rows(v) == Tk && Tk >= Tq, "attention",
            "q[Tq,C], k[Tk,C], v[Tk,C] with Tk >= Tq", {q, k, v});
  if (H == 0 || C % H != 0 || score.factors == 0 || (C / H) % score.factors != 0)
    throw error("attention: " + std::to_string(C) + " channels do not split into " + std::to_string(H) +
                " heads of " + std::to_string(score.factors) + " equal parts");
  var y = t.make(Tq, C, {q, k, v}, [](basic_tape<T>& t, const auto& n) {
    var q = t.input_of(n, 0), k = t.input_of(n, 1), v = t.input_of(n, 2);
    const std::size_t Tq = n.rows, Tk = t.rows(k), H = n.p[0], m = n.p[1], S = attention_saved_size(Tq, H);
    auto saved = t.saved(n, S + attention_scratch_size(Tk, n.cols / H, m));
    attention_backward<T>(t.grad(q), t.grad(k), t.grad(v), saved.subspan(S), t.grad(n), saved.first(S), t.value(q),
                          t.value(k), t.value(v), Tq, Tk, n.cols, H, {m, double(n.c[0])});
  });
  t.at(y).p[0] = H;
  t.at(y).p[1] = score.factors;
  t.at(y).c[0] = T(score.scale);
  const std::size_t S = attention_saved_size(Tq, H);
  auto saved = t.save(y, S + attention_scratch_size(Tk, C / H, score.factors));
  attention_forward<T>(t.value(y), saved.first(S), saved.subspan(S), t.value(q), t.value(k), t.value(v), Tq, Tk, C,
                       H, score);
  return y;
}

// Keys and values of the positions seen so far, per layer, for incremental decoding.
template <std::floating_point T>
struct basic_kv_cache {
  std::vector<std::vector<T>> k, v;  // [layer][positions · C]
  std::size_t positions = 0;
  void clear() {
    for (auto& x : k) x.clear();
    for (auto& x : v) x.clear();
    positions = 0;
  }
};

}  // namespace purevlm

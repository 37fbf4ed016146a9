// SPDX-License-Identifier: MIT
// attention.hpp: causal multi-head attention with a product-kernel score. Each head of width D is
// split into m equal parts and score(q, k) = scale · Π_f (q_f · k_f): m = 1 with scale 1/√D is the
// usual dot product; m = 2 with scale 1/D is the seed's "tensor attention", a degree-4 kernel
// (q1⊗q2)·(k1⊗k2) with no extra parameters. (Not Zhang et al.'s "Tensor Product Attention",
// arXiv 2501.06425, a different method.) Derivation: docs/attention.md.
// Letters: Tq query rows, Tk key rows (Tk ≥ Tq: queries are the last Tq positions), C = H·D.
#pragma once

#include <cmath>
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

// Scratch the kernels need per call: K, V and dK of one head transposed to [D, Tk] (so that
// every inner loop runs over key positions t, contiguous and vectorizable whatever D is), plus
// two rows of Tk.
inline std::size_t attention_scratch_size(std::size_t Tk, std::size_t D) { return 3 * D * Tk + 2 * Tk; }

namespace detail {
// Row loops run over w = n rounded up to a multiple of 8 (within Tk): whole vectors and no
// scalar tail. The extra keys get attention weight exactly 0, so they change no value or gradient.
inline std::size_t work_width(std::size_t n, std::size_t Tk) { return std::min(Tk, (n + 7) / 8 * 8); }
// dst[d, t] = src[t, offset + d] for one head: [Tk, C] → [D, Tk]
template <std::floating_point T>
void head_transpose(T* dst, std::span<const T> src, std::size_t Tk, std::size_t C, std::size_t offset, std::size_t D) {
  for (std::size_t t = 0; t < Tk; ++t)
    for (std::size_t d = 0; d < D; ++d) dst[d * Tk + t] = src[t * C + offset + d];
}
}  // namespace detail

// out[Tq,C]; saves att[H,Tq,Tk] (the softmax; only t ≤ the causal limit is written) and, for
// m ≥ 2, part[m,H,Tq,Tk] (each factor's partial score q_f·k_f, needed for the product rule).
template <std::floating_point T>
void attention_forward(std::span<T> out, std::span<T> att, std::span<T> part, std::span<T> scratch,
                       std::span<const T> q, std::span<const T> k, std::span<const T> v, std::size_t Tq,
                       std::size_t Tk, std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m, HQK = H * Tq * Tk;
  const T sc = T(score.scale);
  T* kT = scratch.data();
  std::fill(out.begin(), out.end(), T(0));
  for (std::size_t h = 0; h < H; ++h) {
    detail::head_transpose(kT, k, Tk, C, h * D, D);
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t n = Tk - Tq + i + 1;  // causal: query i sees keys 0..n-1
      const std::size_t w = detail::work_width(n, Tk);
      const T* qi = &q[i * C + h * D];
      T* a = &att[(h * Tq + i) * Tk];  // entries past w are never read
      if (m == 1) {  // dot score: a[t] = scale · q·k[t], no partial scores to keep
        std::fill(a, a + w, T(0));
        for (std::size_t d = 0; d < D; ++d) detail::axpy(a, sc * qi[d], kT + d * Tk, w);
      } else {
        std::fill(a, a + w, sc);
        for (std::size_t f = 0; f < m; ++f) {  // part_f[t] = q_f · k_f[t], vectorized over t
          T* pf = &part[f * HQK + (h * Tq + i) * Tk];
          std::fill(pf, pf + w, T(0));
          for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d) detail::axpy(pf, qi[d], kT + d * Tk, w);
          for (std::size_t t = 0; t < w; ++t) a[t] *= pf[t];  // score = scale · Π_f part_f
        }
      }
      const T mx = *std::max_element(a, a + n);
      T sum = 0;
      for (std::size_t t = 0; t < n; ++t) sum += (a[t] = std::exp(a[t] - mx));
      const T inv = T(1) / sum;
      for (std::size_t t = 0; t < n; ++t) a[t] *= inv;
      std::fill(a + n, a + w, T(0));  // the future: zero weight, so its gradients vanish too
      T* oi = &out[i * C + h * D];
      for (std::size_t t = 0; t < n; ++t) detail::axpy(oi, a[t], &v[t * C + h * D], D);
    }
  }
}

template <std::floating_point T>
void attention_backward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<T> scratch,
                        std::span<const T> dout, std::span<const T> att, std::span<const T> part,
                        std::span<const T> q, std::span<const T> k, std::span<const T> v, std::size_t Tq,
                        std::size_t Tk, std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m, HQK = H * Tq * Tk;
  const T sc = T(score.scale);
  T *kT = scratch.data(), *vT = kT + D * Tk, *dkT = vT + D * Tk, *datt = dkT + D * Tk, *g = datt + Tk;
  for (std::size_t h = 0; h < H; ++h) {
    detail::head_transpose(kT, k, Tk, C, h * D, D);
    detail::head_transpose(vT, v, Tk, C, h * D, D);
    std::fill(dkT, dkT + D * Tk, T(0));
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t n = Tk - Tq + i + 1, w = detail::work_width(n, Tk);
      const T* a = &att[(h * Tq + i) * Tk];
      const T* doi = &dout[i * C + h * D];
      const T* qi = &q[i * C + h * D];
      std::fill(datt, datt + w, T(0));
      for (std::size_t d = 0; d < D; ++d) detail::axpy(datt, doi[d], vT + d * Tk, w);  // ∂out_i/∂att_t = v_t
      for (std::size_t t = 0; t < n; ++t) detail::axpy(&dv[t * C + h * D], a[t], doi, D);  // ∂out_i/∂v_t = att_t
      const T s = detail::dot(a, datt, w);
      for (std::size_t t = 0; t < w; ++t) datt[t] = a[t] * (datt[t] - s);  // now d(score): softmax backward
      for (std::size_t f = 0; f < m; ++f) {
        // ∂score/∂(q_f·k_f) = scale · Π_{o≠f} part_o; for m = 2: ds1 = dscore · s2 / D
        for (std::size_t t = 0; t < w; ++t) g[t] = datt[t] * sc;
        for (std::size_t o = 0; o < m; ++o)
          if (o != f) {
            const T* po = &part[o * HQK + (h * Tq + i) * Tk];
            for (std::size_t t = 0; t < w; ++t) g[t] *= po[t];
          }
        for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d) {
          dq[i * C + h * D + d] += detail::dot(g, kT + d * Tk, w);  // dq_f += Σ_t g_t k_f[t]
          detail::axpy(dkT + d * Tk, qi[d], g, w);                   // dk_f[t] += g_t q_f
        }
      }
    }
    for (std::size_t t = 0; t < Tk; ++t)
      for (std::size_t d = 0; d < D; ++d) dk[t * C + h * D + d] += dkT[d * Tk + t];
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
    const std::size_t Tq = n.rows, Tk = t.rows(k), H = n.p[0], m = n.p[1], HQK = H * Tq * Tk;
    const std::size_t parts = m > 1 ? m * HQK : 0;
    auto saved = t.saved(n, HQK + parts + attention_scratch_size(Tk, n.cols / H));
    attention_backward<T>(t.grad(q), t.grad(k), t.grad(v), saved.subspan(HQK + parts), t.grad(n),
                          saved.first(HQK), saved.subspan(HQK, parts), t.value(q), t.value(k), t.value(v),
                          Tq, Tk, n.cols, H, {m, double(n.c[0])});
  });
  t.at(y).p[0] = H;
  t.at(y).p[1] = score.factors;
  t.at(y).c[0] = T(score.scale);
  const std::size_t HQK = H * Tq * Tk, parts = score.factors > 1 ? score.factors * HQK : 0;
  auto saved = t.save(y, HQK + parts + attention_scratch_size(Tk, C / H));
  attention_forward<T>(t.value(y), saved.first(HQK), saved.subspan(HQK, parts), saved.subspan(HQK + parts), t.value(q),
                       t.value(k), t.value(v), Tq, Tk, C, H, score);
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

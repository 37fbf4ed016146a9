// SPDX-License-Identifier: MIT
// attention.hpp: causal multi-head attention with a product-kernel score. Each head of width D is
// split into m equal parts and score(q, k) = scale · Π_f (q_f · k_f): m = 1 with scale 1/√D is the
// usual dot product; m = 2 with scale 1/D is the seed's "tensor attention", a degree-4 kernel
// (q1⊗q2)·(k1⊗k2) with no extra parameters. (Not Zhang et al.'s "Tensor Product Attention",
// arXiv 2501.06425, a different method.) Derivation: docs/attention.md.
// Letters: Tq query rows, Tk key rows (Tk ≥ Tq: queries are the last Tq positions), C = H·D.
#pragma once

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "tape.hpp"

namespace purevlm {

enum class score_kind { dot, tensor };

// score(q, k) = scale · Π_{f < factors} (q_f · k_f)
struct attention_score {
  std::size_t factors = 2;
  double scale = 0.125;
  // dot: m = 1, scale 1/√D; tensor: m factors (2 unless told), scale 1/D
  static attention_score of(score_kind kind, std::size_t D, std::size_t m = 2) {
    return kind == score_kind::dot ? attention_score{1, 1.0 / std::sqrt(double(D))} : attention_score{m, 1.0 / double(D)};
  }
};

// ---- the plain kernels: the formulas as written, one query and one key at a time ----
// The tests' oracle for the fast kernels below, and the text to read first. Per head, query i
// sees keys t < n_i = Tk − Tq + i + 1:
//   s_f(t) = q_f · k_f(t),  score(t) = scale · Π_f s_f(t),  a = softmax(score),  out_i = Σ_t a_t v_t
// and backward (docs/attention.md derives it):
//   da_t = dout_i · v_t,  dv_t += a_t dout_i,  dscore_t = a_t (da_t − Σ_u a_u da_u)
//   g_f(t) = dscore_t · scale · Π_{o≠f} s_o(t),  dq_f += Σ_t g_f(t) k_f(t),  dk_f(t) += g_f(t) q_f
namespace detail {
// One query's softmax weights a[0, n) over keys k (one head: rows C apart, D wide), keeping the
// partial scores s_f(t) at s[f·stride + t].
template <std::floating_point T>
void plain_weights(T* a, T* s, std::size_t stride, const T* qi, const T* k, std::size_t n, std::size_t C,
                   std::size_t D, attention_score score) {
  const std::size_t m = score.factors, Dm = D / m;
  T mx = -INFINITY, sum = 0;
  for (std::size_t t = 0; t < n; ++t) {
    a[t] = T(score.scale);
    for (std::size_t f = 0; f < m; ++f) {
      T sf = 0;
      for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d) sf += qi[d] * k[t * C + d];
      s[f * stride + t] = sf;
      a[t] *= sf;
    }
    mx = std::max(mx, a[t]);
  }
  for (std::size_t t = 0; t < n; ++t) sum += (a[t] = std::exp(a[t] - mx));
  for (std::size_t t = 0; t < n; ++t) a[t] /= sum;
}
}  // namespace detail

template <std::floating_point T>
void attention_plain(std::span<T> out, std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<const T> dout,
                     std::span<const T> q, std::span<const T> k, std::span<const T> v, std::size_t Tq,
                     std::size_t Tk, std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m;
  const bool backward = !dout.empty();  // else forward only: out = attention(q, k, v)
  std::vector<T> s(m * Tk), a(Tk), da(Tk);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t n = Tk - Tq + i + 1;
      const T* qi = &q[i * C + h * D];
      auto key = [&](std::size_t t) { return &k[t * C + h * D]; };
      auto value = [&](std::size_t t) { return &v[t * C + h * D]; };
      detail::plain_weights(a.data(), s.data(), Tk, qi, key(0), n, C, D, score);
      if (!backward) {
        for (std::size_t d = 0; d < D; ++d) {
          T o = 0;
          for (std::size_t t = 0; t < n; ++t) o += a[t] * value(t)[d];
          out[i * C + h * D + d] = o;
        }
        continue;
      }
      const T* doi = &dout[i * C + h * D];
      T dot_a_da = 0;
      for (std::size_t t = 0; t < n; ++t) {
        da[t] = 0;
        for (std::size_t d = 0; d < D; ++d) da[t] += doi[d] * value(t)[d];
        for (std::size_t d = 0; d < D; ++d) dv[t * C + h * D + d] += a[t] * doi[d];
        dot_a_da += a[t] * da[t];
      }
      for (std::size_t t = 0; t < n; ++t) {
        const T dscore = a[t] * (da[t] - dot_a_da);
        for (std::size_t f = 0; f < m; ++f) {
          T g = dscore * T(score.scale);
          for (std::size_t o = 0; o < m; ++o)
            if (o != f) g *= s[o * Tk + t];
          for (std::size_t d = f * Dm; d < (f + 1) * Dm; ++d) {
            dq[i * C + h * D + d] += g * key(t)[d];
            dk[t * C + h * D + d] += g * qi[d];
          }
        }
      }
    }
}

// The weights themselves, w[H, Tq, Tk] (0 for the future): what each query attends to. For
// pictures and tests; the kernels never build this array.
template <std::floating_point T>
std::vector<T> attention_weights(std::span<const T> q, std::span<const T> k, std::size_t Tq, std::size_t Tk,
                                 std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H;
  std::vector<T> w(H * Tq * Tk, T(0)), s(score.factors * Tk);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i)
      detail::plain_weights(&w[(h * Tq + i) * Tk], s.data(), Tk, &q[i * C + h * D], &k[h * D], Tk - Tq + i + 1, C, D, score);
  return w;
}

// ---- the fast kernels: the same sums, as blocks of matrix products ----
// Every multiply-add above is a product of matrices once queries and keys are taken in blocks:
// the scores of rows i.. against keys t.. are Q·Kᵀ (per factor: Q_f·K_fᵀ), the outputs P·V, and
// the backward's da = dO·Vᵀ, dV += Pᵀ·dO, dQ_f += G_f·K_f, dK_f += G_fᵀ·Q_f. Each runs through
// detail::gemm (register-tiled, near the FMA peak; the factors' scores and their product through
// its form detail::gemm_product); what remains between them is elementwise (the softmax, the
// gradients of the factors) on tiles small enough to stay in the L1/L2 caches.
//
// Forward: 8 query rows at a time against all the keys they may see (the row's scores kept whole,
// so the softmax needs no rescaling); it saves each row's max and 1/Σ, two numbers.
// Backward (FlashAttention-2's order): key blocks outside, query blocks inside, 64 × 64 tiles;
// the weights are rebuilt from the saved statistics, and Σ_u a_u da_u = dout_i · out_i, so no
// tile needs a whole row. Tiles entirely in the causal future are skipped.
namespace detail {
inline constexpr std::size_t attention_rows = 8;   // forward: query rows per block
inline constexpr std::size_t attention_tile = 64;  // backward: queries × keys per tile
// The row stride of a transposed head: Tk rounded up to whole vectors, plus one vector so that
// rows are never a multiple of 4 KiB apart (at Tk = 1024 they all fell in one cache set).
inline std::size_t padded_keys(std::size_t Tk) { return (Tk + 15) / 16 * 16 + 16; }
// p moved up to the next 64-byte boundary (a cache line): a 64-byte vector read or written across
// two lines costs two accesses, and heap blocks start 16 bytes past one. The scratch has room.
template <class T>
T* cache_aligned(T* p) {
  return p + (64 - reinterpret_cast<std::uintptr_t>(p) % 64) % 64 / sizeof(T);
}
// dst[d, t] = src[t, d] for one head, [Tk, C] → [D, Tp], padding columns zeroed
template <std::floating_point T>
void head_transpose(T* dst, const T* src, std::size_t Tk, std::size_t C, std::size_t D) {
  const std::size_t Tp = padded_keys(Tk);
  transpose(dst, src, Tk, D, C, Tp);
  for (std::size_t d = 0; d < D; ++d) std::fill(dst + d * Tp + Tk, dst + (d + 1) * Tp, T(0));
}
// Long heads have their rows copied out, D apart (the forward's V; the backward's Q, dO and dQ).
// In place, as columns of [T, C], a head's rows are C apart, 1 KiB at H·D = 256, and the 64 rows
// of a block then fall in a quarter of L1's sets and evict each other (D = 64: forward + backward
// run 0.89-0.93× the time with them copied at T = 1024, 0.92-0.93× at 512). Short heads stay in
// place: their blocks fit L1 anyway, and the copies cost more than they save (T = 36: 1.12×).
// (The copies are slice_forward's column slices; dQ goes back with concat_forward.)
inline constexpr std::size_t copied_rows = 256;  // a head with this many queries or more is copied
// a[0, w) ← softmax weights from a[t] = e^(score_t − max): times inv = 1/Σ for t < n, and 0 from
// n on (the causal future: zero weight, so its gradients vanish too).
template <std::floating_point T>
void normalise(T* a, std::size_t n, std::size_t w, T inv) {
  for (std::size_t t = 0; t < n; ++t) a[t] *= inv;
  std::fill(a + n, a + w, T(0));
}

// One query row against keys 0..n-1 in every head, in floats, D a multiple of 8: the decoding
// step (and training's few text rows), where the row-by-row gemms above were mostly call and
// remainder overhead. The same sums in the same order as those gemms — each factor s_f over d,
// each output over t — though not always the same bits: GCC fuses these multiply-adds, and not
// those of the gemm's one-row tiles. Scores take eight keys at a time, read in place and
// transposed in registers (vertical multiply-adds, no copy of K per step); out = Σ_t a_t v_t runs
// four vectors of columns side by side, so that the heads' chains overlap instead of each waiting
// on its last step. Head h's weights go to a + h·lda (0 from n to n rounded up to 8), its
// statistics to st + h·ld_st.
inline void decode_row(float* out, float* a, std::size_t lda, float* st, std::size_t ld_st, const float* q,
                       const float* k, const float* v, std::size_t n, std::size_t C, std::size_t H,
                       attention_score score) {
  using V = simd<float>::type;
  const std::size_t D = C / H, Dm = D / score.factors, n8 = (n + 7) / 8 * 8;
  const float scale = float(score.scale);
  for (std::size_t h = 0; h < H; ++h) {
    float* ah = a + h * lda;
    for (std::size_t t0 = 0; t0 < n; t0 += 8) {  // scores, eight keys at a time
      V x[8], s = {}, product = {};
      std::size_t in_factor = 0;  // dims of the current factor summed so far
      for (std::size_t c = h * D; c < (h + 1) * D; c += 8) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 8; ++j) {  // x[j] = key t0 + j (0 past n), then x[d] = dim c + d
          x[j] = V{};
          if (t0 + j < n) std::memcpy(&x[j], k + (t0 + j) * C + c, sizeof(V));
        }
        transpose8x8(x);
        for (std::size_t j = 0; j < 8; ++j) {
          s += q[c + j] * x[j];  // s_f = q_f · k_f
          if (++in_factor == Dm) {  // factor f is complete
            product = c + j + 1 == h * D + Dm ? s : product * s;
            s = V{};
            in_factor = 0;
          }
        }
      }
      std::memcpy(ah + t0, &product, sizeof product);
    }
    st[h * ld_st] = scale * max_of(ah, n);
  }
  for (std::size_t h = 0; h < H; ++h) {
    float* sh = st + h * ld_st;
    sh[1] = 1.0f / exp_sum(a + h * lda, n, sh[0], scale);
    normalise(a + h * lda, n, n8, sh[1]);
  }
  for (std::size_t c0 = 0; c0 < C; c0 += 32) {  // out = Σ_t a_t v_t, four vectors of columns at a time
    const std::size_t u_n = std::min<std::size_t>(4, (C - c0) / 8);
    const float* w[4] = {};
    V acc[4] = {};
    for (std::size_t u = 0; u < u_n; ++u) w[u] = a + (c0 + 8 * u) / D * lda;  // their heads' weights
    for (std::size_t t = 0; t < n; ++t)
#pragma GCC unroll 4
      for (std::size_t u = 0; u < 4; ++u)
        if (u < u_n) {
          V x;
          std::memcpy(&x, v + t * C + c0 + 8 * u, sizeof x);
          acc[u] += w[u][t] * x;
        }
    for (std::size_t u = 0; u < u_n; ++u) std::memcpy(out + c0 + 8 * u, &acc[u], sizeof(V));
  }
}

// The short heads' kernels below (width 8, floats) keep keys across a vector's lanes.
// short_products: x[r][f] += Σ_{d in factor f} a_r[d]·B[d] for R rows a_r of 8 and the vectors
// B[d] at b + d·ld: a row's factor scores against a vector of keys (b: K transposed), or with
// M = 1 its dot products with a vector of values.
template <std::size_t M, std::size_t R, class W>
void short_products(W (&x)[R][M], const float* const (&a)[R], const float* b, std::size_t ld) {
  W bd;
#pragma GCC unroll 8
  for (std::size_t d = 0; d < 8; ++d) {
    std::memcpy(&bd, b + d * ld, sizeof bd);
    for (std::size_t r = 0; r < R; ++r) x[r][d * M / 8] += a[r][d] * bd;
  }
}

// The forward of one head of width 8 in floats (the seed's heads), score factors M = 1 or 2, query
// rows two at a time, keys across a vector's lanes (kT, vT: the head transposed, rows Tp apart):
// first each row's scores Π_f s_f into S (rows Tp apart) and their max, then e = e^(scale·score −
// max) with Σ e and Σ_t e_t v_t side by side, the lanes summed at the end: out = Σ e v / Σ e. The
// tiles' P·V product at this width is one 32-byte vector of columns, half AVX-512's; here every
// multiply-add is 16 keys wide. Saves the same max and 1/Σ (st, two per row), sums in another order.
template <std::size_t M>
void short_head_forward(float* out, float* st, float* S, const float* q, const float* kT, const float* vT,
                        std::size_t Tp, std::size_t Tq, std::size_t Tk, std::size_t C, float scale) {
  using W = wide_simd<float>::type;
  using V = simd<float>::type;
  constexpr std::size_t D = 8, L = sizeof(W) / sizeof(float), R = 2;
  using I [[gnu::vector_size(sizeof(W))]] = std::int32_t;
  I lane = {};  // 0, 1, 2, …: masks the keys past a row's last
  for (std::size_t l = 0; l < L; ++l) lane[l] = std::int32_t(l);
  for (std::size_t i = 0; i < Tq; i += R) {  // rows i, i + 1 (the last row twice if Tq is odd)
    std::size_t n[R];  // keys row i + r sees
    const float* qr[R];
    for (std::size_t r = 0; r < R; ++r) {
      n[r] = Tk - Tq + std::min(i + r, Tq - 1) + 1;
      qr[r] = q + std::min(i + r, Tq - 1) * C;
    }
    W top[R];
    for (W& x : top) x = W{} - std::numeric_limits<float>::infinity();
    for (std::size_t t = 0; t < n[R - 1]; t += L) {
      W s[R][M] = {};
      short_products(s, qr, kT + t, Tp);
      for (std::size_t r = 0; r < R; ++r) {
        const W x = M == 1 ? s[r][0] : s[r][0] * s[r][M - 1];
        std::memcpy(S + r * Tp + t, &x, sizeof x);
        top[r] = lane < std::int32_t(n[r]) - std::int32_t(t) && x > top[r] ? x : top[r];
      }
    }
    float mx[R];
    W sum[R] = {}, acc[R][D] = {};
    // scale > 0: the max of the scaled scores. (A loop, not max_of: with that inlined here GCC
    // laid this kernel out otherwise, and T = 1024 ran 1.14-1.26x slower.)
    for (std::size_t r = 0; r < R; ++r) {
      mx[r] = top[r][0];
      for (std::size_t l = 1; l < L; ++l) mx[r] = top[r][l] > mx[r] ? top[r][l] : mx[r];
      mx[r] *= scale;
    }
    for (std::size_t t = 0; t < n[R - 1]; t += L) {
      W e[R], vd;
      for (std::size_t r = 0; r < R; ++r) {
        std::memcpy(&e[r], S + r * Tp + t, sizeof(W));
        e[r] = e[r] * scale - mx[r];
      }
      exp_in_place(e);
      for (std::size_t r = 0; r < R; ++r) {
        e[r] = lane < std::int32_t(n[r]) - std::int32_t(t) ? e[r] : W{};
        sum[r] += e[r];
      }
#pragma GCC unroll 8
      for (std::size_t d = 0; d < D; ++d) {
        std::memcpy(&vd, vT + d * Tp + t, sizeof vd);
        for (std::size_t r = 0; r < R; ++r) acc[r][d] += e[r] * vd;
      }
    }
    for (std::size_t r = 0; r < R && i + r < Tq; ++r) {
      float total = 0;
      for (std::size_t l = 0; l < L; ++l) total += sum[r][l];
      const float inv = 1.0f / total;
      V o;
      lane_sums(o, acc[r]);
      o *= inv;
      std::memcpy(out + (i + r) * C, &o, sizeof o);
      st[2 * (i + r)] = mx[r];
      st[2 * (i + r) + 1] = inv;
    }
  }
}

// The backward of one head of width 8 in floats (the seed's heads: one 32-byte vector), score
// factors M = 1 or 2, in one sweep. At this width each of the tiles' products above is a few
// multiply-adds per element, too few to pay for writing its result and reading it back in the next
// pass. Keys run across a vector's lanes, in tiles of short_keys keys; inside, the query rows that
// see a key of the tile, two at a time, and per vector of their keys
//   s_f = Σ_{d in f} q_d kT_d,  p = e^(scale·Π_f s_f − lse_i),  g = scale·p·(dO·vT − δ_i),
//   g_f = g·Π_{o≠f} s_o,  dvT_d += p dO_d,  dkT_d += g_f q_d,  dq_d += Σ_lanes g_f kT_d
// (d in factor f; p = 0 in the lanes of the causal future): p and g_f first for all the pair's
// keys, then their products (one loop doing both ran 1.2× slower: each vector's products wait on
// its exponential, and the core ran out of room to start the next ones). kT, vT, dkT, dvT are the
// tile's, transposed, [8, short_keys] each in acc (64-byte aligned), the gradients added to dk and
// dv when the tile is done; dq's lanes are summed once per row and tile. Every sum has the plain
// kernel's terms, in another order.
inline constexpr std::size_t short_keys = 128;
template <std::size_t M>
void short_head_backward(float* dq, float* dk, float* dv, float* acc, const float* dout, const float* q,
                         const float* k, const float* v, const float* delta, const float* lse, std::size_t Tq,
                         std::size_t Tk, std::size_t C, float scale) {
  using W = wide_simd<float>::type;
  using V = simd<float>::type;
  constexpr std::size_t D = 8, L = sizeof(W) / sizeof(float), Bk = short_keys, R = 2;
  using I [[gnu::vector_size(sizeof(W))]] = std::int32_t;
  I lane = {};  // 0, 1, 2, …: masks the keys past a row's last
  for (std::size_t l = 0; l < L; ++l) lane[l] = std::int32_t(l);
  // the tile's keys, values and their gradients, [D, Bk] (rows a constant stride apart: one address
  // register per array), then p and g_f of a row pair, [R, M + 1, Bk]
  constexpr std::size_t Ba = D * Bk;
  float *kT = acc, *vT = acc + Ba, *dkT = acc + 2 * Ba, *dvT = acc + 3 * Ba, *pg = acc + 4 * Ba;
  auto slot = [&](std::size_t r, std::size_t j) { return pg + (r * (M + 1) + j) * Bk; };  // j 0: p, f + 1: g_f
  static_assert(4 * Ba + R * (M + 1) * Bk <= 3 * attention_tile * attention_tile, "within the backward's scratch");
  for (std::size_t j0 = 0; j0 < Tk; j0 += Bk) {
    const std::size_t c = std::min(Bk, Tk - j0);
    std::fill(acc, acc + 4 * Ba, 0.0f);
    transpose(kT, k + j0 * C, c, D, C, Bk);
    transpose(vT, v + j0 * C, c, D, C, Bk);
    for (std::size_t i = j0 + Tq > Tk ? j0 + Tq - Tk : 0; i < Tq; i += R) {  // rows i, i + 1
      std::size_t n[R], row[R];  // the tile's keys each row sees (0: no row, past Tq)
      const float *qr[R], *dr[R];
      for (std::size_t r = 0; r < R; ++r) {
        row[r] = std::min(i + r, Tq - 1);
        n[r] = i + r < Tq ? std::min(c, Tk - Tq + i + r + 1 - j0) : 0;
        qr[r] = q + row[r] * C;
        dr[r] = dout + row[r] * C;
      }
      const std::size_t w = std::max(n[0], n[R - 1]);
      for (std::size_t t = 0; t < w; t += L) {  // first p and g_f of the pair's scores, into pg
        W s[R][M] = {}, da[R][1] = {}, e[R];
        short_products(s, qr, kT + t, Bk);
        short_products(da, dr, vT + t, Bk);
        for (std::size_t r = 0; r < R; ++r) e[r] = (M == 1 ? s[r][0] : s[r][0] * s[r][M - 1]) * scale - lse[row[r]];
        exp_in_place(e);
        for (std::size_t r = 0; r < R; ++r) {
          const W p = lane < std::int32_t(n[r]) - std::int32_t(t) ? e[r] : W{}, g = scale * (p * (da[r][0] - delta[row[r]]));
          W gf[M];
          if constexpr (M == 1) gf[0] = g;
          else gf[0] = g * s[r][1], gf[1] = g * s[r][0];
          std::memcpy(slot(r, 0) + t, &p, sizeof p);
          for (std::size_t f = 0; f < M; ++f) std::memcpy(slot(r, f + 1) + t, &gf[f], sizeof p);
        }
      }
      W dqs[R][D] = {};
      for (std::size_t t = 0; t < w; t += L) {  // then their products
        W kd, p[R], gf[R][M], x;
        for (std::size_t r = 0; r < R; ++r) {
          std::memcpy(&p[r], slot(r, 0) + t, sizeof(W));
          for (std::size_t f = 0; f < M; ++f) std::memcpy(&gf[r][f], slot(r, f + 1) + t, sizeof(W));
        }
#pragma GCC unroll 8
        for (std::size_t d = 0; d < D; ++d) {
          float *a = dkT + d * Bk + t, *b = dvT + d * Bk + t;
          std::memcpy(&kd, kT + d * Bk + t, sizeof(W));
          std::memcpy(&x, a, sizeof x);
          for (std::size_t r = 0; r < R; ++r) x += gf[r][d * M / D] * qr[r][d];
          std::memcpy(a, &x, sizeof x);
          std::memcpy(&x, b, sizeof x);
          for (std::size_t r = 0; r < R; ++r) x += p[r] * dr[r][d];
          std::memcpy(b, &x, sizeof x);
          for (std::size_t r = 0; r < R; ++r) dqs[r][d] += gf[r][d * M / D] * kd;
        }
      }
      for (std::size_t r = 0; r < R && i + r < Tq; ++r) {
        V sums, o;  // dq_d of row i + r += the lane sums of dqs[r][d]
        lane_sums(sums, dqs[r]);
        std::memcpy(&o, dq + (i + r) * C, sizeof o);
        o += sums;
        std::memcpy(dq + (i + r) * C, &o, sizeof o);
      }
    }
    for (float* g : {dk, dv}) {  // dk (dv) rows j0.. += dkT (dvT) transposed, eight keys at a time
      const float* src = g == dk ? dkT : dvT;
      std::size_t t = 0;
      for (V v[D], o; t + 8 <= c; t += 8) {
        for (std::size_t d = 0; d < D; ++d) std::memcpy(&v[d], src + d * Bk + t, sizeof(V));
        transpose8x8(v);
        for (std::size_t j = 0; j < 8; ++j) {
          std::memcpy(&o, g + (j0 + t + j) * C, sizeof o);
          o += v[j];
          std::memcpy(g + (j0 + t + j) * C, &o, sizeof o);
        }
      }
      for (; t < c; ++t)
        for (std::size_t d = 0; d < D; ++d) g[(j0 + t) * C + d] += src[d * Bk + t];
    }
  }
}
}  // namespace detail

// What the forward saves for the backward: each row's softmax max and 1/sum, stats[H, Tq, 2].
inline std::size_t attention_saved_size(std::size_t Tq, std::size_t H) { return 2 * H * Tq; }
// Scratch per call: K and V of one head transposed to [D, Tp] (Tp = detail::padded_keys(Tk); the
// forward's long heads keep V's copied rows in the second), and the larger of the forward's score
// block [8, Tp] and the backward's m + 2 tiles, two numbers per query row and the copied rows of
// Q, dO and dQ (Tq ≤ Tk of each); 16 more for each start on a cache line (detail::cache_aligned).
inline std::size_t attention_scratch_size(std::size_t Tk, std::size_t D, std::size_t m) {
  const std::size_t Tp = detail::padded_keys(Tk), tile = detail::attention_tile;
  return 16 + 2 * D * Tp + std::max(detail::attention_rows * Tp, (m + 2) * tile * tile + 2 * Tk + 16 + 3 * Tk * D);
}

// out[Tq,C] = softmax(causal scores) · v per head; saves stats (see attention_saved_size).
template <std::floating_point T>
void attention_forward(std::span<T> out, std::span<T> saved, std::span<T> scratch, std::span<const T> q,
                       std::span<const T> k, std::span<const T> v, std::size_t Tq, std::size_t Tk, std::size_t C,
                       std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Tp = detail::padded_keys(Tk), R = detail::attention_rows;
  const T scale = T(score.scale);
  T *stats = saved.data(), *kT = detail::cache_aligned(scratch.data()), *vT = kT + D * Tp, *S = vT + D * Tp;
  // Fewer rows than a block (decoding): each row's scores are the keys times the query, read in
  // place (a column of products, K_f · q_f), so the keys need no transpose.
  const bool row_by_row = Tq < R;
  // decode_row keeps every head's weights, H rows of the keys rounded up to 8: in the scratch
  // (2D + 8 rows of Tp) unless there are very many heads
  if constexpr (std::is_same_v<T, float>)
    if (row_by_row && D % 8 == 0 && H <= 2 * D + R) {
      for (std::size_t i = 0; i < Tq; ++i)
        detail::decode_row(&out[i * C], kT, Tp, &stats[2 * i], 2 * Tq, &q[i * C], k.data(), v.data(), Tk - Tq + i + 1, C,
                           H, score);
      return;
    }
  for (std::size_t h = 0; h < H; ++h) {
    if (!row_by_row) detail::head_transpose(kT, &k[h * D], Tk, C, D);
    if constexpr (std::is_same_v<T, float>)
      if (!row_by_row && D == 8 && m <= 2) {  // the seed's heads: keys in lanes
        detail::head_transpose(vT, &v[h * D], Tk, C, D);
        (m == 1 ? detail::short_head_forward<1> : detail::short_head_forward<2>)(
            &out[h * D], &stats[2 * h * Tq], S, &q[h * D], kT, vT, Tp, Tq, Tk, C, scale);
        continue;
      }
    const bool copied = Tq >= detail::copied_rows;  // V's rows D apart in vT, or C apart in place
    if (copied) slice_forward<T>({vT, Tk * D}, v, Tk, C, D, h * D);
    for (std::size_t i0 = 0; i0 < Tq; i0 += R) {
      const std::size_t r = std::min(R, Tq - i0), w = Tk - Tq + i0 + r;  // w: keys the last row sees
      const T* Qi = &q[i0 * C + h * D];
      if (row_by_row)  // Π_f K_f · q_f, a column
        for (std::size_t i = 0; i < r; ++i)
          detail::gemm_product(S + i * Tp, 1, static_cast<T*>(nullptr), 0, detail::strided<const T>{&k[h * D], C},
                               Qi + i * C, 1, w, D, 1, m);
      else  // Π_f Q_f · K_fᵀ
        detail::gemm_product(S, Tp, static_cast<T*>(nullptr), 0, detail::strided<const T>{Qi, C}, kT, Tp, r, D, w, m);
      for (std::size_t i = 0; i < r; ++i) {
        const std::size_t n = Tk - Tq + i0 + i + 1;  // causal: query i0 + i sees keys 0..n-1
        T *a = S + i * Tp, *st = &stats[2 * (h * Tq + i0 + i)];
        st[0] = scale * detail::max_of(a, n);  // scale > 0: the max of the scaled scores
        st[1] = T(1) / detail::exp_sum(a, n, st[0], scale);
        detail::normalise(a, n, w, st[1]);
      }
      detail::gemm(&out[i0 * C + h * D], C, detail::strided<const T>{S, Tp}, copied ? vT : &v[h * D], copied ? D : C,
                   r, w, D, detail::gemm_to::set);  // out = P·V
    }
  }
}

// dq, dk, dv += the gradients of attention_forward's out given dout; out is its output.
template <std::floating_point T>
void attention_backward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<T> scratch,
                        std::span<const T> dout, std::span<const T> saved, std::span<const T> q,
                        std::span<const T> k, std::span<const T> v, std::span<const T> out, std::size_t Tq,
                        std::size_t Tk, std::size_t C, std::size_t H, attention_score score) {
  using detail::gemm;
  using detail::strided;
  using detail::transposed;
  const std::size_t D = C / H, m = score.factors, Tp = detail::padded_keys(Tk), B = detail::attention_tile;
  const T scale = T(score.scale);
  const T* stats = saved.data();
  T *kT = detail::cache_aligned(scratch.data()), *vT = kT + D * Tp, *P = vT + D * Tp, *dA = P + B * B, *part = dA + B * B,
    *delta = part + m * B * B, *lse = delta + Tq;  // per row: Σ_u a_u da_u = dout_i · out_i, and max + log Σ
  const bool copied = Tq >= detail::copied_rows;  // Q, dO, dQ rows ld apart: D in the scratch after lse, or C in place
  const std::size_t ld = copied ? D : C;
  for (std::size_t h = 0; h < H; ++h) {
    for (std::size_t i = 0; i < Tq; ++i) {
      delta[i] = detail::dot_product(&dout[i * C + h * D], &out[i * C + h * D], D);
      lse[i] = stats[2 * (h * Tq + i)] - std::log(stats[2 * (h * Tq + i) + 1]);
    }
    if constexpr (std::is_same_v<T, float>)
      if (D == 8 && m <= 2) {  // the seed's heads: one pass
        (m == 1 ? detail::short_head_backward<1> : detail::short_head_backward<2>)(
            &dq[h * D], &dk[h * D], &dv[h * D], P, &dout[h * D], &q[h * D], &k[h * D], &v[h * D], delta, lse, Tq, Tk,
            C, scale);
        continue;
      }
    detail::head_transpose(kT, &k[h * D], Tk, C, D);
    detail::head_transpose(vT, &v[h * D], Tk, C, D);
    const T *Qh = &q[h * D], *dOh = &dout[h * D];
    T* dQh = &dq[h * D];
    if (copied) {
      T* rows = detail::cache_aligned(lse + Tq);
      slice_forward<T>({rows, Tq * D}, q, Tq, C, D, h * D);
      slice_forward<T>({rows + Tq * D, Tq * D}, dout, Tq, C, D, h * D);
      slice_forward<T>({rows + 2 * Tq * D, Tq * D}, dq, Tq, C, D, h * D);
      Qh = rows, dOh = rows + Tq * D, dQh = rows + 2 * Tq * D;
    }
    for (std::size_t j0 = 0; j0 < Tk; j0 += B) {
      const std::size_t c = std::min(B, Tk - j0);
      // the first query block whose last row sees key j0
      const std::size_t first = j0 + Tq > Tk ? (j0 + Tq - Tk) / B * B : 0;
      for (std::size_t i0 = first; i0 < Tq; i0 += B) {
        const std::size_t r = std::min(B, Tq - i0);
        const T* Qi = Qh + i0 * ld;
        const T* dOi = dOh + i0 * ld;
        // The tile's causal shape: row i sees its keys [0, seen(i)), key t is seen from row from(t)
        // on. A tile the causal diagonal crosses runs in groups of 8 rows (or keys), each only as far
        // as it sees; a full tile in one group.
        auto seen = [&](std::size_t i) { const std::size_t n = Tk - Tq + i0 + i + 1; return n > j0 ? std::min(c, n - j0) : 0; };
        auto from = [&](std::size_t t) { return j0 + t + Tq > Tk + i0 ? std::min(r, j0 + t + Tq - Tk - i0) : 0; };
        const std::size_t G = seen(0) == c ? B : 8;
        auto row_groups = [&](auto&& f) {  // f(first row, rows, keys they see)
          for (std::size_t i = 0; i < r; i += G) f(i, std::min(G, r - i), seen(std::min(r, i + G) - 1));
        };
        auto key_groups = [&](auto&& f) {  // f(first key, keys, first row that sees them)
          for (std::size_t t = 0; t < c; t += G) f(t, std::min(G, c - t), from(t));
        };
        // P = the weights of rows i0.. on keys j0.., e^(scale·score − max − log Σ), 0 in the causal
        // future; the factors s_f kept in part (m > 1); dA = dO·Vᵀ
        row_groups([&](std::size_t i, std::size_t n, std::size_t w) {
          detail::gemm_product(P + i * B, B, m > 1 ? part + i * B : nullptr, B * B, strided<const T>{Qi + i * ld, ld},
                               kT + j0, Tp, n, D, w, m);  // Π_f s_f, s_f = Q_f · K_fᵀ
          gemm(dA + i * B, B, strided<const T>{dOi + i * ld, ld}, vT + j0, Tp, n, D, w, detail::gemm_to::set);
        });
        for (std::size_t i = 0; i < r; ++i) {
          const std::size_t n = seen(i);
          detail::exp_sum(P + i * B, n, lse[i0 + i], scale);
          // g = ∂L/∂score · scale = scale · P (dA − Σ_u P_u dA_u); then g_f = g · Π_{o≠f} s_o
          const T *p = P + i * B, d = delta[i0 + i];
          T* g = dA + i * B;  // m = 1: g_0 is g, in place of dA
          if (m == 2) {  // in place of s_0 and s_1: g_0 = g · s_1, g_1 = g · s_0
            T *s0 = part + i * B, *s1 = s0 + B * B;
            for (std::size_t t = 0; t < n; ++t) {
              const T gt = scale * (p[t] * (g[t] - d)), a0 = s0[t];
              s0[t] = gt * s1[t];
              s1[t] = gt * a0;
            }
          } else {
            for (std::size_t t = 0; t < n; ++t) g[t] = scale * (p[t] * (g[t] - d));
            if (m > 2)  // in place of s_f: f runs down, so s_o for o < f are still there
              for (std::size_t t = 0; t < n; ++t) {
                T* x = part + i * B + t;
                T after = 1;  // Π_{o>f} s_o
                for (std::size_t f = m; f-- > 0;) {
                  const T sf = x[f * B * B];
                  T gf = g[t] * after;
                  for (std::size_t o = 0; o < f; ++o) gf *= x[o * B * B];
                  x[f * B * B] = gf;
                  after *= sf;
                }
              }
          }
          // the causal future: weight 0 and gradient 0
          std::fill(P + i * B + n, P + i * B + c, T(0));
          for (std::size_t f = 0; f < m; ++f) {
            T* gf = m == 1 ? g : part + f * B * B + i * B;
            std::fill(gf + n, gf + c, T(0));
          }
        }
        // the factors' gradients G_f (at grads + f·B·B), one gemm for all: its blocks of columns
        const T* grads = m == 1 ? dA : part;
        const detail::factors<T> per_factor{m, nullptr, B * B};
        row_groups([&](std::size_t i, std::size_t n, std::size_t w) {  // dQ_f += G_f·K_f
          gemm(dQh + (i0 + i) * ld, ld, strided<const T>{grads + i * B, B}, &k[j0 * C + h * D], C, n, w, D,
               detail::gemm_to::add, per_factor);
        });
        key_groups([&](std::size_t t, std::size_t n, std::size_t i) {
          if (i >= r) return;
          gemm(&dv[(j0 + t) * C + h * D], C, transposed(strided<const T>{P + i * B + t, B}), dOi + i * ld, ld, n, r - i,
               D);  // dV += Pᵀ·dO
          gemm(&dk[(j0 + t) * C + h * D], C, transposed(strided<const T>{grads + i * B + t, B}), Qi + i * ld, ld, n, r - i,
               D, detail::gemm_to::add, per_factor);  // dK_f += G_fᵀ·Q_f
        });
      }
    }
    if (copied) concat_forward<T>(dq, {dQh, Tq * D}, Tq, C, D, h * D);
  }
}

// q[Tq,C] attends causally over k, v [Tk,C] (the queries are the last Tq of the Tk positions).
template <std::floating_point T>
var attention(basic_tape<T>& t, var q, var k, var v, std::size_t H, attention_score score) {
  const std::size_t Tq = t.rows(q), Tk = t.rows(k), C = t.cols(q);
  t.require(t.cols(k) == C && t.cols(v) == C && t.rows(v) == Tk && Tk >= Tq, "attention",
            "q[Tq,C], k[Tk,C], v[Tk,C] with Tk >= Tq", {q, k, v});
  if (!(score.scale > 0)) throw error("attention: the score's scale must be positive, not " + std::to_string(score.scale));
  if (H == 0 || C % H != 0 || score.factors == 0 || (C / H) % score.factors != 0)
    throw error("attention: " + std::to_string(C) + " channels do not split into " + std::to_string(H) +
                " heads of " + std::to_string(score.factors) + " equal parts");
  struct args { std::size_t heads; attention_score score; };
  var y = t.make(Tq, C, {q, k, v}, [](basic_tape<T>& t, const auto& n) {
    var q = t.input_of(n, 0), k = t.input_of(n, 1), v = t.input_of(n, 2);
    const auto [H, score] = args_of<args>(n);
    const std::size_t Tq = n.rows, Tk = t.rows(k), C = n.cols;
    attention_backward<T>(t.grad(q), t.grad(k), t.grad(v), t.scratch(attention_scratch_size(Tk, C / H, score.factors)),
                          t.grad(n), t.saved(n, attention_saved_size(Tq, H)), t.value(q), t.value(k), t.value(v),
                          t.value(n), Tq, Tk, C, H, score);
  });
  t.set_args(y, args{H, score});
  attention_forward<T>(t.value(y), t.save(y, attention_saved_size(Tq, H)),
                       t.scratch(attention_scratch_size(Tk, C / H, score.factors)), t.value(q), t.value(k), t.value(v),
                       Tq, Tk, C, H, score);
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

// SPDX-License-Identifier: MIT
// ops.hpp: the primitive kernels, each a forward/backward pair over spans (the llm.c way).
// Forward writes its output; backward ACCUMULATES (+=) into the input gradients. What a forward
// saves for its backward is named in its signature. Kernels do no shape checks: the tape checks
// shapes once, where it can name them. Letters: N rows, I inputs, O outputs, C channels, V vocab.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace purevlm {

namespace detail {
// The eight partial sums of a lane-wise accumulation (an array or a vector) added as a tree:
// the one order dot(), exp_sum() and l2_norm() add in (lane_sums() below does it with shuffles).
template <class A>
inline auto tree_sum(const A& acc) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
// Dot product with eight independent partial sums, so that -O2/-O3 vectorizes it without
// -ffast-math (a single accumulator is a serial dependency the compiler must respect).
template <std::floating_point T>
inline T dot(const T* a, const T* b, std::size_t n) {
  T acc[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  T s = tree_sum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}
// y += a * x
template <std::floating_point T>
inline void axpy(T* y, T a, const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// One 32-byte vector of T (8 floats, 4 doubles), a GCC/Clang extension: the single place where
// purevlm spells out vectorization, because the compiler would not register-block gemm itself.
template <std::floating_point T>
struct simd {
  using type [[gnu::vector_size(32)]] = T;
};

// e^x for eight floats at once (the library's only own transcendental: softmax rows are its hot
// spot, and the scalar expf there cost more than all the multiply-adds of a seed-sized head).
// x = n·ln2 + r with n = round(x·log2 e) and |r| ≤ ln2/2 (ln2 split in two so n·ln2_hi is exact);
// e^r by its Taylor series to r⁷ (truncation below 1e-8 relative), times 2ⁿ built in the exponent
// bits. Relative error ~1 ulp on [-87, 88], where e^x is a normal float; below -87 it gives 0
// (the true value is denormal or less), above 88 it saturates at e^88.
// (In place, by reference: a 32-byte vector passed by value changes the ABI without AVX.)
// V is a vector of floats of any width (8 or 16 lanes); each lane is computed alone.
template <class V>
inline void exp_in_place(V& x) {
  using I [[gnu::vector_size(sizeof(V))]] = std::int32_t;
  const V lo = V{} - 87.0f, hi = V{} + 88.0f, zero = {};
  const V xc = x < lo ? lo : (x > hi ? hi : x);
  const float shift = 12582912.0f;  // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
  const V t = xc * 1.44269504088896341f + shift, n = t - shift;
  const V r = (xc - n * 0.693359375f) - n * -2.12194440054690583e-4f;
  V p = zero + 1.0f / 5040;
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  I bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits - 0x4B400000 + 127) << 23;  // 0x4B400000 is `shift`'s bit pattern: bits − it = n
  V two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  x = x < lo ? zero : p * two_n;
}

// max of a[0..n), n ≥ 1, branch-free in eight lanes (vmaxps): std::max_element's data-dependent
// branch mispredicted often enough on attention rows to cost more than the scores themselves.
template <std::floating_point T>
T max_of(const T* a, std::size_t n) {
  T m[8];
  std::fill(m, m + 8, a[0]);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j) m[j] = a[i + j] > m[j] ? a[i + j] : m[j];
  for (; i < n; ++i) m[0] = a[i] > m[0] ? a[i] : m[0];
  T r = m[0];
  for (std::size_t j = 1; j < 8; ++j) r = m[j] > r ? m[j] : r;
  return r;
}

// a[t] ← e^(scale·a[t] − shift) for t < n; returns their sum. Floats run through exp_in_place()
// sixteen at a time where the build has 64-byte vectors, else eight; the sum is kept in eight
// lanes either way (a wide vector adds its low half, then its high half, the order eight-lane
// steps would), then added as a tree, so the sum does not depend on the vector width.
template <std::floating_point T>
T exp_sum(T* a, std::size_t n, T shift, T scale = T(1)) {
  if constexpr (std::is_same_v<T, float>) {
    using V = simd<float>::type;
    V acc = {}, x;
    std::size_t t = 0;
#if defined(__AVX512F__)
    using W [[gnu::vector_size(64)]] = float;
    for (W y; t + 16 <= n; t += 16) {
      std::memcpy(&y, a + t, sizeof y);
      y = y * scale - shift;
      exp_in_place(y);
      std::memcpy(a + t, &y, sizeof y);
      std::memcpy(&x, a + t, sizeof x);
      acc += x;
      std::memcpy(&x, a + t + 8, sizeof x);
      acc += x;
    }
#endif
    for (; t + 8 <= n; t += 8) {
      std::memcpy(&x, a + t, sizeof x);
      x = x * scale - shift;
      exp_in_place(x);
      std::memcpy(a + t, &x, sizeof x);
      acc += x;
    }
    if (t < n) {  // the last partial vector, its padding lanes zeroed
      using I [[gnu::vector_size(32)]] = std::int32_t;
      const I lane = {0, 1, 2, 3, 4, 5, 6, 7};
      x = V{};
      std::memcpy(&x, a + t, (n - t) * sizeof(float));
      x = x * scale - shift;
      exp_in_place(x);
      x = lane < std::int32_t(n - t) ? x : V{};
      std::memcpy(a + t, &x, (n - t) * sizeof(float));
      acc += x;
    }
    return T(tree_sum(acc));
  } else {
    T sum = 0;
    for (std::size_t t = 0; t < n; ++t) sum += (a[t] = std::exp(a[t] * scale - shift));
    return sum;
  }
}

// The widest vector the build targets (64 bytes with AVX-512, else 32), for gemm alone: its
// columns are independent, so the width changes speed, never a result.
template <std::floating_point T>
struct wide_simd {
#if defined(__AVX512F__)
  using type [[gnu::vector_size(64)]] = T;
#else
  using type = typename simd<T>::type;
#endif
};

// A matrix in memory: element (i, j) at data[i·row + j·col]. gemm reads A through one of these, so
// that a product with a transposed matrix (dWᵀ, Pᵀ in attention) needs no copy.
template <class T>
struct strided {
  T* data;
  std::size_t row, col = 1;
};
template <class T>
strided<T> transposed(strided<T> a) { return {a.data, a.col, a.row}; }

// Whether gemm adds its product to C or writes it over C (what C held is then never read).
enum class gemm_to { add, set };

// An R×J tile of C (rows ldc apart) — R rows, J vectors V of columns — kept in registers while k
// runs: each vector of B is loaded once for R multiply-adds and each A(r, k) once for J.
template <class V, int R, int J, std::floating_point T>
inline void gemm_tile(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t K,
                      gemm_to to) {
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  V s[R][J], b[J];  // memcpy: unaligned loads and stores, no aliasing questions
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j)
      if (to == gemm_to::add) std::memcpy(&s[r][j], C + r * ldc + j * L, sizeof(V));
      else s[r][j] = V{};
  for (std::size_t k = 0; k < K; ++k) {
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j) std::memcpy(&b[j], B + k * ldb + j * L, sizeof(V));
    const T* a = A.data + k * A.col;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int j = 0; j < J; ++j) s[r][j] += a[r * A.row] * b[j];
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j) std::memcpy(C + r * ldc + j * L, &s[r][j], sizeof(V));
}

// R rows of C, across: tiles of two widest vectors, then one, then one 32-byte vector, then one
// 16-byte vector (an attention head's factor of 4 floats), then single columns (a "vector" of one
// T: the same code, scalar).
template <int R, std::floating_point T>
void gemm_rows(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t K, std::size_t M,
               gemm_to to) {
  using W = typename wide_simd<T>::type;
  using V = typename simd<T>::type;
  using N [[gnu::vector_size(16)]] = T;
  constexpr std::size_t LW = sizeof(W) / sizeof(T), LV = sizeof(V) / sizeof(T), LN = sizeof(N) / sizeof(T);
  std::size_t m = 0;
  for (; m + 2 * LW <= M; m += 2 * LW) gemm_tile<W, R, 2>(C + m, ldc, A, B + m, ldb, K, to);
  for (; m + LW <= M; m += LW) gemm_tile<W, R, 1>(C + m, ldc, A, B + m, ldb, K, to);
  for (; m + LV <= M; m += LV) gemm_tile<V, R, 1>(C + m, ldc, A, B + m, ldb, K, to);
  for (; m + LN <= M; m += LN) gemm_tile<N, R, 1>(C + m, ldc, A, B + m, ldb, K, to);
  for (; m < M; ++m) gemm_tile<T, R, 1>(C + m, ldc, A, B + m, ldb, K, to);
}

// C[N,M] += A[N,K] · B[K,M] (or = with gemm_to::set), C's rows ldc apart and B's ldb apart (columns contiguous), A any
// strided matrix. Tiles of 8 rows where there are 32 vector registers (AVX-512: 16 accumulators,
// enough independent multiply-adds to fill both FMA pipes), else 4; then 4, then 1 for the last.
// Every matmul, forward and backward, and every product in attention runs through here; each C
// element sums over k in order, whatever tile computes it.
template <std::floating_point T>
void gemm(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t N, std::size_t K,
          std::size_t M, gemm_to to = gemm_to::add) {
#if defined(__AVX512F__)
  constexpr int R = 8;
#else
  constexpr int R = 4;
#endif
  auto rows = [&](std::size_t n) { return strided<const T>{A.data + n * A.row, A.row, A.col}; };
  std::size_t n = 0;
  for (; n + R <= N; n += R) gemm_rows<R>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to);
  for (; n + 4 <= N; n += 4) gemm_rows<4>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to);
  for (; n < N; ++n) gemm_rows<1>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to);
}
// C[N,M] += A[N,K] · B[K,M], all three row-major and dense
template <std::floating_point T>
void gemm_accumulate(T* C, const T* A, const T* B, std::size_t N, std::size_t K, std::size_t M) {
  gemm(C, M, strided<const T>{A, K}, B, M, N, K, M);
}

// The lane sums of eight float vectors as one vector: r[j] = Σ lanes of v[j], each added in
// tree_sum()'s order ((0+1)+(2+3))+((4+5)+(6+7)), by three rounds of pairwise shuffles and adds.
inline void lane_sums(simd<float>::type& r, const simd<float>::type (&v)[8]) {
  using V = simd<float>::type;
  V u[4], w[2];
  for (int k = 0; k < 4; ++k)  // u[k] = [a01 b01 a23 b23 a45 b45 a67 b67] for a = v[2k], b = v[2k+1]
    u[k] = __builtin_shufflevector(v[2 * k], v[2 * k + 1], 0, 8, 2, 10, 4, 12, 6, 14) +
           __builtin_shufflevector(v[2 * k], v[2 * k + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  for (int k = 0; k < 2; ++k)  // w[k]: lanes 0..3 the (0123) sums of four vectors, 4..7 their (4567)
    w[k] = __builtin_shufflevector(u[2 * k], u[2 * k + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(u[2 * k], u[2 * k + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  r = __builtin_shufflevector(w[0], w[1], 0, 1, 2, 3, 8, 9, 10, 11) +
      __builtin_shufflevector(w[0], w[1], 4, 5, 6, 7, 12, 13, 14, 15);
}

// y[o] = W[o, :] · x for W[O, I]: a matrix times one vector, eight rows at a time, so that each
// vector of x is loaded once for eight rows and their horizontal sums share shuffles. Every row
// sums in dot()'s order (lane by lane, the same tree, then the tail), so y does not depend on O.
template <std::floating_point T>
void matvec(T* y, const T* W, const T* x, std::size_t O, std::size_t I) {
  std::size_t o = 0;
  if constexpr (std::is_same_v<T, float>) {  // dot()'s order has eight lanes: one float vector
    using V = simd<float>::type;
    for (; o + 8 <= O; o += 8) {
      V s[8] = {}, xv, wv, r;
      std::size_t i = 0;
      for (; i + 8 <= I; i += 8) {
        std::memcpy(&xv, x + i, sizeof xv);
        for (std::size_t j = 0; j < 8; ++j) {
          std::memcpy(&wv, W + (o + j) * I + i, sizeof wv);
          s[j] += wv * xv;
        }
      }
      lane_sums(r, s);
      for (std::size_t j = 0; j < 8; ++j) {
        T sum = r[j];
        for (std::size_t k = i; k < I; ++k) sum += W[(o + j) * I + k] * x[k];
        y[o + j] = sum;
      }
    }
  }
  for (; o < O; ++o) y[o] = dot(W + o * I, x, I);
}

// An 8×8 block of floats transposed in registers: v[j] holds row j on entry, column j on exit.
// Three rounds of shuffles (pairs of lanes, then pairs of pairs, then halves), 24 in all.
inline void transpose8x8(simd<float>::type (&v)[8]) {
  using V = simd<float>::type;
  V t[8], u[8];
  for (int k = 0; k < 4; ++k) {  // interleave rows 2k, 2k+1
    t[2 * k] = __builtin_shufflevector(v[2 * k], v[2 * k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[2 * k + 1] = __builtin_shufflevector(v[2 * k], v[2 * k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int k = 0; k < 2; ++k)  // rows 4k..4k+3: column c in lanes 0..3, column c+4 in lanes 4..7
    for (int h = 0; h < 2; ++h) {
      u[4 * k + 2 * h] = __builtin_shufflevector(t[4 * k + h], t[4 * k + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[4 * k + 2 * h + 1] = __builtin_shufflevector(t[4 * k + h], t[4 * k + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int c = 0; c < 4; ++c) {
    v[c] = __builtin_shufflevector(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    v[c + 4] = __builtin_shufflevector(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// dst[c, r] = src[r, c] for src [R, C] whose rows are `stride` apart (a column block of a wider
// matrix, such as one attention head); dst rows are `dst_stride` ≥ R apart. Floats go through
// 8×8 blocks in registers; the edges, and doubles, are copied one by one.
template <std::floating_point T>
void transpose(T* dst, const T* src, std::size_t R, std::size_t C, std::size_t stride, std::size_t dst_stride) {
  // rows [r, r + n) of columns [c0, C), one value at a time
  auto one_by_one = [&](std::size_t r, std::size_t n, std::size_t c0) {
    for (std::size_t c = c0; c < C; ++c)
      for (std::size_t i = 0; i < n; ++i) dst[c * dst_stride + r + i] = src[(r + i) * stride + c];
  };
  std::size_t r0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    using V = simd<float>::type;
    for (; r0 + 8 <= R; r0 += 8) {
      std::size_t c0 = 0;
      for (; c0 + 8 <= C; c0 += 8) {
        V v[8];
        for (std::size_t j = 0; j < 8; ++j) std::memcpy(&v[j], src + (r0 + j) * stride + c0, sizeof(V));
        transpose8x8(v);
        for (std::size_t j = 0; j < 8; ++j) std::memcpy(dst + (c0 + j) * dst_stride + r0, &v[j], sizeof(V));
      }
      one_by_one(r0, 8, c0);
    }
  }
  one_by_one(r0, R - r0, 0);
}
template <std::floating_point T>
void transpose(T* dst, const T* src, std::size_t R, std::size_t C) { transpose(dst, src, R, C, C, R); }
}  // namespace detail

// ---- matmul: out[N,O] = in[N,I] · weight[O,I]ᵀ (weights act as W·x, rows are outputs) ----
// scratch: O·I values. With several rows the weight is transposed into it once and the product
// runs through the blocked gemm; a single row (the tokenizer's image) is O dot products.
inline std::size_t matmul_scratch_size(std::size_t I, std::size_t O) { return O * I; }

template <std::floating_point T>
void matmul_forward(std::span<T> out, std::span<const T> in, std::span<const T> weight,
                    std::size_t N, std::size_t I, std::size_t O, std::span<T> scratch) {
  if (N < 4) {
    for (std::size_t n = 0; n < N; ++n)
      detail::matvec(&out[n * O], weight.data(), &in[n * I], O, I);
    return;
  }
  detail::transpose(scratch.data(), weight.data(), O, I);  // weightᵀ [I, O]
  detail::gemm(out.data(), O, detail::strided<const T>{in.data(), I}, scratch.data(), O, N, I, O, detail::gemm_to::set);
}
// din += dout · weight; dweight += doutᵀ · in (either may be empty: not wanted)
template <std::floating_point T>
void matmul_backward(std::span<T> din, std::span<T> dweight, std::span<const T> dout,
                     std::span<const T> in, std::span<const T> weight,
                     std::size_t N, std::size_t I, std::size_t O) {
  if (!din.empty()) detail::gemm_accumulate(din.data(), dout.data(), weight.data(), N, O, I);
  if (!dweight.empty())  // doutᵀ read in place, as a transposed view
    detail::gemm(dweight.data(), I, detail::transposed(detail::strided<const T>{dout.data(), O}), in.data(), I, O, N, I);
}

// ---- elementwise: add, Hadamard product, scale, ReLU, clamp ----
template <std::floating_point T>
void add_forward(std::span<T> out, std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] + b[i];
}
template <std::floating_point T>
void add_backward(std::span<T> da, std::span<T> db, std::span<const T> dout) {
  for (std::size_t i = 0; i < dout.size(); ++i) { da[i] += dout[i]; db[i] += dout[i]; }
}
template <std::floating_point T>
void mul_forward(std::span<T> out, std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] * b[i];
}
template <std::floating_point T>
void mul_backward(std::span<T> da, std::span<T> db, std::span<const T> dout,
                  std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < dout.size(); ++i) {
    da[i] += dout[i] * b[i];  // ∂(ab)/∂a = b
    db[i] += dout[i] * a[i];
  }
}
template <std::floating_point T>
void scale_forward(std::span<T> out, std::span<const T> a, T c) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = c * a[i];
}
template <std::floating_point T>
void scale_backward(std::span<T> da, std::span<const T> dout, T c) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += c * dout[i];
}
template <std::floating_point T>
void relu_forward(std::span<T> out, std::span<const T> a) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] > T(0) ? a[i] : T(0);
}
template <std::floating_point T>
void relu_backward(std::span<T> da, std::span<const T> dout, std::span<const T> out) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += out[i] > T(0) ? dout[i] : T(0);
}
// Clamp to [lo, hi]; the gradient is zero where the value was clipped.
template <std::floating_point T>
void clamp_forward(std::span<T> out, std::span<const T> a, T lo, T hi) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::clamp(a[i], lo, hi);
}
template <std::floating_point T>
void clamp_backward(std::span<T> da, std::span<const T> dout, std::span<const T> a, T lo, T hi) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += (a[i] >= lo && a[i] <= hi) ? dout[i] : T(0);
}

// ---- reductions: out[0] = Σ a ----
template <std::floating_point T>
void sum_forward(std::span<T> out, std::span<const T> a) {
  T s = 0;
  for (T v : a) s += v;
  out[0] = s;
}
template <std::floating_point T>
void sum_backward(std::span<T> da, std::span<const T> dout) {
  for (T& v : da) v += dout[0];
}

// ---- rmsnorm over rows, no weight: out = x · rstd, rstd = 1/sqrt(mean(x²) + eps); saves rstd[N] ----
template <std::floating_point T>
void rmsnorm_forward(std::span<T> out, std::span<T> rstd, std::span<const T> x,
                     std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    const T r = T(1) / std::sqrt(detail::dot(xr, xr, C) / T(C) + eps);
    rstd[n] = r;
    for (std::size_t c = 0; c < C; ++c) out[n * C + c] = xr[c] * r;
  }
}
template <std::floating_point T>
void rmsnorm_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> out,
                      std::span<const T> rstd, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* y = &out[n * C];
    const T* dy = &dout[n * C];
    // dx = rstd · (dy − y · mean(dy ⊙ y)): the second term is the projection the seed dropped
    const T m = detail::dot(dy, y, C) / T(C);
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += rstd[n] * (dy[c] - y[c] * m);
  }
}

// ---- L2 normalisation over rows: out = x / (‖x‖ + eps); saves norm[N] ----
template <std::floating_point T>
void l2norm_forward(std::span<T> out, std::span<T> norm, std::span<const T> x,
                    std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    norm[n] = std::sqrt(detail::dot(xr, xr, C));
    const T inv = T(1) / (norm[n] + eps);
    for (std::size_t c = 0; c < C; ++c) out[n * C + c] = xr[c] * inv;
  }
}
template <std::floating_point T>
void l2norm_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> x,
                     std::span<const T> norm, std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    const T* dy = &dout[n * C];
    // y = x/(r+eps), r = ‖x‖:  dx = dy/(r+eps) − x · (dy·x) / (r (r+eps)²); see docs/bae.md
    const T s = T(1) / (norm[n] + eps);
    const T proj = norm[n] > T(0) ? detail::dot(dy, xr, C) * s * s / norm[n] : T(0);
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += dy[c] * s - xr[c] * proj;
  }
}

// ---- softmax over rows (max-subtracted); backward uses the saved output ----
template <std::floating_point T>
void softmax_forward(std::span<T> out, std::span<const T> x, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    T* y = &out[n * C];
    std::copy(&x[n * C], &x[n * C] + C, y);
    const T s = detail::exp_sum(y, C, detail::max_of(y, C));
    for (std::size_t c = 0; c < C; ++c) y[c] /= s;
  }
}
template <std::floating_point T>
void softmax_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> out,
                      std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* y = &out[n * C];
    const T* dy = &dout[n * C];
    const T m = detail::dot(dy, y, C);  // dx = y ⊙ (dy − Σ dy·y)
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += y[c] * (dy[c] - m);
  }
}

// ---- cross-entropy on logits[N,V] with targets[N]: out[0] = mean_n −log softmax(logits_n)[target_n]
// saves probs[N,V] ----
template <std::floating_point T>
void cross_entropy_forward(std::span<T> out, std::span<T> probs, std::span<const T> logits,
                           std::span<const std::int32_t> targets, std::size_t N, std::size_t V) {
  softmax_forward(probs, logits, N, V);
  T loss = 0;
  for (std::size_t n = 0; n < N; ++n) {
    const T* l = &logits[n * V];
    const T mx = detail::max_of(l, V);
    T s = 0;  // exact log-softmax: log Σ exp(l − mx), no epsilon inside the log
    for (std::size_t v = 0; v < V; ++v) s += std::exp(l[v] - mx);
    loss += std::log(s) + mx - l[targets[n]];
  }
  out[0] = loss / T(N);
}
template <std::floating_point T>
void cross_entropy_backward(std::span<T> dlogits, std::span<const T> dout, std::span<const T> probs,
                            std::span<const std::int32_t> targets, std::size_t N, std::size_t V) {
  const T g = dout[0] / T(N);
  for (std::size_t n = 0; n < N; ++n)  // ∂/∂logit_v = (p_v − [v = target]) / N
    for (std::size_t v = 0; v < V; ++v)
      dlogits[n * V + v] += g * (probs[n * V + v] - (v == std::size_t(targets[n]) ? T(1) : T(0)));
}

// ---- embedding lookup: out[N,C] = table[ids[n], :] ----
template <std::floating_point T>
void embedding_forward(std::span<T> out, std::span<const T> table, std::span<const std::int32_t> ids,
                       std::size_t C) {
  for (std::size_t n = 0; n < ids.size(); ++n)
    std::copy_n(&table[std::size_t(ids[n]) * C], C, &out[n * C]);
}
template <std::floating_point T>
void embedding_backward(std::span<T> dtable, std::span<const T> dout,
                        std::span<const std::int32_t> ids, std::size_t C) {
  for (std::size_t n = 0; n < ids.size(); ++n)
    detail::axpy(&dtable[std::size_t(ids[n]) * C], T(1), &dout[n * C], C);
}

// ---- columns: copy in[N,Cin] into out[N,Cout] at column offset (concat), and its inverse (slice) ----
template <std::floating_point T>
void concat_forward(std::span<T> out, std::span<const T> in, std::size_t N, std::size_t Cout,
                    std::size_t Cin, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(&in[n * Cin], Cin, &out[n * Cout + offset]);
}
template <std::floating_point T>
void concat_backward(std::span<T> din, std::span<const T> dout, std::size_t N, std::size_t Cout,
                     std::size_t Cin, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(&din[n * Cin], T(1), &dout[n * Cout + offset], Cin);
}
template <std::floating_point T>
void slice_forward(std::span<T> out, std::span<const T> in, std::size_t N, std::size_t Cin,
                   std::size_t Cout, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(&in[n * Cin + offset], Cout, &out[n * Cout]);
}
template <std::floating_point T>
void slice_backward(std::span<T> din, std::span<const T> dout, std::size_t N, std::size_t Cin,
                    std::size_t Cout, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(&din[n * Cin + offset], T(1), &dout[n * Cout], Cout);
}

// ---- repeat one row N times: out[N,C] = a[C] for every row; backward sums the rows ----
template <std::floating_point T>
void repeat_forward(std::span<T> out, std::span<const T> a, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(a.data(), C, &out[n * C]);
}
template <std::floating_point T>
void repeat_backward(std::span<T> da, std::span<const T> dout, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(da.data(), T(1), &dout[n * C], C);
}

}  // namespace purevlm

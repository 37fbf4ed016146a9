// SPDX-License-Identifier: MIT
// detail/simd.hpp: the vector machinery under the kernels of ops.hpp and attention.hpp, kept apart
// so that those read as the math. GCC/Clang vector extensions (`vector_size`), no intrinsics:
// dot products and sums in eight fixed lanes (the order every sum is added in), e^x for a vector,
// the register-tiled matrix product (gemm) that every matmul and attention product runs through,
// and in-register transposes. Nothing here knows about models; none of it is public API.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace purevlm {

namespace detail {
// The eight partial sums of a lane-wise accumulation (an array or a vector) added as a tree:
// the one order dot_product(), exp_sum() and l2_norm() add in (lane_sums() below does it with shuffles).
template <class A>
inline auto tree_sum(const A& acc) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
// Dot product with eight independent partial sums, so that -O2/-O3 vectorizes it without
// -ffast-math (a single accumulator is a serial dependency the compiler must respect).
template <std::floating_point T>
inline T dot_product(const T* a, const T* b, std::size_t n) {
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
// V is a vector of floats of any width (8 or 16 lanes); each lane is computed alone. For N vectors
// at once, each step is taken for all N before the next: their chains of about 15 dependent steps
// then run side by side, not one after the other.
template <class V, std::size_t N>
inline void exp_in_place(V (&x)[N]) {
  using I [[gnu::vector_size(sizeof(V))]] = std::int32_t;
  const V lo = V{} - 87.0f, hi = V{} + 88.0f, zero = {};
  const float shift = 12582912.0f;  // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
  V t[N], r[N], p[N];
  for (std::size_t j = 0; j < N; ++j) {
    const V xc = x[j] < lo ? lo : (x[j] > hi ? hi : x[j]);
    t[j] = xc * 1.44269504088896341f + shift;
    const V n = t[j] - shift;
    r[j] = (xc - n * 0.693359375f) - n * -2.12194440054690583e-4f;
    p[j] = zero + 1.0f / 5040;
  }
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    for (std::size_t j = 0; j < N; ++j) p[j] = p[j] * r[j] + c;
  for (std::size_t j = 0; j < N; ++j) {
    I bits;
    std::memcpy(&bits, &t[j], sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23;  // 0x4B400000 is `shift`'s bit pattern: bits − it = n
    V two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    x[j] = x[j] < lo ? zero : p[j] * two_n;
  }
}
template <class V>
inline void exp_in_place(V& x) {
  V a[1] = {x};
  exp_in_place(a);
  x = a[0];
}

// max of a[0..n), n ≥ 1, branch-free (vmaxps): std::max_element's data-dependent branch
// mispredicted often enough on attention rows to cost more than the scores themselves. Long rows
// run four vectors side by side, each its own chain of maxima (with one, every step waited on the
// last: 7% of a long attention forward's time).
template <std::floating_point T>
T max_of(const T* a, std::size_t n) {
  using V = typename simd<T>::type;
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  V m[4], x[4];  // (no lambda on vectors: by value they change the ABI without AVX)
  m[0] = V{} + a[0];
  std::size_t i = 0;
  if (n >= 4 * L) {  // (only then: short rows, as at T = 36, paid for the other three chains)
    m[1] = m[2] = m[3] = m[0];
    for (; i + 4 * L <= n; i += 4 * L) {
      std::memcpy(x, a + i, sizeof x);
      for (int j = 0; j < 4; ++j) m[j] = x[j] > m[j] ? x[j] : m[j];
    }
    for (int j = 1; j < 4; ++j) m[0] = m[j] > m[0] ? m[j] : m[0];
  }
  for (; i + L <= n; i += L) {
    std::memcpy(x, a + i, sizeof x[0]);
    m[0] = x[0] > m[0] ? x[0] : m[0];
  }
  T r = m[0][0];
  for (std::size_t l = 1; l < L; ++l) r = m[0][l] > r ? m[0][l] : r;
  for (; i < n; ++i) r = a[i] > r ? a[i] : r;
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
      acc += __builtin_shufflevector(y, y, 0, 1, 2, 3, 4, 5, 6, 7);  // low half, then high half,
      acc += __builtin_shufflevector(y, y, 8, 9, 10, 11, 12, 13, 14, 15);  // from the register
    }
#endif
    for (; t + 8 <= n; t += 8) {
      std::memcpy(&x, a + t, sizeof x);
      x = x * scale - shift;
      exp_in_place(x);
      std::memcpy(a + t, &x, sizeof x);
      acc += x;
    }
    if (const std::size_t k = n - t; k > 0) {  // the last partial vector, its padding lanes zeroed
      using I [[gnu::vector_size(32)]] = std::int32_t;
      const I lane = {0, 1, 2, 3, 4, 5, 6, 7};
      // lane by lane: a memcpy of k floats is a library call through the stack, which cost more
      // than the exponentials (a row of 30: 37 ns, against 12 ns for a row of 32)
      for (std::size_t j = 0; j < 8; ++j) x[j] = j < k ? a[t + j] : 0.0f;
      x = x * scale - shift;
      exp_in_place(x);
      x = lane < std::int32_t(k) ? x : V{};
      for (std::size_t j = 0; j < k; ++j) a[t + j] = x[j];
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

// What gemm does with its product: adds it to C or writes it over C; or (gemm_product's kernel)
// writes over C the product of m factors, the sums over k's m equal runs, keeping each factor's
// sums at part + f·stride (rows ldc apart, as C's) unless part is null. (Adding or setting, m > 1
// splits C in blocks instead: see gemm.) The kernels pass these by reference, a tile's offset from
// C beside them (by value per tile cost 5%).
enum class gemm_to { add, set, product };
template <class T>
struct factors {
  std::size_t m = 1;
  T* part = nullptr;
  std::size_t stride = 0;
};

// An operand of many multiply-adds, held in a register: GCC otherwise turns each use of a value
// loaded from memory that the loop does not write into a memory operand of its FMA, and a 4-row
// gemm tile then reads every vector of B four times (2.5× slower here). The empty asm says only
// "v is in a register now"; it emits nothing. (x86 with AVX, where each vector gemm uses is one
// register; elsewhere a no-op.)
template <class V>
inline void in_register(V& v) {
#if defined(__x86_64__) && defined(__AVX__)
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

// s += the columns [k0, k1) of A times those rows of B, for an R×J tile (see gemm_tile).
template <class V, int R, int J, std::floating_point T>
inline void tile_sums(V (&s)[R][J], strided<const T> A, const T* B, std::size_t ldb, std::size_t k0, std::size_t k1) {
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  V b[J];  // memcpy: unaligned loads and stores, no aliasing questions
  for (std::size_t k = k0; k < k1; ++k) {
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j) {
      std::memcpy(&b[j], B + k * ldb + j * L, sizeof(V));
      if constexpr (R > 1 && R < 8 && sizeof(V) > sizeof(T)) in_register(b[j]);  // (where GCC folds)
    }
    const T* a = A.data + k * A.col;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int j = 0; j < J; ++j) s[r][j] += a[r * A.row] * b[j];
  }
}

// An R×J tile of C (rows ldc apart) — R rows, J vectors V of columns — kept in registers while k
// runs: each vector of B is loaded once for R multiply-adds and each A(r, k) once for J. A product
// of factors keeps a second tile, the product so far: with it an 8×2 tile wants 35 of AVX-512's 32
// registers, and GCC keeps the product's overflow on the stack, touched once per factor, outside
// the k loop.
template <class V, int R, int J, std::floating_point T>
inline void gemm_tile(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t K,
                      gemm_to to, const factors<T>& f, std::size_t at) {
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  V s[R][J];
  if (to == gemm_to::product) {
    V p[R][J] = {};  // (set by factor 0: zeroed only so that no compiler sees it unset)
    const std::size_t Km = K / f.m;
    for (std::size_t i = 0; i < f.m; ++i) {  // factor i: k in [i·Km, (i + 1)·Km)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int j = 0; j < J; ++j) s[r][j] = V{};
      tile_sums<V, R, J>(s, A, B, ldb, i * Km, (i + 1) * Km);
      // (Each test once per factor: GCC left them inside these loops, one per vector, and at
      // T = 36 attention's small tiles spent 1-2% of the tensor score's time on them.)
      if (f.part)
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
          for (int j = 0; j < J; ++j) std::memcpy(f.part + at + i * f.stride + r * ldc + j * L, &s[r][j], sizeof(V));
      if (i == 0)
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
          for (int j = 0; j < J; ++j) p[r][j] = s[r][j];
      else
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
          for (int j = 0; j < J; ++j) p[r][j] *= s[r][j];
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int j = 0; j < J; ++j) std::memcpy(C + r * ldc + j * L, &p[r][j], sizeof(V));
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j)
      if (to == gemm_to::add) std::memcpy(&s[r][j], C + r * ldc + j * L, sizeof(V));
      else s[r][j] = V{};
  tile_sums<V, R, J>(s, A, B, ldb, 0, K);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j) std::memcpy(C + r * ldc + j * L, &s[r][j], sizeof(V));
}

// R rows of C, across: tiles of two widest vectors, then one, then one 32-byte vector, then one
// 16-byte vector (an attention head's factor of 4 floats), then single columns (a "vector" of one
// T: the same code, scalar). (The same steps
// written as one loop over a generic lambda cost the small products 5-14%: GCC then inlined less.)
template <int R, std::floating_point T>
void gemm_rows(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t K, std::size_t M,
               gemm_to to, const factors<T>& f, std::size_t at) {
  using W = typename wide_simd<T>::type;
  using V = typename simd<T>::type;
  using N [[gnu::vector_size(16)]] = T;
  constexpr std::size_t LW = sizeof(W) / sizeof(T), LV = sizeof(V) / sizeof(T), LN = sizeof(N) / sizeof(T);
  const std::size_t blocks = to == gemm_to::product ? 1 : f.m;  // (see gemm)
  for (std::size_t b = 0, m = 0; b < blocks; ++b) {
    const strided<const T> Ab{A.data + b * f.stride, A.row, A.col};
    const std::size_t end = m + M / blocks;
    for (; m + 2 * LW <= end; m += 2 * LW) gemm_tile<W, R, 2>(C + m, ldc, Ab, B + m, ldb, K, to, f, at + m);
    for (; m + LW <= end; m += LW) gemm_tile<W, R, 1>(C + m, ldc, Ab, B + m, ldb, K, to, f, at + m);
    for (; m + LV <= end; m += LV) gemm_tile<V, R, 1>(C + m, ldc, Ab, B + m, ldb, K, to, f, at + m);
    for (; m + LN <= end; m += LN) gemm_tile<N, R, 1>(C + m, ldc, Ab, B + m, ldb, K, to, f, at + m);
    for (; m < end; ++m) gemm_tile<T, R, 1>(C + m, ldc, Ab, B + m, ldb, K, to, f, at + m);
  }
}

// C[N,M] += A[N,K] · B[K,M] (or = with gemm_to::set; gemm_to::product: see gemm_product), C's rows
// ldc apart and B's ldb apart (columns contiguous), A any strided matrix. Tiles of 8 rows where
// there are 32 vector registers (AVX-512: 16 accumulators, enough independent multiply-adds to
// fill both FMA pipes), else 4; then 4, then 1 for the last.
// Every matmul, forward and backward, and every product in attention runs through here; each C
// element sums over k in order, whatever tile computes it.
// With f.m > 1 (add or set), C is f.m blocks of M/f.m columns side by side, block b the product
// with B's same columns of A_b, A moved on by b·f.stride: C_b += A_b · B_b, the m factors'
// gradients in attention (dQ_f += G_f·K_f) in one call.
template <std::floating_point T>
void gemm(T* C, std::size_t ldc, strided<const T> A, const T* B, std::size_t ldb, std::size_t N, std::size_t K,
          std::size_t M, gemm_to to = gemm_to::add, const factors<T>& f = {}) {
#if defined(__AVX512F__)
  constexpr int R = 8;
#else
  constexpr int R = 4;
#endif
  auto rows = [&](std::size_t n) { return strided<const T>{A.data + n * A.row, A.row, A.col}; };
  std::size_t n = 0;
  for (; n + R <= N; n += R) gemm_rows<R>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to, f, n * ldc);
  for (; n + 4 <= N; n += 4) gemm_rows<4>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to, f, n * ldc);
  for (; n < N; ++n) gemm_rows<1>(C + n * ldc, ldc, rows(n), B, ldb, K, M, to, f, n * ldc);
}
// C[N,M] += A[N,K] · B[K,M], all three row-major and dense
template <std::floating_point T>
void gemm_accumulate(T* C, const T* A, const T* B, std::size_t N, std::size_t K, std::size_t M) {
  gemm(C, M, strided<const T>{A, K}, B, M, N, K, M);
}

// Columns [0, J vectors V) of S = Π_f (A_f · B_f) (see gemm_product) for a short K known at
// compile time: B's K rows stay in registers while the N rows of A stream past, each row's factors
// summed and multiplied there (a factor is complete every K/m steps).
template <class V, std::size_t K, int J, std::floating_point T>
void product_columns(T* S, std::size_t ld, T* part, std::size_t part_stride, strided<const T> A, const T* B,
                     std::size_t ldb, std::size_t N, std::size_t m) {
  constexpr std::size_t L = sizeof(V) / sizeof(T);
  const std::size_t Km = K / m;
  V b[K][J];
#pragma GCC unroll 16
  for (std::size_t k = 0; k < K; ++k)
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) std::memcpy(&b[k][j], B + k * ldb + j * L, sizeof(V));
  for (std::size_t n = 0; n < N; ++n) {
    const T* a = A.data + n * A.row;
    V s[J] = {}, p[J] = {};
#pragma GCC unroll 16
    for (std::size_t k = 0; k < K; ++k) {
#pragma GCC unroll 4
      for (int j = 0; j < J; ++j) s[j] += a[k * A.col] * b[k][j];
      if ((k + 1) % Km == 0) {  // factor f = k / Km is complete
#pragma GCC unroll 4
        for (int j = 0; j < J; ++j) {
          if (part) std::memcpy(part + k / Km * part_stride + n * ld + j * L, &s[j], sizeof(V));
          p[j] = k + 1 == Km ? s[j] : p[j] * s[j];
          s[j] = V{};
        }
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) std::memcpy(S + n * ld + j * L, &p[j], sizeof(V));
  }
}
template <std::size_t K, std::floating_point T>
void product_short(T* S, std::size_t ld, T* part, std::size_t ps, strided<const T> A, const T* B, std::size_t ldb,
                   std::size_t N, std::size_t M, std::size_t m) {
  using W = typename wide_simd<T>::type;
  using V = typename simd<T>::type;
  using H [[gnu::vector_size(16)]] = T;
  constexpr int J = K < 16 ? 16 / K : 1;  // B's K·J vectors and the 2J sums: about 20 registers
  constexpr std::size_t LW = sizeof(W) / sizeof(T), LV = sizeof(V) / sizeof(T), LH = sizeof(H) / sizeof(T);
  auto at = [&](std::size_t c) { return part ? part + c : nullptr; };
  std::size_t c = 0;  // across as gemm_rows goes
  for (; c + J * LW <= M; c += J * LW) product_columns<W, K, J>(S + c, ld, at(c), ps, A, B + c, ldb, N, m);
  for (; c + LW <= M; c += LW) product_columns<W, K, 1>(S + c, ld, at(c), ps, A, B + c, ldb, N, m);
  for (; c + LV <= M; c += LV) product_columns<V, K, 1>(S + c, ld, at(c), ps, A, B + c, ldb, N, m);
  for (; c + LH <= M; c += LH) product_columns<H, K, 1>(S + c, ld, at(c), ps, A, B + c, ldb, N, m);
  for (; c < M; ++c) product_columns<T, K, 1>(S + c, ld, at(c), ps, A, B + c, ldb, N, m);
}
// S[N,M] = Π_{f < m} A_f · B_f, where A_f is A's columns and B_f B's rows [f·K/m, (f+1)·K/m):
// the product-kernel score of attention (m = 1: a plain product). S's rows are ld apart; unless
// part is null, factor f's products are also written at part + f·part_stride (rows ld apart).
// Each factor sums over k in order and the product multiplies them in order, f = 0, 1, ….
template <std::floating_point T>
void gemm_product(T* S, std::size_t ld, T* part, std::size_t part_stride, strided<const T> A, const T* B,
                  std::size_t ldb, std::size_t N, std::size_t K, std::size_t M, std::size_t m) {
  if (m == 1 && !part) return gemm(S, ld, A, B, ldb, N, K, M, gemm_to::set);
  if (K == 8) return product_short<8>(S, ld, part, part_stride, A, B, ldb, N, M, m);  // the seed's heads
  if (K == 16) return product_short<16>(S, ld, part, part_stride, A, B, ldb, N, M, m);
  // longer heads: the factors' sums meet in registers, in gemm's tiles
  gemm(S, ld, A, B, ldb, N, K, M, gemm_to::product, factors<T>{m, part, part_stride});
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

// The same for eight vectors of 16 floats (AVX-512's), each one's halves added first.
template <class W>
  requires(sizeof(W) == 64)
inline void lane_sums(simd<float>::type& r, const W (&v)[8]) {
  simd<float>::type h[8];
  for (int j = 0; j < 8; ++j)
    h[j] = __builtin_shufflevector(v[j], v[j], 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v[j], v[j], 8, 9, 10, 11, 12, 13, 14, 15);
  lane_sums(r, h);
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

// y[o] = W[o, :] · x for W[O, I]: a matrix times one vector, eight rows at a time, so that each
// vector of x is loaded once for eight rows and their horizontal sums share shuffles. Every row
// sums in dot_product()'s order (lane by lane, the same tree, then the tail), so y does not depend
// on O. The last rows (O % 8) are a block of their own, and the tail columns (I % 8) of a block are
// transposed into vectors, so that they too are multiply-adds across rows: one row at a time, each
// sum is a chain of dependent steps (dot_product of 196 values: 42 ns; eight rows at once: 58 ns).
template <std::floating_point T>
void matvec(T* y, const T* W, const T* x, std::size_t O, std::size_t I) {
  std::size_t o = 0;
  if constexpr (std::is_same_v<T, float>) {  // dot_product()'s order has eight lanes: one float vector
    using V = simd<float>::type;
    const std::size_t body = I / 8 * 8, tail = I - body;
    auto block = [&]<bool full>(std::size_t rows) {  // rows o.. (all 8 when full: no tests in the loop)
      V s[8] = {}, xv, wv, r;
      for (std::size_t i = 0; i < body; i += 8) {
        std::memcpy(&xv, x + i, sizeof xv);
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 8; ++j)
          if (full || j < rows) {
            std::memcpy(&wv, W + (o + j) * I + i, sizeof wv);
            s[j] += wv * xv;
          }
      }
      lane_sums(r, s);
      if (tail > 0) {  // c[j] = the last 8 values of row j (tail columns last), transposed
        V c[8] = {};
        for (std::size_t j = 0; j < rows; ++j)
          if (body > 0) std::memcpy(&c[j], W + (o + j) * I + I - 8, sizeof(V));
          else for (std::size_t k = 0; k < tail; ++k) c[j][8 - tail + k] = W[(o + j) * I + k];
        transpose8x8(c);  // c[8 − tail + k] is column body + k across the rows
        for (std::size_t k = 0; k < tail; ++k) r += c[8 - tail + k] * x[body + k];
      }
      if (full) std::memcpy(y + o, &r, sizeof r);  // one store for the eight rows
      else for (std::size_t j = 0; j < rows; ++j) y[o + j] = r[j];
    };
    for (; o + 8 <= O; o += 8) block.template operator()<true>(8);
    if (O - o > 1) {  // (one row is as fast alone)
      block.template operator()<false>(O - o);
      return;
    }
  }
  for (; o < O; ++o) y[o] = dot_product(W + o * I, x, I);
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

}  // namespace purevlm

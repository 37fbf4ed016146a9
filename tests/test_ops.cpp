// Tier 1 (hand-computed values) and tier 2 (finite differences) for every primitive kernel pair.
#include "common.hpp"

#include <numeric>

using namespace purevlm;
using purevlm::test::gradcheck;
using purevlm::test::readout;

using purevlm::test::store;
namespace {
using T = double;
}  // namespace

TEST_CASE("matmul: hand-computed and gradients") {
  // [1 2; 3 4] · [[1 0],[1 1],[0 2]]ᵀ = [1 3 4; 3 7 8]
  std::vector<double> x{1, 2, 3, 4}, w{1, 0, 1, 1, 0, 2}, y(6), scratch(6);
  matmul_forward<T>(y, x, w, 2, 2, 3, scratch);
  CHECK(y == std::vector<double>{1, 3, 4, 3, 7, 8});
  // the blocked path (N ≥ 4, row and column remainders) against the definition, forward and backward
  rng g(2);
  for (std::size_t N : {4, 5, 9, 13})  // tiles of 8 rows, then 4, then 1
    for (std::size_t O : {3, 8, 17, 40}) {  // two wide vectors, one, 8 lanes, single columns
      const std::size_t I = 7;
      std::vector<float> in(N * I), wt(O * I), out(N * O), dout(N * O), din(N * I), dw(O * I),
          sc(matmul_scratch_size(I, O));
      for (auto* v : {&in, &wt, &dout}) for (float& e : *v) e = float(g.normal());
      matmul_forward<float>(out, in, wt, N, I, O, sc);
      matmul_backward<float>(din, dw, dout, in, wt, N, I, O);
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t o = 0; o < O; ++o) {
          double want = 0;
          for (std::size_t i = 0; i < I; ++i) want += double(in[n * I + i]) * wt[o * I + i];
          REQUIRE(out[n * O + o] == doctest::Approx(want).epsilon(1e-5));
        }
      for (std::size_t o = 0; o < O; ++o)
        for (std::size_t i = 0; i < I; ++i) {
          double want = 0;
          for (std::size_t n = 0; n < N; ++n) want += double(dout[n * O + o]) * in[n * I + i];
          REQUIRE(dw[o * I + i] == doctest::Approx(want).epsilon(1e-5));
        }
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t i = 0; i < I; ++i) {
          double want = 0;
          for (std::size_t o = 0; o < O; ++o) want += double(dout[n * O + o]) * wt[o * I + i];
          REQUIRE(din[n * I + i] == doctest::Approx(want).epsilon(1e-5));
        }
    }
  auto ps = store({{"x", 3, 5}, {"w", 4, 5}});
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [](auto& t, auto& ps) {
    return readout(t, matmul(t, t.parameter(ps, 0), t.parameter(ps, 1)));
  }), 1e-6);
}

TEST_CASE("matvec (one row) equals dot_product(), whatever the row and column remainders") {
  // Bit for bit where no multiply-add is fused (the portable build); with FMA (-march=native,
  // the kernels_native test) GCC fuses the two loops' multiply-adds differently: equal to rounding.
  rng g(4);
  for (std::size_t O : {1, 2, 7, 8, 10, 17, 32})
    for (std::size_t I : {3, 8, 13, 28, 32, 130, 196}) {
      std::vector<float> w(O * I), x(I), y(O);
      for (float& e : w) e = float(g.normal());
      for (float& e : x) e = float(g.normal());
      detail::matvec(y.data(), w.data(), x.data(), O, I);
      for (std::size_t o = 0; o < O; ++o) {
#if defined(__FMA__)
        CHECK(y[o] == doctest::Approx(detail::dot_product(&w[o * I], x.data(), I)).epsilon(1e-5));
#else
        CHECK(y[o] == detail::dot_product(&w[o * I], x.data(), I));
#endif
      }
    }
}

TEST_CASE("gemm: add and set into C, plain and transposed A, in column blocks, across every tile edge") {
  // blocks > 1: C's columns in that many equal blocks, block b from its own A_b = A + b·stride
  rng g(5);
  for (std::size_t N : {1, 3, 4, 9, 17})
    for (std::size_t M : {1, 3, 4, 5, 8, 15, 17, 33, 40, 64})
      for (std::size_t blocks : {1, 2, 4})
        for (std::size_t K : {1, 6})
          for (bool transposed_a : {false, true})
            for (auto to : {detail::gemm_to::add, detail::gemm_to::set}) {
              if (M % blocks != 0) continue;
              const std::size_t ldc = M + 2, ldb = M + 1, stride = N * K + 3;  // rows wider than the matrices: no spill
              std::vector<double> A(blocks * stride), B(K * ldb), C(N * ldc);
              for (auto* v : {&A, &B, &C})
                for (double& e : *v) e = g.normal();
              const std::vector<double> C0 = C;
              // A_b[n, k] at A[b·stride + n·K + k], or stored transposed at A[b·stride + k·N + n]
              const detail::strided<const double> a = transposed_a ? detail::transposed(detail::strided<const double>{A.data(), N})
                                                                  : detail::strided<const double>{A.data(), K};
              detail::gemm(C.data(), ldc, a, B.data(), ldb, N, K, M, to, detail::factors<double>{blocks, nullptr, stride});
              double worst = 0;
              bool spill = false;
              for (std::size_t n = 0; n < N; ++n) {
                for (std::size_t m = 0; m < M; ++m) {
                  const double* Ab = &A[m / (M / blocks) * stride];
                  double p = 0;
                  for (std::size_t k = 0; k < K; ++k) p += (transposed_a ? Ab[k * N + n] : Ab[n * K + k]) * B[k * ldb + m];
                  const double c0 = C0[n * ldc + m];
                  const double want = to == detail::gemm_to::add ? c0 + p : p;
                  worst = std::max(worst, std::abs(C[n * ldc + m] - want));
                }
                for (std::size_t m = M; m < ldc; ++m) spill = spill || C[n * ldc + m] != C0[n * ldc + m];
              }
              CAPTURE(N); CAPTURE(M); CAPTURE(blocks); CAPTURE(K); CAPTURE(transposed_a); CAPTURE(int(to));
              CHECK(worst < 1e-12);
              CHECK_FALSE(spill);
            }
}

TEST_CASE("gemm_product: the product of m factor products, short heads and long, with and without the parts") {
  // S(n, c) = Π_f Σ_{k in [f·K/m, (f+1)·K/m)} A(n, k) · B(k, c), part f = factor f's sums
  rng g(7);
  for (std::size_t K : {8, 16, 12, 64})  // 8 and 16 keep B in registers; the others run in gemm's tiles
    for (std::size_t m : {1, 2, 4})
      for (bool keep : {false, true})
        for (std::size_t N : {1, 5, 9, 17})
          for (std::size_t M : {1, 3, 16, 37, 70}) {
            if (K % m != 0) continue;
            const std::size_t ld = M + 2, ldb = M + 1, Km = K / m, ps = N * ld + 5;
            std::vector<double> A(N * K), B(K * ldb), S(N * ld), part(m * ps);
            for (auto* v : {&A, &B, &S, &part})
              for (double& e : *v) e = g.normal();
            const std::vector<double> S0 = S, part0 = part;
            detail::gemm_product(S.data(), ld, keep ? part.data() : nullptr, ps, detail::strided<const double>{A.data(), K},
                                 B.data(), ldb, N, K, M, m);
            double worst = 0;
            bool spill = false;
            for (std::size_t n = 0; n < N; ++n) {
              for (std::size_t c = 0; c < M; ++c) {
                double want = 1;
                for (std::size_t f = 0; f < m; ++f) {
                  double sf = 0;
                  for (std::size_t k = f * Km; k < (f + 1) * Km; ++k) sf += A[n * K + k] * B[k * ldb + c];
                  want *= sf;
                  worst = std::max(worst, std::abs((keep ? part[f * ps + n * ld + c] : sf) - sf));
                }
                worst = std::max(worst, std::abs(S[n * ld + c] - want));
              }
              for (std::size_t c = M; c < ld; ++c) {
                spill = spill || S[n * ld + c] != S0[n * ld + c];
                for (std::size_t f = 0; f < m; ++f) spill = spill || part[f * ps + n * ld + c] != part0[f * ps + n * ld + c];
              }
            }
            if (!keep) spill = spill || part != part0;
            CAPTURE(K); CAPTURE(m); CAPTURE(keep); CAPTURE(N); CAPTURE(M);
            CHECK(worst < 1e-9);
            CHECK_FALSE(spill);
          }
}

TEST_CASE("transpose: 8x8 register blocks and edges, strided source and destination") {
  for (std::size_t R : {3, 8, 13, 24})
    for (std::size_t C : {5, 8, 17}) {
      const std::size_t stride = C + 3, dst_stride = R + 2;
      std::vector<float> src(R * stride), dst(C * dst_stride, -1.0f);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = float(i);
      detail::transpose(dst.data(), src.data(), R, C, stride, dst_stride);
      bool ok = true;
      for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t r = 0; r < R; ++r) ok = ok && dst[c * dst_stride + r] == src[r * stride + c];
        for (std::size_t r = R; r < dst_stride; ++r) ok = ok && dst[c * dst_stride + r] == -1.0f;  // untouched
      }
      CAPTURE(R); CAPTURE(C);
      CHECK(ok);
    }
}

TEST_CASE("float exp (softmax rows): within 2 ulp of std::exp on [-87, 88], 0 below") {
  double worst = 0;
  std::vector<float> a(4001);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = -87.0f + 175.0f * float(i) / float(a.size() - 1);
  std::vector<float> e = a;
  detail::exp_sum(e.data(), e.size(), 0.0f);  // shift 0: plain e^x
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double want = std::exp(double(a[i]));
    worst = std::max(worst, std::abs(double(e[i]) - want) / want);
  }
  CHECK(worst < 2.4e-7);  // 2 ulp of float
  // the sum, and the shift: e^(x − 3) over x in [-17, 3)
  std::vector<float> c(203);
  double total = 0;
  for (std::size_t i = 0; i < c.size(); ++i) total += std::exp(double(c[i] = -17.0f + 0.1f * float(i)) - 3.0);
  CHECK(double(detail::exp_sum(c.data(), c.size(), 3.0f)) == doctest::Approx(total).epsilon(1e-6));
  // partial vectors (n not a multiple of 8) and arguments far below the range
  std::vector<float> b{-200.0f, -88.0f, 0.0f, 1.0f, -1.0f};
  const float s = detail::exp_sum(b.data(), b.size(), 0.0f);
  CHECK(b[0] == 0.0f);
  CHECK(b[1] == 0.0f);
  CHECK(b[2] == 1.0f);
  CHECK(b[3] == doctest::Approx(std::exp(1.0)).epsilon(3e-7));
  CHECK(s == doctest::Approx(1 + std::exp(1.0) + std::exp(-1.0)).epsilon(1e-6));
}

TEST_CASE("elementwise ops: add, mul, scale, relu, clamp") {
  std::vector<double> a{1, -2, 3}, b{4, 5, -6}, y(3);
  mul_forward<T>(y, a, b);
  CHECK(y == std::vector<double>{4, -10, -18});
  relu_forward<T>(y, a);
  CHECK(y == std::vector<double>{1, 0, 3});
  clamp_forward<T>(y, a, 0.0, 2.0);
  CHECK(y == std::vector<double>{1, 0, 2});
  auto ps = store({{"a", 2, 7}, {"b", 2, 7}});
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [](auto& t, auto& ps) {
    var a = t.parameter(ps, 0), b = t.parameter(ps, 1);
    var y = add(t, mul(t, a, b), scale(t, relu(t, a), 0.5));
    return readout(t, add(t, y, clamp(t, b, -0.5, 0.5)));
  }), 1e-6);
}

TEST_CASE("max_of: the largest wherever it stands, in rows of every length, floats and doubles") {
  // rows shorter and longer than four vectors, the largest in the first lane, in any vector, in
  // the tail; below it values that only tie or fall short
  for (std::size_t n = 1; n <= 100; ++n)
    for (std::size_t at = 0; at < n; ++at) {
      std::vector<float> f(n);
      std::vector<double> d(n);
      for (std::size_t i = 0; i < n; ++i) d[i] = double(f[i] = -1.0f - float((i * 7) % 5));
      f[at] = 2.5f;
      d[at] = 2.5;
      CAPTURE(n); CAPTURE(at);
      REQUIRE(detail::max_of(f.data(), n) == 2.5f);
      REQUIRE(detail::max_of(d.data(), n) == 2.5);
    }
}

TEST_CASE("reductions, softmax and cross-entropy") {
  std::vector<double> x{0, std::log(3.0)}, p(2);
  softmax_forward<T>(p, x, 1, 2);
  CHECK(p[0] == doctest::Approx(0.25));
  CHECK(p[1] == doctest::Approx(0.75));
  std::vector<double> loss(1), probs(2);
  std::vector<std::int32_t> target{1};
  cross_entropy_forward<T>(loss, probs, x, target, 1, 2);
  CHECK(loss[0] == doctest::Approx(-std::log(0.75)));
  auto ps = store({{"logits", 4, 6}});
  std::vector<std::int32_t> targets{0, 5, 2, 2};
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
    var l = t.parameter(ps, 0);
    return add(t, cross_entropy(t, l, targets), add(t, readout(t, softmax(t, l)), mean(t, l)));
  }), 1e-6);
}

TEST_CASE("rmsnorm and l2norm") {
  std::vector<double> x{3, 4}, y(2), s(1);
  l2norm_forward<T>(y, s, x, 1, 2, 0.0);
  CHECK(y[0] == doctest::Approx(0.6));
  CHECK(s[0] == doctest::Approx(5));
  rmsnorm_forward<T>(y, s, x, 1, 2, 0.0);  // rms = sqrt(12.5)
  CHECK(y[1] == doctest::Approx(4 / std::sqrt(12.5)));
  auto ps = store({{"x", 3, 8}});
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [](auto& t, auto& ps) {
    var x = t.parameter(ps, 0);
    return add(t, readout(t, rmsnorm(t, x)), readout(t, l2norm(t, x), 7));
  }), 1e-6);
}

TEST_CASE("embedding, concat, stack, slice, repeat_rows") {
  auto ps = store({{"table", 5, 4}, {"a", 3, 2}, {"row", 1, 4}});
  std::vector<std::int32_t> ids{4, 0, 4};
  basic_tape<double> t;
  var e = embedding(t, t.parameter(ps, 0), ids);
  CHECK(t.value(e)[0] == ps.value(0)[16]);
  var c = concat(t, e, t.parameter(ps, 1));
  CHECK(t.cols(c) == 6);
  CHECK(t.value(c)[5] == ps.value(1)[1]);
  var s = slice_cols(t, c, 4, 2);
  CHECK(t.value(s)[3] == ps.value(1)[3]);
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
    var e = embedding(t, t.parameter(ps, 0), ids);
    var c = concat(t, e, t.parameter(ps, 1));
    var st = stack(t, slice_cols(t, c, 1, 4), repeat_rows(t, t.parameter(ps, 2), 2));
    return readout(t, st);
  }), 1e-6);
}

TEST_CASE("bad shapes throw purevlm::error naming both shapes") {
  basic_tape<float> t;
  std::vector<float> a(6), b(8);
  var x = t.input(a, 2, 3), w = t.input(b, 2, 4);
  try {
    (void)matmul(t, x, w);
    FAIL("matmul accepted mismatched shapes");
  } catch (const purevlm::error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(msg.find("[2,4]") != std::string::npos);
  }
  CHECK_THROWS_AS((void)add(t, x, w), purevlm::error);
  CHECK_THROWS_AS((void)mul(t, x, w), purevlm::error);
  CHECK_THROWS_AS((void)concat(t, x, t.input(b, 4, 2)), purevlm::error);
  CHECK_THROWS_AS((void)slice_cols(t, x, 2, 2), purevlm::error);
  CHECK_THROWS_AS((void)t.input(a, 4, 4), purevlm::error);
  std::vector<std::int32_t> bad{7};
  CHECK_THROWS_AS((void)embedding(t, w, std::span<const std::int32_t>(bad)), purevlm::error);
  CHECK_THROWS_AS((void)cross_entropy(t, x, std::span<const std::int32_t>(bad)), purevlm::error);
  CHECK_THROWS_AS(t.backward(x), purevlm::error);
}

// The attention kernels: gradient checks, float against double across every kernel's paths, the
// causal mask, and the tensor score by hand. Built a second time at -march=native (kernels_native).
#include "common.hpp"

#include <purevlm/attention.hpp>

using namespace purevlm;
using purevlm::test::gradcheck;
using purevlm::test::readout;
using purevlm::test::store;

TEST_CASE("attention kernels pass the gradient check: dot, tensor (m=2) and m=4, full and cached rows") {
  const std::size_t C = 16, H = 2, D = 8;
  for (attention_score score : {attention_score::of(score_kind::dot, D), attention_score::of(score_kind::tensor, D), attention_score::of(score_kind::tensor, D, 4)}) {
    for (std::size_t Tq : {5, 2}) {
      auto ps = store({{"q", Tq, C}, {"k", 5, C}, {"v", 5, C}}, 11 + Tq);
      CAPTURE(score.factors);
      CAPTURE(Tq);
      PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
        return readout(t, attention(t, t.parameter(ps, 0), t.parameter(ps, 1), t.parameter(ps, 2), H, score));
      }), 1e-6);
    }
  }
}

TEST_CASE("float attention kernels match the double ones: remainders, one query or many, m = 1, 2, 3, 4, 8") {
  // sizes with Tk not a multiple of 8, head widths with scalar tails (and 8x8 transpose edges);
  // fewer than 8 queries with D a multiple of 8 take the float decoding kernel (decode_row), whose
  // keys come in groups of 8 and outputs in 4 vectors at a time, unless there are very many heads;
  // a float backward at D = 8 with m = 1 or 2 is one sweep over tiles of 128 keys, rows in pairs
  // (detail::short_head_backward): an odd row count, more than one tile, keys before the queries;
  // long heads have their rows copied out of place (Tq ≥ detail::copied_rows)
  struct size { std::size_t Tq, Tk, D, H = 2; };
  for (size z : {size{1, 13, 6}, size{3, 9, 12}, size{5, 13, 12}, size{36, 36, 24}, size{7, 40, 6}, size{1, 1, 8},
                 size{1, 30, 8, 4}, size{7, 9, 8, 5}, size{5, 33, 16}, size{2, 40, 64}, size{1, 29, 8, 30},
                 size{37, 150, 8}, size{140, 140, 8, 1}, size{260, 270, 16}})
    for (std::size_t m : {1, 2, 3, 4, 8}) {
      // (at D = 64, or over 260 rows, a product of 4 or 8 partial dot products of normal vectors
      // grows so large that float's rounding of the scores alone, in either kernel, exceeds the
      // tolerance: 5e-5 at Tq = 255, where no rows are copied)
      if (z.D % m != 0 || ((z.D == 64 || z.Tq > 200) && m > 2)) continue;
      const std::size_t H = z.H, C = H * z.D;
      const attention_score score = m == 1 ? attention_score::of(score_kind::dot, z.D) : attention_score::of(score_kind::tensor, z.D, m);
      rng g(m * 100 + z.Tk);
      std::vector<double> q(z.Tq * C), k(z.Tk * C), v(z.Tk * C), dout(z.Tq * C);
      for (auto* x : {&q, &k, &v, &dout}) for (double& e : *x) e = double(float(g.normal()));
      auto run = [&]<class T>(T) {
        std::vector<T> qt(q.begin(), q.end()), kt(k.begin(), k.end()), vt(v.begin(), v.end()),
            dt(dout.begin(), dout.end()), out(z.Tq * C), dq(z.Tq * C, T(0.5)), dk(z.Tk * C, T(0.5)), dv(z.Tk * C, T(0.5)),
            saved(attention_saved_size(z.Tq, H)), scratch(attention_scratch_size(z.Tk, z.D, m));
        attention_forward<T>(out, saved, scratch, qt, kt, vt, z.Tq, z.Tk, C, H, score);
        attention_backward<T>(dq, dk, dv, scratch, dt, saved, qt, kt, vt, out, z.Tq, z.Tk, C, H, score);
        std::vector<double> all(out.begin(), out.end());
        for (auto* x : {&dq, &dk, &dv}) all.insert(all.end(), x->begin(), x->end());
        return all;
      };
      const auto f = run(0.0f), d = run(0.0);
      double worst = 0;
      for (std::size_t i = 0; i < d.size(); ++i) worst = std::max(worst, std::abs(f[i] - d[i]) / (1 + std::abs(d[i])));
      CAPTURE(z.Tq); CAPTURE(z.Tk); CAPTURE(z.D); CAPTURE(H); CAPTURE(m);
      CHECK(worst < 2e-5);
    }
}

TEST_CASE("a key in the causal future changes nothing, even when its score would swamp the others") {
  // the last key is 100 times the first query: unmasked, its score would be the softmax's max and
  // e^(score − max) would be 0 for every key the first rows see (0 / 0)
  for (std::size_t D : {8, 64})
    for (score_kind kind : {score_kind::dot, score_kind::tensor}) {
      const std::size_t T = 40, H = 1, C = D;
      const attention_score score = attention_score::of(kind, D);
      rng g(3);
      std::vector<float> q(T * C), k(T * C), v(T * C), dout(T * C);
      for (auto* x : {&q, &k, &v, &dout}) for (float& e : *x) e = float(g.normal());
      for (std::size_t d = 0; d < D; ++d) k[(T - 1) * C + d] = 100 * q[d];
      std::vector<float> out(T * C), dq(T * C), dk(T * C), dv(T * C), saved(attention_saved_size(T, H)),
          scratch(attention_scratch_size(T, D, score.factors));
      attention_forward<float>(out, saved, scratch, q, k, v, T, T, C, H, score);
      attention_backward<float>(dq, dk, dv, scratch, dout, saved, q, k, v, out, T, T, C, H, score);
      CAPTURE(D); CAPTURE(score.factors);
      for (std::size_t d = 0; d < D; ++d) CHECK(out[d] == doctest::Approx(v[d]).epsilon(1e-6));  // row 0 sees key 0 alone
      bool finite = true;
      for (const auto* x : {&out, &dq, &dk, &dv}) for (float e : *x) finite = finite && std::isfinite(e);
      CHECK(finite);
    }
}

TEST_CASE("tensor score: hand-computed for one head") {
  // q = [1 2 | 3 4], keys k0 = [1 0 | 0 1], k1 = [0 1 | 1 0]; D = 4, m = 2, scale 1/4
  // query 1 scores: k0: (1)(4)/4 = 1, k1: (2)(3)/4 = 1.5 → softmax [1/(1+e^.5), e^.5/(1+e^.5)]
  std::vector<double> q{9, 9, 9, 9, 1, 2, 3, 4}, k{1, 0, 0, 1, 0, 1, 1, 0}, v{1, 0, 0, 0, 0, 1, 0, 0};
  std::vector<double> out(8), saved(attention_saved_size(2, 1)), scratch(attention_scratch_size(2, 4, 2));
  attention_forward<double>(out, saved, scratch, q, k, v, 2, 2, 4, 1, attention_score::of(score_kind::tensor, 4));
  const double w1 = std::exp(0.5) / (1 + std::exp(0.5));
  CHECK(out[0] == doctest::Approx(1.0));  // query 0 sees only key 0: its output is v0
  CHECK(out[1] == doctest::Approx(0.0));
  CHECK(out[4] == doctest::Approx(1 - w1));
  CHECK(out[5] == doctest::Approx(w1));
  // saved per query: max score and 1/Σ e^(score − max); query 0 has the one score q1·k0_1 · q2·k0_2 / 4
  CHECK(saved[0] == doctest::Approx(81.0 / 4));
  CHECK(saved[1] == doctest::Approx(1.0));
  CHECK(saved[2] == doctest::Approx(1.5));
  CHECK(saved[3] == doctest::Approx(1 / (1 + std::exp(-0.5))));
  // the plain kernel, the tests' oracle, gives the same hand-computed values
  std::vector<double> plain(8);
  attention_plain<double>(plain, {}, {}, {}, {}, q, k, v, 2, 2, 4, 1, attention_score::of(score_kind::tensor, 4));
  CHECK(plain[0] == doctest::Approx(1.0));
  CHECK(plain[4] == doctest::Approx(1 - w1));
  CHECK(plain[5] == doctest::Approx(w1));
}

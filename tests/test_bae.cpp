// The visual tokenizer: kernel pairs, the kernel-trick identity, real degrees, the seed's size.
#include "common.hpp"

#include <purevlm/bae.hpp>

using namespace purevlm;
using purevlm::test::gradcheck;
using purevlm::test::readout;
using purevlm::test::store;

TEST_CASE("product kernel: hand-computed and gradients for 1 to 4 factors") {
  std::vector<double> parts{1, 2, 3, 4, 5, 6}, y(2);  // two factors of length 2
  product_forward<double>(y, parts, 3, 2);
  CHECK(y == std::vector<double>{15, 48});
  for (std::size_t n = 1; n <= 4; ++n) {
    auto ps = store({{"a", 2, 3}, {"b", 2, 3}, {"c", 2, 3}, {"d", 2, 3}}, n);
    PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
      var f[4] = {t.parameter(ps, 0), t.parameter(ps, 1), t.parameter(ps, 2), t.parameter(ps, 3)};
      return readout(t, product(t, std::span<const var>(f, n)));
    }), 1e-6);
  }
}

TEST_CASE("BAE, tensor-product tokens and degree-n features pass the gradient check") {
  auto ps = store({{"x", 1, 12}, {"l", 5, 12}, {"r", 5, 12}, {"w3", 5, 12}, {"pa", 4, 5}, {"pb", 4, 5}});
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [](auto& t, auto& ps) {
    var x = t.parameter(ps, 0), l = t.parameter(ps, 1), r = t.parameter(ps, 2), w3 = t.parameter(ps, 3);
    const var bae_w[2] = {l, r}, xx[3] = {x, x, x}, deg3_w[3] = {l, r, w3};
    var f1 = l2norm(t, product_of_projections<double>(t, bae_w, std::span<const var>(xx, 2)));
    var f2 = l2norm(t, product_of_projections<double>(t, deg3_w, xx));
    const var tw[2] = {t.parameter(ps, 4), t.parameter(ps, 5)}, tf[2] = {f1, f2};
    return readout(t, product_of_projections<double>(t, tw, tf));
  }), 1e-6);
}

TEST_CASE("kernel-trick reconstruction equals the explicit Frobenius error with x xᵀ materialised") {
  const std::size_t P = 196, R = 10;
  auto ps = store({{"x", 1, P}, {"L", R, P}, {"R", R, P}, {"f", 1, R}}, 7);
  basic_tape<double> t;
  var e = reconstruction_error(t, t.parameter(ps, 3), t.parameter(ps, 1), t.parameter(ps, 2), t.parameter(ps, 0));
  auto x = ps.value(0), L = ps.value(1), Rm = ps.value(2), f = ps.value(3);
  double explicit_err = 0;  // ‖x xᵀ − Σ_j f_j l_j r_jᵀ‖² over the full 196×196 matrix
  for (std::size_t a = 0; a < P; ++a)
    for (std::size_t b = 0; b < P; ++b) {
      double m = x[a] * x[b];
      for (std::size_t j = 0; j < R; ++j) m -= f[j] * L[j * P + a] * Rm[j * P + b];
      explicit_err += m * m;
    }
  REQUIRE(explicit_err > 1.0);
  CHECK(std::abs(t.value(e)[0] - explicit_err) / explicit_err <= 1e-9);

  // and its gradient flows into f, L and R exactly
  auto small = store({{"x", 1, 9}, {"L", 3, 9}, {"R", 3, 9}, {"f", 1, 3}}, 8);
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(small, [](auto& t, auto& ps) {
    return reconstruction_error(t, t.parameter(ps, 3), t.parameter(ps, 1), t.parameter(ps, 2), t.parameter(ps, 0));
  }), 1e-6);
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(small, [](auto& t, auto& ps) {
    return seed_reconstruction_error(t, t.parameter(ps, 3), t.parameter(ps, 1), t.parameter(ps, 2),
                                     l2norm(t, t.parameter(ps, 0)));
  }), 1e-6);
}

TEST_CASE("degree is real: scaling x by c scales a degree-n feature by c^n") {
  for (std::size_t n = 1; n <= 4; ++n) {
    auto ps = store({{"x", 1, 20}, {"w0", 6, 20}, {"w1", 6, 20}, {"w2", 6, 20}, {"w3", 6, 20}}, 10 + n);
    auto feature = [&](double c) {
      basic_tape<double> t;
      std::vector<double> x(ps.value(0).begin(), ps.value(0).end());
      for (double& v : x) v *= c;
      var xv = t.input(x, 1, 20), ws[4], xs[4];
      for (std::size_t i = 0; i < n; ++i) { ws[i] = t.parameter(ps, 1 + i); xs[i] = xv; }
      var y = product_of_projections<double>(t, std::span<const var>(ws, n), std::span<const var>(xs, n));
      auto v = t.value(y);
      return std::vector<double>(v.begin(), v.end());
    };
    const double c = 1.7;
    auto base = feature(1.0), scaled = feature(c);
    for (std::size_t j = 0; j < base.size(); ++j)
      CHECK(scaled[j] == doctest::Approx(std::pow(c, double(n)) * base[j]).epsilon(1e-12));
  }
}

TEST_CASE("the seed tokenizer: 15,920 parameters, 28 features, gradient-checked end to end") {
  basic_parameters<double> ps;
  rng g(1);
  basic_tokenizer<double> tok(tokenizer_config{}, ps, g);
  CHECK(tok.parameter_count() == 15920);
  CHECK(ps.count() == 15920);
  CHECK(tok.config().features() == 28);
  CHECK(ps.find("bae_deg3_2") != nullptr);
  // a positive image-like input, normalised as SPEC.md prepares it
  std::vector<double> x(196);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = g.uniform();
  basic_tape<double> t;
  auto out = tok.forward(t, ps, ps.grads(), l2norm(t, t.input(x, 1, 196)));
  CHECK(t.size(out.features) == 28);
  REQUIRE(out.has_recon);
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
    auto o = tok.forward(t, ps, ps.grads(), l2norm(t, t.input(x, 1, 196)));
    return add(t, readout(t, o.features), scale(t, o.recon, 10.0));
  }, 60), 1e-6);
}

TEST_CASE("bad tokenizer configs name the field") {
  basic_parameters<float> ps;
  rng g(1);
  auto message = [&](tokenizer_config c) {
    try {
      basic_tokenizer<float> tok(c, ps, g);
    } catch (const purevlm::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({.bae_rank = 0}).find("bae_rank") != std::string::npos);
  CHECK(message({.direct = {{0, 8}}}).find("direct[0].degree") != std::string::npos);
  CHECK(message({.direct = {{2, 0}}}).find("direct[0].count") != std::string::npos);
  CHECK(message({.direct = {{3, 8}}}).find("reconstruction") != std::string::npos);
  CHECK(message({.pixels = 0}).find("pixels") != std::string::npos);
  basic_tokenizer<float> tok(tokenizer_config{}, ps, g);
  basic_tape<float> t;
  std::vector<float> wrong(784, 0.1f);
  try {
    (void)tok.forward(t, ps, ps.grads(), t.input(wrong, 1, 784));
    FAIL("accepted a 784-pixel image");
  } catch (const purevlm::error& e) {
    CHECK(std::string(e.what()).find("784") != std::string::npos);
    CHECK(std::string(e.what()).find("pixels") != std::string::npos);
  }
}

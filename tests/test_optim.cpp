// Adam against a hand-computed trajectory; schedules; clipping against hand-computed norms.
#include "common.hpp"

#include <purevlm/optim.hpp>

using namespace purevlm;

TEST_CASE("Adam follows a hand-computed 3-step trajectory") {
  // One parameter p0 = 1, gradients 0.5, -1, 2; beta1 .85, beta2 .99, eps 1e-8, lr 0.1.
  // step 1: m=.075 v=.0025 m̂=.5 v̂=.25 → p = 1 − .1·.5/.5 = 0.9
  // step 2: m=.06375−.15=−.08625 v=.002475+.01=.012475
  //         m̂=−.08625/.2775=−.310810810.. v̂=.012475/.0199=.626884422.. → p = .9 + .1·.31081/.79176 = .939256
  // step 3: m=−.0733125+.3=.2266875 v=.01235025+.04=.05235025
  //         m̂=.2266875/.385875=.587463... v̂=.05235025/.029701=1.762575... → p −= .1·.587463/1.327620
  basic_adam<double> adam(1);
  std::vector<double> p{1.0};
  const double g[3] = {0.5, -1.0, 2.0};
  const double m1 = 0.075, v1 = 0.0025;
  const double m2 = 0.85 * m1 + 0.15 * -1.0, v2 = 0.99 * v1 + 0.01 * 1.0;
  const double m3 = 0.85 * m2 + 0.15 * 2.0, v3 = 0.99 * v2 + 0.01 * 4.0;
  double expect = 1.0;
  const double ms[3] = {m1, m2, m3}, vs[3] = {v1, v2, v3};
  for (int s = 0; s < 3; ++s) {
    std::vector<double> grad{g[s]};
    adam.step(p, grad, 0.1);
    const double mh = ms[s] / (1 - std::pow(0.85, s + 1)), vh = vs[s] / (1 - std::pow(0.99, s + 1));
    expect -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
    CHECK(p[0] == doctest::Approx(expect).epsilon(1e-12));
  }
  CHECK(p[0] == doctest::Approx(0.939256 - 0.1 * 0.587463 / 1.327620).epsilon(1e-5));
  CHECK(adam.steps() == 3);
}

TEST_CASE("schedules") {
  schedule lin{.decay = schedule::kind::linear, .lr = 0.003, .total = 7000};
  CHECK(lin.at(0) == doctest::Approx(0.003));
  CHECK(lin.at(3500) == doctest::Approx(0.0015));
  CHECK(lin.at(7000) == doctest::Approx(0.0));
  schedule cos{.decay = schedule::kind::cosine, .lr = 1.0, .min_lr = 0.1, .warmup = 10, .total = 110};
  CHECK(cos.at(0) == doctest::Approx(0.1));   // warmup: (0+1)/10
  CHECK(cos.at(9) == doctest::Approx(1.0));
  CHECK(cos.at(60) == doctest::Approx(0.55));  // halfway through the decay
  CHECK(cos.at(110) == doctest::Approx(0.1));
}

TEST_CASE("gradient clipping matches hand-computed norms") {
  std::vector<float> g{3, 4};  // norm 5
  CHECK(clip_grad_norm<float>(g, 1.0) == doctest::Approx(5.0));
  CHECK(g[0] == doctest::Approx(0.6));
  CHECK(g[1] == doctest::Approx(0.8));
  std::vector<float> small{0.3f, 0.4f};  // norm .5 < 1: untouched
  CHECK(clip_grad_norm<float>(small, 1.0) == doctest::Approx(0.5));
  CHECK(small[0] == 0.3f);
}

TEST_CASE("Adam rejects a gradient of the wrong length") {
  basic_adam<float> adam(3);
  std::vector<float> p(3), g(2);
  CHECK_THROWS_AS(adam.step(p, g, 0.1), purevlm::error);
}

// Tier 3: the seed model against an independent PyTorch implementation (float64, exact autograd):
// same weights, image and text must give the same loss, logits and every gradient to 1e-9.
#include "common.hpp"
#include "fixture.hpp"

#include <purevlm/vlm.hpp>

using namespace purevlm;

namespace {
// max |a − b| / max |b| over a whole tensor
double relative_error(std::span<const double> a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}
}  // namespace

TEST_CASE("golden parity: the seed preset matches the PyTorch reference to 1e-9") {
  auto fx = test::read_fixture(std::string(PUREVLM_TEST_DATA) + "/golden_seed_model.txt");
  basic_vlm<double> model(vlm_config::seed(), vocabulary(mnist_class_names()));
  auto& ps = model.parameters();
  REQUIRE(ps.count() == 32240);
  for (std::size_t i = 0; i < ps.entries().size(); ++i) {
    const auto& e = ps.at(i);
    INFO("parameter " << e.name);
    REQUIRE(fx.count("param." + e.name) == 1);
    const auto& r = fx.at("param." + e.name);
    REQUIRE(r.shape == std::vector<std::size_t>{e.rows, e.cols});
    std::copy(r.values.begin(), r.values.end(), ps.value(i).begin());
  }
  const auto& x = fx.at("x").values;
  std::vector<std::int32_t> text;
  for (double v : fx.at("text_tokens").values) text.push_back(std::int32_t(v));
  CHECK(text == model.vocab().encode("five"));

  basic_tape<double> t;
  ps.zero_grads();
  auto r = model.forward(t, x, text);
  t.backward(r.loss);
  CHECK(relative_error(t.value(r.logits), fx.at("logits").values) <= 1e-9);
  CHECK(relative_error(t.value(r.text_loss), fx.at("text_loss").values) <= 1e-9);
  CHECK(relative_error(t.value(r.recon), fx.at("recon_loss").values) <= 1e-9);
  CHECK(relative_error(t.value(r.loss), fx.at("loss").values) <= 1e-9);
  for (std::size_t i = 0; i < ps.entries().size(); ++i) {
    const auto& e = ps.at(i);
    INFO("gradient of " << e.name);
    CHECK(relative_error(ps.grad(i), fx.at("grad." + e.name).values) <= 1e-9);
  }
}

// The tape end to end: a composite graph passes the gradient check, and the arena stops growing.
#include "common.hpp"

using namespace purevlm;
using purevlm::test::gradcheck;

namespace {
// A 2-layer MLP with RMSNorm and cross-entropy: x[4,6] → 10 → ReLU → RMSNorm → 3 classes.
template <std::floating_point T>
var mlp_loss(basic_tape<T>& t, basic_parameters<T>& ps, std::span<const std::int32_t> y) {
  var x = t.parameter(ps, 0), w1 = t.parameter(ps, 1), w2 = t.parameter(ps, 2);
  var h = rmsnorm(t, relu(t, matmul(t, x, w1)));
  return cross_entropy(t, matmul(t, h, w2), y);
}
template <std::floating_point T>
basic_parameters<T> mlp_parameters(std::uint64_t seed) {
  basic_parameters<T> ps;
  rng g(seed);
  ps.add("x", 4, 6, T(1), g);
  ps.add("w1", 10, 6, T(0.5), g);
  ps.add("w2", 3, 10, T(0.5), g);
  return ps;
}
}  // namespace

TEST_CASE("a 2-layer MLP with RMSNorm and cross-entropy passes the gradient check") {
  auto ps = mlp_parameters<double>(3);
  std::vector<std::int32_t> y{0, 2, 1, 2};
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) { return mlp_loss(t, ps, y); }), 1e-6);
}

TEST_CASE("the tape reuses its arena: 10,000 steps do not grow memory") {
  auto ps = mlp_parameters<float>(4);
  std::vector<std::int32_t> y{0, 2, 1, 2};
  basic_tape<float> t;
  auto step = [&] {
    t.reset();
    t.backward(mlp_loss(t, ps, y));
  };
  step();
  step();
  const std::size_t after_warmup = t.capacity_bytes();
  REQUIRE(after_warmup > 0);
  for (int i = 0; i < 10000; ++i) step();
  CHECK(t.capacity_bytes() == after_warmup);
}

TEST_CASE("gradients accumulate across backward passes into the parameter store") {
  basic_parameters<double> ps;
  rng g(5);
  ps.add("w", 2, 2, 1.0, g);
  basic_tape<double> t;
  t.backward(sum(t, t.parameter(ps, 0)));
  t.reset();
  t.backward(sum(t, t.parameter(ps, 0)));
  for (double v : ps.grads()) CHECK(v == 2.0);
}

TEST_CASE("basic_tensor: shape, row-major access, seeded normal init; a tape takes it as input") {
  rng a(9), b(9);
  auto x = basic_tensor<double>::normal({3, 4}, 2.0, a);
  CHECK(x.shape() == std::vector<std::size_t>{3, 4});
  CHECK(x.size() == 12);
  CHECK(x.shape_string() == "[3,4]");
  x(2, 1) = 5.0;
  CHECK(x[9] == 5.0);
  const auto y = basic_tensor<double>::normal({3, 4}, 2.0, b);  // same seed, same numbers
  CHECK(y[0] == x[0]);
  CHECK(y[11] == x[11]);
  basic_tape<double> t;
  var v = t.input(x);
  CHECK(t.rows(v) == 3);
  CHECK(t.value(v)[9] == 5.0);
  CHECK(t.rows(t.input(basic_tensor<double>({7}))) == 1);
  CHECK_THROWS_AS((void)t.input(basic_tensor<double>({2, 2, 2})), purevlm::error);
}

TEST_CASE("backward skips what no parameter feeds: an input's gradient stays zero, a weight's is exact") {
  basic_parameters<double> ps;
  rng g(2);
  ps.add("w", 3, 4, 1.0, g);
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8};  // [2, 4], a constant
  basic_tape<double> t;
  var xi = t.input(x, 2, 4), w = t.parameter(ps, 0);
  var twice = scale(t, xi, 2.0);  // computed from constants alone
  CHECK_FALSE(t.needs_grad(twice));
  var y = matmul(t, twice, w);
  CHECK(t.needs_grad(y));
  t.backward(sum(t, y));
  for (double v : t.grad(xi)) CHECK(v == 0.0);     // not computed
  for (double v : t.grad(twice)) CHECK(v == 0.0);  // matmul skipped din
  // ∂Σ(2x·wᵀ)/∂w[o, i] = 2 Σ_n x[n, i]
  for (std::size_t o = 0; o < 3; ++o)
    for (std::size_t i = 0; i < 4; ++i) CHECK(ps.grad(0)[o * 4 + i] == doctest::Approx(2 * (x[i] + x[4 + i])));
}

TEST_CASE("a view reads its data in place and takes no arena room; gradients past it stay exact") {
  std::vector<double> data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = 0.001 * double(i);
  basic_tape<double> t;
  var v = t.view(data, 10, 100);
  CHECK(t.value(v).data() == data.data());
  CHECK(t.capacity_bytes() < data.size() * sizeof(double));  // a copy or a slot would be 8,000 bytes
  // y = Σ view ⊙ w ⊙ w2: the parameters' gradients are exact although the view's own (which the
  // kernels also write) is thrown away, and two views in one op do not disturb them
  basic_parameters<double> ps;
  rng g(3);
  ps.add("w", 10, 100, 1.0, g);
  ps.add("w2", 10, 100, 1.0, g);
  var w = t.parameter(ps, 0), w2 = t.parameter(ps, 1), v2 = t.view(data, 10, 100);
  t.backward(sum(t, mul(t, add(t, mul(t, v, w), mul(t, v2, w)), w2)));
  bool exact = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    exact = exact && ps.grad(0)[i] == 2 * data[i] * ps.value(1)[i];
    exact = exact && ps.grad(1)[i] == (data[i] * ps.value(0)[i] + data[i] * ps.value(0)[i]);
  }
  CHECK(exact);
}

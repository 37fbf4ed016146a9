// Reliability: crafted checkpoints are refused field by field, range checks cannot wrap, labels
// are checked, the worker pool carries exceptions back, concurrent saves do not collide, every
// backward kernel accumulates, clipping and batch chunks do what they say, SPEC.md's init, and
// the attention kernels against the plain formulas.
#include "common.hpp"

#include <cstring>
#include <filesystem>
#include <thread>

#include <purevlm/vlm.hpp>

using namespace purevlm;
using purevlm::test::error_of;
using purevlm::test::has;
using purevlm::test::temp_dir;
namespace fs = std::filesystem;

namespace {
labeled_images tiny_data(std::size_t n, std::uint8_t label_max = 9) {
  labeled_images d;
  d.images.count = n; d.images.rows = 28; d.images.cols = 28;
  d.images.pixels.assign(n * 784, 0);
  rng g(2);
  for (std::size_t i = 0; i < n; ++i) {
    d.labels.push_back(std::uint8_t(g.below(std::size_t(label_max) + 1)));
    for (int s = 0; s < 60; ++s) d.images.pixels[i * 784 + 200 + g.below(400)] = std::uint8_t(100 + g.below(156));
  }
  return d;
}
}  // namespace

TEST_CASE("checkpoints: every field is checked on its own, whatever the checksum says") {
  temp_dir d;
  const vocabulary names(mnist_class_names());
  auto refused = [&](auto&& spoil, const std::string& part) {
    vlm m(vlm_config::seed(), names, 1);
    basic_adam<float> adam(m.parameter_count());
    rng init = m.init_rng();
    run_state run{.step = 1, .total_steps = 2, .seed = 1, .batch = 1};
    spoil(m, adam, init, run);
    save_checkpoint(d.at("x.ckpt"), m, adam, init, run);  // a valid checksum over spoiled contents
    vlm fresh(vlm_config::seed(), names, 2);
    basic_adam<float> fresh_adam(fresh.parameter_count());
    const std::vector<float> before(fresh.parameters().values().begin(), fresh.parameters().values().end());
    const std::string msg = error_of([&] { restore(read_checkpoint(d.at("x.ckpt")), fresh, &fresh_adam); });
    CAPTURE(msg);
    CHECK(has(msg, part));
    CHECK(std::ranges::equal(before, fresh.parameters().values()));  // nothing applied
  };
  refused([](vlm& m, auto&, auto&, auto&) { m.parameters().values()[17] = std::nanf(""); }, "parameter 17");
  refused([](vlm& m, auto&, auto&, auto&) { m.parameters().values()[3] = INFINITY; }, "not a finite number");
  refused([](vlm&, basic_adam<float>& a, auto&, auto&) { a.set_steps(-4); }, "step count is -4");
  refused([](vlm&, basic_adam<float>& a, auto&, auto&) { a.second_moment()[5] = -1.0f; }, "second moment 5");
  refused([](vlm&, auto&, rng& r, auto&) { r.set_state({0, 0, 0, 0}); }, "RNG state is all zeros");
  refused([](vlm&, auto&, auto&, run_state& s) { s.batch = 0; }, "batch 0");

  // a class name of megabytes is refused before anything is sized from it
  vlm long_names(vlm_config::seed(), vocabulary({std::string(100, 'a'), "b"}), 1);
  basic_adam<float> adam(long_names.parameter_count());
  save_checkpoint(d.at("long.ckpt"), long_names, adam, long_names.init_rng(), {.batch = 1});
  CHECK(has(error_of([&] { (void)read_checkpoint(d.at("long.ckpt")); }), "a name of 100 bytes"));

  // an Adam of another size is refused, not overrun
  vlm m(vlm_config::seed(), names, 1);
  basic_adam<float> good(m.parameter_count()), small(10);
  save_checkpoint(d.at("ok.ckpt"), m, good, m.init_rng(), {.batch = 1});
  CHECK(has(error_of([&] { restore(read_checkpoint(d.at("ok.ckpt")), m, &small); }), "holds 10 moments"));
}

TEST_CASE("checkpoints: two writers of one path never collide, and no temporary file is left") {
  temp_dir d;
  vlm m(vlm_config::seed(), vocabulary(mnist_class_names()), 1);
  basic_adam<float> adam(m.parameter_count());
  std::vector<std::string> errors(2);
  auto writer = [&](std::size_t w) {
    try {
      for (int i = 0; i < 20; ++i) save_checkpoint(d.at("shared.ckpt"), m, adam, m.init_rng(), {.step = i, .batch = 1});
    } catch (const std::exception& e) {
      errors[w] = e.what();
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());
  vlm back(vlm_config::seed(), vocabulary(mnist_class_names()), 2);
  restore(read_checkpoint(d.at("shared.ckpt")), back);
  CHECK(std::ranges::equal(back.parameters().values(), m.parameters().values()));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.path)) ++files;
  CHECK(files == 1);
}

TEST_CASE("range checks cannot wrap: huge counts and offsets are refused") {
  basic_tape<float> t;
  std::vector<float> x(12, 1.0f);
  var v = t.input(x, 3, 4);
  const std::size_t huge = std::numeric_limits<std::size_t>::max();
  CHECK(has(error_of([&] { (void)slice_rows(t, v, 2, huge); }), "outside"));
  CHECK(has(error_of([&] { (void)slice_rows(t, v, huge, 2); }), "outside"));
  CHECK(has(error_of([&] { (void)slice_cols(t, v, 3, huge); }), "outside"));
  CHECK(has(error_of([&] { (void)slice_cols(t, v, huge, 2); }), "outside"));
  basic_parameters<float> ps;
  rng g(1);
  basic_gpt<float> gpt(gpt_config{.vocab = 5, .block_size = 8, .n_embd = 8, .n_head = 2, .mlp_hidden = 8}, ps, g);
  std::vector<float> e(3 * 8, 0.1f);
  CHECK(has(error_of([&] { (void)gpt.forward(t, ps, ps.grads(), t.input(e, 3, 8), nullptr, 3); }), "logits_from"));
  CHECK(has(error_of([&] { (void)gpt.add_positions(t, ps, ps.grads(), t.input(e, 3, 8), huge - 1); }), "exceed block_size"));
}

TEST_CASE("the trainer checks labels against the class names, and will not keep a temporary data set") {
  static_assert(!std::is_constructible_v<trainer, vlm&, labeled_images&&, std::uint64_t, std::size_t>);
  static_assert(std::is_constructible_v<trainer, vlm&, const labeled_images&, std::uint64_t, std::size_t>);
  auto data = tiny_data(8);
  data.labels[5] = 12;
  vlm m(vlm_config::seed(), vocabulary(mnist_class_names()), 1);
  CHECK(has(error_of([&] { trainer tr(m, data, 1); }), "image 5 has label 12"));
}

TEST_CASE("worker pool: an exception in any worker reaches the caller after every worker has stopped") {
  detail::worker_pool pool(2);
  for (std::size_t thrower : {0, 1, 2}) {
    std::atomic<int> finished{0};
    const std::string msg = error_of([&] {
      pool.run([&](std::size_t w) {
        if (w == thrower) throw error("worker " + std::to_string(w) + " failed");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // still busy when the thrower throws
        finished.fetch_add(1);
      });
    });
    CHECK(msg == "worker " + std::to_string(thrower) + " failed");
    CHECK(finished.load() == 2);  // the others finished before run() returned
  }
  std::atomic<int> ran{0};  // and the pool still works
  pool.run([&](std::size_t) { ran.fetch_add(1); });
  CHECK(ran.load() == 3);
}

TEST_CASE("every backward kernel adds to the gradient that is there") {
  rng g(9);
  auto random = [&](std::size_t n) {
    std::vector<double> v(n);
    for (double& e : v) e = g.normal();
    return v;
  };
  // backward(grads...) must give prefill + what it gives into zeros, for every output it writes
  auto check_adds = [](const char* name, std::vector<std::size_t> sizes, auto&& backward) {
    CAPTURE(name);
    std::vector<std::vector<double>> zero, filled;
    for (std::size_t n : sizes) { zero.emplace_back(n, 0.0); filled.emplace_back(n, 0.25); }
    backward(zero);
    backward(filled);
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      double mag = 0;
      for (std::size_t i = 0; i < sizes[k]; ++i) {
        REQUIRE(filled[k][i] == doctest::Approx(zero[k][i] + 0.25).epsilon(1e-12));
        mag += std::abs(zero[k][i]);
      }
      CHECK(mag > 0);  // a real gradient
    }
  };
  {  // attention, both scores
    const std::size_t Tq = 5, Tk = 5, C = 16, H = 2, D = 8;
    for (attention_score sc : {attention_score::of(score_kind::dot, D), attention_score::of(score_kind::tensor, D)}) {
      auto q = random(Tq * C), k = random(Tk * C), v = random(Tk * C), dout = random(Tq * C);
      std::vector<double> out(Tq * C), saved(attention_saved_size(Tq, H)), scratch(attention_scratch_size(Tk, D, sc.factors));
      attention_forward<double>(out, saved, scratch, q, k, v, Tq, Tk, C, H, sc);
      check_adds("attention", {Tq * C, Tk * C, Tk * C}, [&](auto& gr) {
        attention_backward<double>(gr[0], gr[1], gr[2], scratch, dout, saved, q, k, v, out, Tq, Tk, C, H, sc);
      });
    }
  }
  {  // matmul, both products
    const std::size_t N = 6, I = 5, O = 7;
    auto x = random(N * I), w = random(O * I), dout = random(N * O);
    check_adds("matmul", {N * I, O * I}, [&](auto& gr) { matmul_backward<double>(gr[0], gr[1], dout, x, w, N, I, O); });
  }
  {  // the norms, softmax, cross-entropy
    const std::size_t N = 3, C = 6;
    auto x = random(N * C), dout = random(N * C);
    std::vector<double> y(N * C), s(N);
    rmsnorm_forward<double>(y, s, x, N, C, 1e-5);
    check_adds("rmsnorm", {N * C}, [&](auto& gr) { rmsnorm_backward<double>(gr[0], dout, y, s, N, C); });
    l2norm_forward<double>(y, s, x, N, C, 1e-8);
    check_adds("l2norm", {N * C}, [&](auto& gr) { l2norm_backward<double>(gr[0], dout, x, s, N, C, 1e-8); });
    softmax_forward<double>(y, x, N, C);
    check_adds("softmax", {N * C}, [&](auto& gr) { softmax_backward<double>(gr[0], dout, y, N, C); });
    const std::vector<std::int32_t> targets{1, 0, 5};
    std::vector<double> loss(1), one{1.0};
    cross_entropy_forward<double>(loss, y, x, targets, N, C);
    check_adds("cross_entropy", {N * C}, [&](auto& gr) { cross_entropy_backward<double>(gr[0], one, y, targets, N, C); });
  }
  {  // the tokenizer's product and Gram kernels
    const std::size_t R = 4, P = 6;
    auto parts = random(3 * R), dout = random(R), f = random(R), L = random(R * P), Rm = random(R * P);
    check_adds("product", {R, R, R}, [&](auto& gr) {
      for (std::size_t i = 0; i < 3; ++i) product_backward<double>(gr[i], i, dout, parts, 3, R);
    });
    std::vector<double> q(1), gl(R * R), gr_(R * R), cl(R * R), cr(R * R), one{0.5};
    gram_quadratic_forward<double>(q, gl, gr_, f, L, Rm, R, P);
    check_adds("gram_quadratic", {R, R * P, R * P}, [&](auto& gr) {
      gram_quadratic_backward<double>(gr[0], gr[1], gr[2], cl, cr, one, gl, gr_, f, L, Rm, R, P);
    });
  }
}

TEST_CASE("per-matrix clipping leaves each tokenizer matrix's gradient at most clip_matrix") {
  const auto data = tiny_data(64);
  auto grad_norms = [&](double clip_matrix) {
    vlm_config c = vlm_config::seed();
    c.train.clip_matrix = clip_matrix;
    c.train.clip_global = 0;  // only the per-matrix clip acts
    vlm m(c, vocabulary(mnist_class_names()), 4);
    trainer tr(m, data, 4, 1);
    tr.step();
    std::vector<double> norms;
    for (std::size_t i = 0; i < m.parameters().entries().size(); ++i)
      if (m.is_tokenizer_parameter(i)) norms.push_back(l2_norm<float>(m.parameters().grad(i)));
    return norms;
  };
  const double limit = 0.01;  // below the seed's first-step gradients, so the clip has work to do
  const auto free = grad_norms(0), clipped = grad_norms(limit);
  REQUIRE(free.size() == 11);  // bae1_l … bae_deg3_2
  double largest = 0;
  for (double n : free) largest = std::max(largest, n);
  CHECK(largest > 2 * limit);
  for (std::size_t i = 0; i < clipped.size(); ++i) {
    CHECK(clipped[i] <= limit * (1 + 1e-5));
    if (free[i] <= limit) CHECK(clipped[i] == doctest::Approx(free[i]));  // untouched below the limit
  }
}

TEST_CASE("a step over an odd batch is the mean of its samples, every one of them") {
  const auto data = tiny_data(40);
  vlm_config c = vlm_config::default_preset();
  c.train.batch = 11;  // 8 chunks of 1 or 2 samples
  c.train.shuffle = false;
  c.train.shift = 0;
  c.train.clip_global = 0;
  vlm m(c, vocabulary(mnist_class_names()), 5);
  // the mean gradient and loss of samples 0..10 (file order), one at a time
  const std::size_t P = m.parameter_count();
  std::vector<float> want(P, 0.0f), one(P), x(m.config().pixels());
  double want_loss = 0;
  tape t;
  for (std::size_t j = 0; j < 11; ++j) {
    std::fill(one.begin(), one.end(), 0.0f);
    prepare<float>(x, data.images.image(j));
    t.reset();
    auto r = m.forward(t, x, m.vocab().encode(mnist_class_names()[data.labels[j]]), one);
    t.backward(r.loss);
    want_loss += t.value(r.loss)[0] / 11.0;
    for (std::size_t i = 0; i < P; ++i) want[i] += one[i] / 11.0f;
  }
  for (std::size_t threads : {1, 2}) {
    vlm fresh(c, vocabulary(mnist_class_names()), 5);
    trainer tr(fresh, data, 5, threads);
    const auto s = tr.step();
    CHECK(s.loss == doctest::Approx(want_loss).epsilon(1e-5));
    double worst = 0;
    for (std::size_t i = 0; i < P; ++i) worst = std::max(worst, double(std::abs(fresh.parameters().grads()[i] - want[i])));
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("SPEC.md's init: BAE matrices Normal(0, 0.05), tensor-product projections and the rest 0.08") {
  vlm m(vlm_config::seed(), vocabulary(mnist_class_names()), 42);
  for (std::size_t i = 0; i < m.parameters().entries().size(); ++i) {
    const auto& e = m.parameters().entries()[i];
    const auto v = m.parameters().value(i);
    double s2 = 0;
    for (float x : v) s2 += double(x) * x;
    const double sd = std::sqrt(s2 / double(v.size())), want = e.name.rfind("bae", 0) == 0 ? 0.05 : 0.08;
    CAPTURE(e.name);
    CHECK(std::abs(sd / want - 1) < 0.25);  // 120 values at least: 0.25 is ~4 standard errors
  }
}

TEST_CASE("attention kernels against the plain formulas (attention_plain), forward and backward, across tiles") {
  // sizes that cross the 64 x 64 tiles and the groups of 8 on the diagonal, with Tq < Tk (cached
  // queries: tiles that start mid-block), one query, every factor count, and long heads (Tq ≥
  // detail::copied_rows: rows copied out of place, then dQ's copied back)
  struct size { std::size_t Tq, Tk, D, m; };
  for (size z : {size{4, 4, 8, 1}, size{4, 4, 8, 2}, size{1, 9, 12, 3}, size{3, 13, 6, 2}, size{36, 36, 8, 2},
                 size{130, 130, 8, 1}, size{130, 130, 8, 2}, size{70, 150, 12, 3}, size{1, 150, 8, 2},
                 size{150, 150, 64, 2}, size{67, 67, 64, 1}, size{256, 256, 16, 2}, size{300, 333, 64, 1}}) {
    const std::size_t H = 2, C = H * z.D;
    const attention_score score = z.m == 1 ? attention_score::of(score_kind::dot, z.D) : attention_score::of(score_kind::tensor, z.D, z.m);
    rng g(z.Tk * 10 + z.m);
    std::vector<double> q(z.Tq * C), k(z.Tk * C), v(z.Tk * C), dout(z.Tq * C);
    for (auto* x : {&q, &k, &v, &dout}) for (double& e : *x) e = g.normal();
    std::vector<double> out(z.Tq * C), saved(attention_saved_size(z.Tq, H)), scratch(attention_scratch_size(z.Tk, z.D, z.m));
    std::vector<double> dq(z.Tq * C, 0.5), dk(z.Tk * C, 0.5), dv(z.Tk * C, 0.5);  // gradients accumulate
    attention_forward<double>(out, saved, scratch, q, k, v, z.Tq, z.Tk, C, H, score);
    attention_backward<double>(dq, dk, dv, scratch, dout, saved, q, k, v, out, z.Tq, z.Tk, C, H, score);
    std::vector<double> want(z.Tq * C), wq(z.Tq * C, 0.5), wk(z.Tk * C, 0.5), wv(z.Tk * C, 0.5);
    attention_plain<double>(want, {}, {}, {}, {}, q, k, v, z.Tq, z.Tk, C, H, score);
    attention_plain<double>({}, wq, wk, wv, dout, q, k, v, z.Tq, z.Tk, C, H, score);
    auto worst = [](const std::vector<double>& a, const std::vector<double>& b) {
      double w = 0, mag = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        w = std::max(w, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
        mag += std::abs(b[i] - 0.5);
      }
      CHECK(mag > 0);  // a real value, not the starting 0.5 everywhere
      return w;
    };
    CAPTURE(z.Tq); CAPTURE(z.Tk); CAPTURE(z.D); CAPTURE(z.m);
    CHECK(worst(out, want) < 1e-12);
    CHECK(worst(dq, wq) < 1e-11);
    CHECK(worst(dk, wk) < 1e-11);
    CHECK(worst(dv, wv) < 1e-11);
  }
}

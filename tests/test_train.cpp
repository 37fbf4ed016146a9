// Training: a short seeded run must learn; runs are bit-identical; resume equals straight through;
// checkpoints refuse truncated, corrupt, foreign and wrong-architecture files.
#include "common.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <purevlm/vlm.hpp>

using namespace purevlm;
using purevlm::test::error_of;
using purevlm::test::has;
namespace fs = std::filesystem;

namespace {
// 200 synthetic 28x28 "digits": class k is a bright bar at column 2 + 2k, jittered.
labeled_images synthetic(std::size_t n = 200, std::uint64_t seed = 3) {
  labeled_images d;
  d.images.count = n; d.images.rows = 28; d.images.cols = 28;
  d.images.pixels.assign(n * 784, 0);
  rng g(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = g.below(10);
    d.labels.push_back(std::uint8_t(k));
    const std::size_t col = 3 + 2 * k + g.below(2), top = 4 + g.below(6);
    for (std::size_t r = top; r < top + 16; ++r) d.images.pixels[i * 784 + r * 28 + col] = 255;
  }
  return d;
}
vlm_config small_run(std::int64_t steps, bool shuffle) {
  vlm_config c = vlm_config::default_preset();
  c.train.steps = steps;
  c.train.batch = 4;
  c.train.shuffle = shuffle;
  c.train.lr.warmup = 5;
  c.train.shift = 0;  // the synthetic classes are 2 pixels apart: no translation
  return c;
}
std::vector<float> train_params(const vlm_config& c, const labeled_images& d, std::size_t threads, std::int64_t steps) {
  vlm m(c, vocabulary(mnist_class_names()), 7);
  trainer tr(m, d, 7, threads);
  for (std::int64_t i = 0; i < steps; ++i) tr.step();
  return {m.parameters().values().begin(), m.parameters().values().end()};
}
}  // namespace

TEST_CASE("a short seeded run learns: the loss falls well below its start and words come out right") {
  const auto data = synthetic();
  vlm_config c = small_run(300, true);
  vlm m(c, vocabulary(mnist_class_names()), 1);
  trainer tr(m, data, 1, 1);
  double first = 0, last = 0;
  for (int i = 0; i < 300; ++i) {
    const auto s = tr.step();
    REQUIRE(s.finite);
    if (i < 10) first += s.loss / 10;
    if (i >= 290) last += s.loss / 10;
  }
  CHECK(first > 1.5);
  CHECK(last < 0.3 * first);
  std::size_t right = 0;
  std::vector<float> x(196);
  for (std::size_t i = 0; i < 50; ++i) {
    prepare<float>(x, data.images.image(i));
    right += m.generate(x) == mnist_class_names()[data.labels[i]];
  }
  CHECK(right >= 35);
}

TEST_CASE("a step that turns a parameter non-finite is reported, and a non-finite gradient is never applied") {
  const auto data = synthetic();
  vlm_config c = small_run(10, false);
  c.train.lr = {.decay = schedule::kind::constant, .lr = 1e300};  // one step overflows the weights
  c.train.clip_global = 0;
  vlm m(c, vocabulary(mnist_class_names()), 3);
  trainer tr(m, data, 3, 1);
  const auto first = tr.step();
  CHECK_FALSE(first.finite);
  // the model is now broken; the next step's loss is not finite and its update is skipped
  const std::vector<float> before(m.parameters().values().begin(), m.parameters().values().end());
  const auto second = tr.step();
  CHECK_FALSE(second.finite);
  const std::vector<float> after(m.parameters().values().begin(), m.parameters().values().end());
  CHECK(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)) == 0);
}

TEST_CASE("training is bit-identical run to run and whatever the thread count") {
  const auto data = synthetic();
  auto c = small_run(20, true);
  c.train.shift = 2;  // exercise the augmentation path too
  const auto one = train_params(c, data, 1, 20);
  CHECK(one == train_params(c, data, 1, 20));
  CHECK(one == train_params(c, data, 2, 20));
  CHECK(one == train_params(c, data, 3, 20));  // 3 workers over the chunks: uneven shares
  c.train.batch = 11;  // chunks of unequal size (11 samples in 8 chunks)
  CHECK(train_params(c, data, 1, 10) == train_params(c, data, 2, 10));
}

TEST_CASE("resume: N steps, save, load, M steps == N+M steps straight through (bit-identical)") {
  const auto data = synthetic();
  for (bool shuffle : {false, true}) {
    const auto c = small_run(30, shuffle);
    const auto straight = train_params(c, data, 1, 30);
    const std::string path = (fs::temp_directory_path() / "purevlm_resume_test.ckpt").string();
    {
      vlm m(c, vocabulary(mnist_class_names()), 7);
      trainer tr(m, data, 7, 1);
      for (int i = 0; i < 18; ++i) tr.step();
      save_checkpoint(path, m, tr.adam(), m.init_rng(), {.step = tr.steps_done(), .total_steps = 30, .seed = 7, .batch = 4});
    }
    vlm m(c, vocabulary(mnist_class_names()), 999);  // different init: everything must come from the file
    trainer tr(m, data, 7, 1);
    run_state run;
    restore(read_checkpoint(path), m, &tr.adam(), &run, &m.init_rng());
    CHECK(run.step == 18);
    tr.set_steps_done(run.step);
    for (int i = 18; i < 30; ++i) tr.step();
    CHECK(std::vector<float>(m.parameters().values().begin(), m.parameters().values().end()) == straight);
    fs::remove(path);
  }
}

TEST_CASE("checkpoints: round trip, and truncated, corrupt, foreign or wrong-architecture files say which") {
  auto adam_for = [](vlm& m) { return basic_adam<float>(m.parameter_count()); };
  const fs::path dir = fs::temp_directory_path() / "purevlm_ckpt_test";
  fs::create_directories(dir);
  const std::string path = (dir / "a.ckpt").string();
  vlm m(vlm_config::seed(), vocabulary(mnist_class_names()), 5);
  basic_adam<float> adam(m.parameter_count());
  save_checkpoint(path, m, adam, m.init_rng(), {.step = 3});
  CHECK_FALSE(fs::exists(path + ".tmp"));
  vlm back(vlm_config::seed(), vocabulary(mnist_class_names()), 6);
  restore(read_checkpoint(path), back);
  CHECK(std::ranges::equal(back.parameters().values(), m.parameters().values()));

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(dir / name, std::ios::binary) << b;
    return (dir / name).string();
  };
  CHECK(has(error_of([&] { (void)read_checkpoint(write("t.ckpt", bytes.substr(0, bytes.size() / 2))); }), "truncated"));
  CHECK(has(error_of([&] { (void)read_checkpoint(write("h.ckpt", bytes.substr(0, 20))); }), "truncated"));
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  CHECK(has(error_of([&] { (void)read_checkpoint(write("c.ckpt", flipped)); }), "checksum"));
  CHECK(has(error_of([&] { (void)read_checkpoint(write("f.ckpt", "P5 28 28 255\n....")); }), "not a purevlm checkpoint"));
  std::string future = bytes;
  future[8] = 9;
  CHECK(has(error_of([&] { (void)read_checkpoint(write("v.ckpt", future)); }), "version 9"));
  CHECK(has(error_of([&] { (void)read_checkpoint((dir / "missing.ckpt").string()); }), "cannot open"));
  vlm other(vlm_config::default_preset(), vocabulary(mnist_class_names()));
  CHECK(has(error_of([&] { restore(read_checkpoint(path), other); }), "wrong architecture"));
  // a checkpoint of purevlm 0.1's "default" (global tokenizer, two chunked vision positions) is
  // refused by today's default with a message that says to retrain
  vlm_config old_default = vlm_config::seed();
  old_default.preset = "default";
  old_default.tokenizer.direct = {{2, 36}};
  old_default.vision = vision_mode::chunked;
  old_default.vision_positions = 2;
  old_default.gpt.mlp_hidden = 32;
  old_default.gpt.block_size = 8;
  vlm old(old_default, vocabulary(mnist_class_names()));
  save_checkpoint((dir / "old.ckpt").string(), old, adam_for(old), old.init_rng(), {});
  const std::string refused = error_of([&] { restore(read_checkpoint((dir / "old.ckpt").string()), other); });
  CHECK(has(refused, "wrong architecture"));
  CHECK(has(refused, "retrain"));
  vlm fashion(vlm_config::seed(), vocabulary(fashion_mnist_class_names()));
  CHECK(has(error_of([&] { restore(read_checkpoint(path), fashion); }), "class names"));
  // a failed save leaves the existing file as it was
  CHECK(has(error_of([&] { save_checkpoint((dir / "no_such_dir" / "x.ckpt").string(), m, adam, m.init_rng(), {}); }), "cannot open"));
  fs::remove_all(dir);
}

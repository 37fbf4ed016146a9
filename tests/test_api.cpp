// The library as its users call it: one call from an image to an answer with probabilities,
// const inference shared by threads, and a batch call that gives the one-by-one results.
#include "common.hpp"

#include <filesystem>
#include <fstream>
#include <thread>

#include <purevlm/vlm.hpp>

using namespace purevlm;

namespace {
// A default-preset model trained a little on synthetic bars, so its answers are not uniform.
const vlm& trained() {
  static const vlm m = [] {
    labeled_images d;
    d.images.count = 100; d.images.rows = 28; d.images.cols = 28;
    d.images.pixels.assign(100 * 784, 0);
    rng g(3);
    for (std::size_t i = 0; i < 100; ++i) {
      const std::size_t k = g.below(10);
      d.labels.push_back(std::uint8_t(k));
      for (std::size_t r = 6; r < 22; ++r) d.images.pixels[i * 784 + r * 28 + 3 + 2 * k] = 255;
    }
    vlm_config c = vlm_config::default_preset();
    c.train.steps = 300;
    c.train.batch = 8;
    c.train.shift = 0;
    vlm model(c, vocabulary(mnist_class_names()), 2);
    trainer tr(model, d, 2, 2);
    for (int i = 0; i < 300; ++i) tr.step();
    return model;
  }();
  return m;
}
std::vector<std::uint8_t> bar_image(std::size_t k, std::size_t top = 6) {
  std::vector<std::uint8_t> img(784, 0);
  for (std::size_t r = top; r < top + 16; ++r) img[r * 28 + 3 + 2 * k] = 255;
  return img;
}
}  // namespace

TEST_CASE("read(): the word, its probability and each class name's; they sum to at most 1 and agree with decoding") {
  const vlm& m = trained();
  const word_trie words = m.class_trie();
  int confident = 0;
  for (std::size_t k = 0; k < 10; ++k) {
    const auto img = bar_image(k, 4 + k % 5);
    const reading r = m.read(std::span<const std::uint8_t>(img));
    std::vector<float> x(m.config().pixels());
    prepare<float>(x, img);
    CHECK(r.word == m.generate(x));
    REQUIRE(r.class_probabilities.size() == 10);
    double total = 0, best = -1;
    std::size_t argmax = 0;
    for (std::size_t c = 0; c < 10; ++c) {
      CHECK(r.class_probabilities[c] >= 0.0);
      total += r.class_probabilities[c];
      if (r.class_probabilities[c] > best) { best = r.class_probabilities[c]; argmax = c; }
    }
    CHECK(total <= 1.0 + 1e-9);
    CHECK(total > 0.5);  // trained: most of the mass is on names
    // A name of probability > 1/2 is what constrained (greedy) decoding writes: each of its
    // letters, and its end, has conditional probability > 1/2 given the letters before.
    if (best > 0.5) {
      ++confident;
      CHECK(m.generate(x, decoding{.words = &words}) == mnist_class_names()[argmax]);
    }
    const int said = m.vocab().class_of(r.word);
    if (said >= 0) CHECK(r.probability == r.class_probabilities[std::size_t(said)]);
  }
  CHECK(confident >= 5);
}

TEST_CASE("trace(): per letter, its probability and attention weights that sum to 1 over the positions it can see") {
  const vlm& m = trained();
  for (std::size_t k : {1, 4, 7}) {
    const auto img = bar_image(k);
    std::vector<float> x(m.config().pixels());
    prepare<float>(x, img);
    const auto tr = m.trace(x);
    const reading r = m.read(std::span<const std::uint8_t>(img));
    CHECK(tr.word == r.word);
    REQUIRE(tr.letters.size() == tr.word.size());
    CHECK(tr.vision_positions == 16);
    CHECK(tr.positions == 16 + 1 + tr.word.size());
    double product = 1;
    for (std::size_t j = 0; j < tr.letters.size(); ++j) {
      const auto& a = tr.letters[j];
      CHECK(a.letter == tr.word.substr(j, 1));
      CHECK(a.probability > 0.0);
      CHECK(a.probability <= 1.0);
      product *= a.probability;
      REQUIRE(a.weights.size() == tr.layers * tr.heads * tr.positions);
      for (std::size_t lh = 0; lh < tr.layers * tr.heads; ++lh) {
        const double* w = &a.weights[lh * tr.positions];
        double seen = 0, future = 0;
        const std::size_t n = tr.vision_positions + 1 + j;  // the vision tokens, BOS, the letters before
        for (std::size_t p = 0; p < tr.positions; ++p) (p < n ? seen : future) += w[p];
        CHECK(seen == doctest::Approx(1.0).epsilon(1e-5));
        CHECK(future == 0.0);
      }
    }
    // the word's probability is its letters' times the end's: at most their product
    CHECK(r.probability <= product * (1 + 1e-4));
    CHECK(r.probability > 0.2 * product);
  }
}

TEST_CASE("token_footprint(): where the default's 4x4 tokens look in the 14x14 image") {
  const auto f = vlm_config::default_preset().patches.token_footprint();
  // 5x5 pad 2, pool 2 stride 2, then 3x3, pool 2 stride 1: token (0, 0) is centred on pixel 3.5,
  // neighbours 2 pixels apart, each seeing 12 pixels square (worked out by hand)
  CHECK(f.first == 3.5);
  CHECK(f.step == 2.0);
  CHECK(f.extent == 12);
}

TEST_CASE("read() from a picture: contrast, page size and placement do not change the answer") {
  const vlm& m = trained();
  // one dark stroke on light paper, light on dark, and on a bigger page somewhere else: the same
  // digit once made MNIST-like (crop, 20-pixel box, centre of mass), so the same reading bit for bit
  auto page = [](std::size_t w, std::size_t h, std::size_t x0, std::size_t y0, std::uint8_t paper, std::uint8_t ink) {
    gray_image p{.width = w, .height = h, .pixels = std::vector<std::uint8_t>(w * h, paper)};
    for (std::size_t y = y0; y < y0 + 30; ++y)
      for (std::size_t x = x0; x < x0 + 3; ++x) p.pixels[y * w + x] = ink;
    return p;
  };
  const reading a = m.read(page(60, 50, 45, 10, 230, 20)), b = m.read(page(60, 50, 45, 10, 25, 235)),  // 255 − each value
                c = m.read(page(90, 80, 7, 44, 230, 20));
  CHECK(a.probability > 0);
  CHECK(b.word == a.word);
  CHECK(b.class_probabilities == a.class_probabilities);
  CHECK(c.class_probabilities == a.class_probabilities);
}

TEST_CASE("inference is const and thread-safe: many threads on one model give the single-thread results bit for bit") {
  const vlm& m = trained();
  std::vector<std::vector<std::uint8_t>> images;
  for (std::size_t i = 0; i < 24; ++i) images.push_back(bar_image(i % 10, 3 + i % 7));
  auto image = [&](std::size_t i) { return std::span<const std::uint8_t>(images[i]); };
  const auto one = read_batch(m, images.size(), image, 1);
  for (std::size_t threads : {2, 3, 8}) {
    const auto many = read_batch(m, images.size(), image, threads);
    for (std::size_t i = 0; i < images.size(); ++i) {
      CHECK(many[i].word == one[i].word);
      CHECK(many[i].probability == one[i].probability);
      CHECK(many[i].class_probabilities == one[i].class_probabilities);
    }
  }
  // and plain threads calling read() on the shared model at once
  std::vector<reading> got(images.size());
  std::vector<std::thread> ts;
  for (std::size_t w = 0; w < 4; ++w)
    ts.emplace_back([&, w] { for (std::size_t i = w; i < images.size(); i += 4) got[i] = m.read(image(i)); });
  for (auto& t : ts) t.join();
  for (std::size_t i = 0; i < images.size(); ++i) CHECK(got[i].class_probabilities == one[i].class_probabilities);
}

TEST_CASE("save_model / load_model: a custom config round-trips and reads bit-identically") {
  namespace fs = std::filesystem;
  const std::string path = (fs::temp_directory_path() / ("purevlm_api_" + std::to_string(::getpid()) + ".model")).string();
  vlm_config c = vlm_config::default_preset();  // sizes of neither preset
  c.preset = "mine";
  c.patches.layers = {{.kernel = 3, .channels = 6, .pad = 1, .pool = 2, .stride = 2},
                      {.kernel = 3, .channels = 16, .pad = 0, .pool = 1, .stride = 1}};
  c.gpt.n_embd = 16;
  c.gpt.n_head = 2;
  c.gpt.mlp_hidden = 24;
  c.train.batch = 4;
  c.train.shift = 0;
  labeled_images d;
  d.images.count = 16; d.images.rows = 28; d.images.cols = 28;
  d.images.pixels.assign(16 * 784, 0);
  for (std::size_t i = 0; i < 16; ++i) {
    d.labels.push_back(std::uint8_t(i % 10));
    for (std::size_t r = 5; r < 20; ++r) d.images.pixels[i * 784 + r * 28 + 4 + 2 * (i % 10)] = 200;
  }
  vlm m(c, vocabulary({"bar", "baz", "qux", "quux", "corge", "grault", "garply", "waldo", "fred", "plugh"}), 9);
  trainer tr(m, d, 9, 1);
  for (int i = 0; i < 5; ++i) tr.step();
  save_model(path, m);
  const vlm back = load_model(path);
  fs::remove(path);
  CHECK(back.config().preset == "mine");
  CHECK(back.config().patches.layers.size() == 2);
  CHECK(back.config().patches.layers[0].channels == 6);
  CHECK(back.config().gpt.mlp_hidden == 24);
  CHECK(back.vocab().class_names() == m.vocab().class_names());
  CHECK(std::ranges::equal(back.parameters().values(), m.parameters().values()));
  for (std::size_t i = 0; i < 16; ++i) {
    const reading a = m.read(d.images.image(i)), b = back.read(d.images.image(i));
    CHECK(a.word == b.word);
    CHECK(a.class_probabilities == b.class_probabilities);
  }
  // a model-only file has no training run to resume
  save_model(path, m);
  basic_adam<float> adam(m.parameter_count());
  vlm again(c, m.vocab(), 1);
  CHECK(purevlm::test::has(purevlm::test::error_of([&] { restore(read_checkpoint(path), again, &adam); }), "holds a model only"));
  fs::remove(path);
}

TEST_CASE("checkpoints of version 1 (no config: the preset's name stands for it) still load") {
  namespace fs = std::filesystem;
  vlm m(vlm_config::seed(), vocabulary(mnist_class_names()), 3);
  detail::byte_writer w;  // version 1's payload: preset, names, table, values, Adam, RNG, run
  w.str("seed");
  w.pod(std::uint64_t(10));
  for (const auto& n : mnist_class_names()) w.str(n);
  const auto& ps = m.parameters();
  w.pod(std::uint32_t(sizeof(float)));
  w.pod(std::uint64_t(ps.entries().size()));
  for (const auto& e : ps.entries()) { w.str(e.name); w.pod(std::uint64_t(e.rows)); w.pod(std::uint64_t(e.cols)); }
  w.array(ps.values());
  const basic_adam<float> adam(m.parameter_count());
  w.pod(std::int64_t(7));
  w.array(adam.first_moment());
  w.array(adam.second_moment());
  for (std::uint64_t s : m.init_rng().state()) w.pod(s);
  w.pod(run_state{.step = 7, .total_steps = 10, .seed = 3, .batch = 1});
  detail::byte_writer h;
  h.pod(std::uint32_t(1));
  h.pod(std::uint64_t(w.out.size()));
  h.pod(detail::fnv1a(w.out));
  const std::string path = (fs::temp_directory_path() / ("purevlm_v1_" + std::to_string(::getpid()) + ".ckpt")).string();
  std::ofstream(path, std::ios::binary) << std::string(detail::checkpoint_magic, 8) + h.out + w.out;
  const checkpoint c = read_checkpoint(path);
  CHECK(c.version == 1);
  CHECK(c.config.preset == "seed");
  vlm back(c.config, vocabulary(c.class_names));
  basic_adam<float> back_adam(back.parameter_count());
  run_state run;
  restore(c, back, &back_adam, &run);
  CHECK(std::ranges::equal(back.parameters().values(), m.parameters().values()));
  CHECK(back_adam.steps() == 7);
  CHECK(run.step == 7);
  CHECK(load_model(path).parameter_count() == 32240);
  fs::remove(path);
}

TEST_CASE("vlm_config::parameter_count() is what the model holds, for every kind of vision") {
  // (a loop over {seed(), default_preset()} made g++ 12 warn, falsely, of an uninitialised array under TSan)
  auto agrees = [](const vlm_config& c) {
    vlm m(c, vocabulary(mnist_class_names()));
    return m.config().parameter_count() == m.parameter_count();
  };
  CHECK(agrees(vlm_config::seed()));
  CHECK(agrees(vlm_config::default_preset()));
  vlm_config chunked = vlm_config::seed();
  chunked.vision = vision_mode::chunked;
  chunked.vision_positions = 4;
  vlm m(chunked, vocabulary(mnist_class_names()));
  CHECK(m.config().parameter_count() == m.parameter_count());
}

#if defined(PUREVLM_HAS_PNG)
TEST_CASE("a picture as PNG (any colour type, 8 or 16 bit, alpha) gives the word it gives as PGM") {
  const vlm& m = trained();
  const std::string data = PUREVLM_TEST_DATA;
  const reading want = m.read(read_image(data + "/digits/dkg-hand_7_0.pgm"));
  for (const std::string name : {"gray8", "gray16", "gray_alpha", "gray16_alpha", "rgb", "rgba_transparent", "palette"}) {
    CAPTURE(name);
    const reading got = m.read(read_image(data + "/png/" + name + ".png"));
    CHECK(got.word == want.word);
    CHECK(got.probability == doctest::Approx(want.probability).epsilon(0.05));
  }
}
#endif

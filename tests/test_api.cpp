// The library as its users call it: one call from an image to an answer with probabilities,
// const inference shared by threads, and a batch call that gives the one-by-one results.
#include "common.hpp"

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
    vlm_config c = vlm_config::standard();
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

TEST_CASE("read() from a picture: a dark-on-light, larger, off-centre bar reads as the same word") {
  const vlm& m = trained();
  gray_image pic{.width = 60, .height = 50, .pixels = std::vector<std::uint8_t>(60 * 50, 230)};
  for (std::size_t y = 10; y < 40; ++y) pic.pixels[y * 60 + 45] = 20;  // one dark vertical stroke
  const reading r = m.read(pic);
  CHECK(r.word == m.read(std::span<const std::uint8_t>(mnist_style(pic))).word);
  CHECK(r.probability > 0);
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

// The GPT: gradients, causality, the KV cache, parameter counts, decoding (its attention kernels:
// test_attention.cpp).
#include "common.hpp"

#include <purevlm/vlm.hpp>

using namespace purevlm;
using purevlm::test::gradcheck;

namespace {
// The seed's GPT sizes, with a choice of score and depth.
gpt_config seed_gpt(score_kind score = score_kind::tensor, std::size_t layers = 1) {
  gpt_config c;
  c.score = score;
  c.n_layer = layers;
  return c;
}
std::vector<std::int32_t> tokens(std::size_t n, std::uint64_t seed) {
  rng g(seed);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = std::int32_t(g.below(17));
  return t;
}
}  // namespace

TEST_CASE("a whole 1-layer GPT at the seed sizes passes the gradient check, both scores") {
  for (score_kind s : {score_kind::tensor, score_kind::dot}) {
    basic_parameters<double> ps;
    rng g(5);
    basic_gpt<double> gpt(seed_gpt(s), ps, g);
    auto in = tokens(36, 6), target = tokens(36, 7);
    PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto& ps) {
      var x = gpt.embed(t, ps, ps.grads(), in, 0);
      return cross_entropy(t, gpt.forward(t, ps, ps.grads(), x), target);
    }, 50), 1e-6);
  }
}

TEST_CASE("parameter counts at the seed sizes: GPT 14,528 + vision 1,792 + tokenizer 15,920 = 32,240") {
  CHECK(seed_gpt().parameter_count() == 14528);
  vlm model(vlm_config::seed(), vocabulary(mnist_class_names()));
  CHECK(model.parameter_count() == 32240);
  CHECK(model.parameters().find("vis_proj_l")->size() + model.parameters().find("vis_proj_r")->size() == 1792);
}

TEST_CASE("causality: changing a later token changes no earlier logit") {
  basic_parameters<float> ps;
  rng g(8);
  basic_gpt<float> gpt(seed_gpt(), ps, g);
  auto a = tokens(36, 9), b = a;
  b[20] = (b[20] + 1) % 17;
  auto logits = [&](const std::vector<std::int32_t>& in) {
    basic_tape<float> t;
    auto v = t.value(gpt.forward(t, ps, ps.grads(), gpt.embed(t, ps, ps.grads(), in, 0)));
    return std::vector<float>(v.begin(), v.end());
  };
  auto la = logits(a), lb = logits(b);
  for (std::size_t i = 0; i < 20 * 17; ++i) REQUIRE(la[i] == lb[i]);
  bool later_changed = false;
  for (std::size_t i = 20 * 17; i < la.size(); ++i) later_changed |= la[i] != lb[i];
  CHECK(later_changed);
}

TEST_CASE("KV-cached decoding gives the logits of the full recomputation, to 1e-6 in float") {
  for (score_kind s : {score_kind::tensor, score_kind::dot}) {
    basic_parameters<float> ps;
    rng g(10);
    basic_gpt<float> gpt(seed_gpt(s, 2), ps, g);
    auto in = tokens(36, 11);
    basic_tape<float> full;
    auto all = full.value(gpt.forward(full, ps, ps.grads(), gpt.embed(full, ps, ps.grads(), in, 0)));
    basic_kv_cache<float> cache;
    basic_tape<float> t;
    // a prefix of 29 positions at once, then one position at a time
    auto first = t.value(gpt.forward(t, ps, ps.grads(), gpt.embed(t, ps, ps.grads(), std::span(in).first(29), 0), &cache));
    float worst = 0;
    for (std::size_t i = 0; i < 29 * 17; ++i) worst = std::max(worst, std::abs(first[i] - all[i]));
    for (std::size_t p = 29; p < 36; ++p) {
      t.reset();
      auto step = t.value(gpt.forward(t, ps, ps.grads(), gpt.embed(t, ps, ps.grads(), std::span(in).subspan(p, 1), p), &cache));
      for (std::size_t v = 0; v < 17; ++v) worst = std::max(worst, std::abs(step[v] - all[p * 17 + v]));
    }
    CHECK(cache.positions == 36);
    CHECK(worst <= 1e-6f);
  }
}

TEST_CASE("the block off the tape (advance, step) equals forward() on the cache bit for bit, float and double") {
  auto run = [&]<class T>(T, score_kind s, std::size_t layers) {
    basic_parameters<T> ps;
    rng g(12);
    basic_gpt<T> gpt(seed_gpt(s, layers), ps, g);
    const auto in = tokens(36, 13);
    basic_tape<T> t;
    basic_kv_cache<T> by_tape, by_step;
    auto embed = [&](std::size_t p, std::size_t n) { return gpt.embed(t, ps, {}, std::span(in).subspan(p, n), p); };
    std::vector<T> logits(17);
    {  // the prefix of 29 positions at once, logits from the last
      const var prefix = embed(0, 29);
      const auto l = t.value(gpt.forward(t, ps, {}, prefix, &by_tape, 28));
      const std::vector<T> want(l.begin(), l.end());
      gpt.advance(t, ps, by_step, t.value(prefix), logits);
      for (std::size_t v = 0; v < 17; ++v) REQUIRE(logits[v] == want[v]);
      REQUIRE(by_step.positions == 29);
      REQUIRE(by_step.k == by_tape.k);
      REQUIRE(by_step.v == by_tape.v);
    }
    for (std::size_t p = 29; p < 36; ++p) {
      t.reset();
      const auto want = t.value(gpt.forward(t, ps, {}, embed(p, 1), &by_tape));
      gpt.step(t, ps, by_step, in[p], logits);
      CAPTURE(p);
      for (std::size_t v = 0; v < 17; ++v) REQUIRE(logits[v] == want[v]);
      CHECK(std::abs(double(logits[0])) > 0);  // real logits, not a zero buffer
    }
    CHECK(by_step.positions == 36);
    CHECK(by_step.k == by_tape.k);
    CHECK(by_step.v == by_tape.v);
    // and it refuses what it cannot do: a full block, a token outside the vocabulary
    CHECK_THROWS_WITH_AS(gpt.step(t, ps, by_step, 1, logits), doctest::Contains("block_size 36"), error);
    by_step.positions = 30;
    CHECK_THROWS_WITH_AS(gpt.step(t, ps, by_step, 17, logits), doctest::Contains("token 17"), error);
    basic_parameters<T> other;
    CHECK_THROWS_WITH_AS(gpt.step(t, other, by_step, 1, logits), doctest::Contains("not this model's"), error);
    const std::vector<T> rows(7 * 32);  // 7 more positions than the block holds after 30
    CHECK_THROWS_WITH_AS(gpt.advance(t, ps, by_step, rows, logits), doctest::Contains("after 30 positions (block_size 36)"), error);
    CHECK_THROWS_WITH_AS(gpt.advance(t, ps, by_step, std::span(rows).first(33), logits), doctest::Contains("33 values"), error);
  };
  for (score_kind s : {score_kind::tensor, score_kind::dot}) {
    run(0.0f, s, 1);
    run(0.0f, s, 2);
    run(0.0, s, 2);
  }
}

TEST_CASE("logits from a later row: the last layer runs only the rows that reach the LM head, same logits") {
  basic_parameters<float> ps;
  rng g(12);
  basic_gpt<float> gpt(seed_gpt(score_kind::tensor, 2), ps, g);
  auto in = tokens(36, 13);
  basic_tape<float> t;
  auto all = t.value(gpt.forward(t, ps, ps.grads(), gpt.embed(t, ps, ps.grads(), in, 0)));
  std::vector<float> full(all.begin(), all.end());
  basic_tape<float> u;
  var tail = gpt.forward(u, ps, ps.grads(), gpt.embed(u, ps, ps.grads(), in, 0), nullptr, 28);
  REQUIRE(u.rows(tail) == 8);
  auto part = u.value(tail);
  for (std::size_t i = 0; i < part.size(); ++i) CHECK(part[i] == doctest::Approx(full[28 * 17 + i]).epsilon(1e-5));
}

TEST_CASE("word trie and constrained decoding: an untrained model can only emit listed words") {
  vocabulary vocab(mnist_class_names());
  vlm model(vlm_config::seed(), vocab, 123);
  word_trie words = model.class_trie();
  auto five = vocab.encode("five");
  std::span<const std::int32_t> letters(five.data() + 1, 4);
  CHECK(words.is_word(letters));
  CHECK_FALSE(words.is_word(letters.first(2)));
  CHECK(words.allows(letters.first(2), five[3]));
  CHECK_FALSE(words.allows(letters.first(2), vocab.encode("z")[1]));

  std::vector<float> image(196);
  rng g(1);
  int free_invalid = 0;
  for (int i = 0; i < 20; ++i) {
    for (float& v : image) v = float(g.uniform());
    const std::string constrained = model.generate(image, decoding{.words = &words});
    CAPTURE(constrained);
    CHECK(vocab.class_of(constrained) >= 0);
    free_invalid += vocab.class_of(model.generate(image)) < 0;
  }
  CHECK(free_invalid > 0);  // free decoding of an untrained model does write non-words: the trie is what stops them
}

TEST_CASE("sampling: softmax(logits / temperature) frequencies, top-k, and greedy as its limit") {
  const std::vector<float> logits{0.0f, 2.0f, -1.0f};
  const std::vector<std::int32_t> none;
  auto frequency_of_1 = [&](decoding how) {
    rng g(3);
    int ones = 0;
    for (int i = 0; i < 20000; ++i) ones += detail::pick_token<float>(logits, none, 99, how, &g) == 1;
    return ones / 20000.0;
  };
  const double z1 = 1 + std::exp(2.0) + std::exp(-1.0), z2 = 1 + std::exp(1.0) + std::exp(-0.5);
  CHECK(frequency_of_1({.temperature = 1.0}) == doctest::Approx(std::exp(2.0) / z1).epsilon(0.02));
  CHECK(frequency_of_1({.temperature = 2.0}) == doctest::Approx(std::exp(1.0) / z2).epsilon(0.02));
  // top_k = 2 drops token 2: P(1) = e² / (1 + e²)
  CHECK(frequency_of_1({.temperature = 1.0, .top_k = 2}) == doctest::Approx(std::exp(2.0) / (1 + std::exp(2.0))).epsilon(0.02));
  CHECK(frequency_of_1({.temperature = 1.0, .top_k = 1}) == 1.0);
  CHECK_THROWS_AS((void)detail::pick_token<float>(logits, none, 99, {.temperature = 1.0}, nullptr), purevlm::error);

  // through the model: top_k = 1 sampling is greedy decoding; wider sampling is reproducible from
  // the rng's state and, over a few images, differs from greedy decoding
  vlm model(vlm_config::seed(), vocabulary(mnist_class_names()), 123);
  std::vector<float> image(196);
  rng g(4), s(5);
  int differs = 0;
  for (int i = 0; i < 10; ++i) {
    for (float& v : image) v = float(g.uniform());
    CHECK(model.generate(image, {.temperature = 1.0, .top_k = 1}, &s) == model.generate(image));
    rng s1 = s, s2 = s;
    const std::string sampled = model.generate(image, {.temperature = 1.5, .top_k = 5}, &s1);
    CHECK(model.generate(image, {.temperature = 1.5, .top_k = 5}, &s2) == sampled);
    differs += sampled != model.generate(image);
  }
  CHECK(differs > 0);
}

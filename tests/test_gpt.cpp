// Tensor attention and the GPT: gradients, causality, the KV cache, parameter counts, decoding.
#include "common.hpp"

#include <purevlm/vlm.hpp>

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
  // (detail::short_head_backward): an odd row count, more than one tile, keys before the queries
  struct size { std::size_t Tq, Tk, D, H = 2; };
  for (size z : {size{1, 13, 6}, size{3, 9, 12}, size{5, 13, 12}, size{36, 36, 24}, size{7, 40, 6}, size{1, 1, 8},
                 size{1, 30, 8, 4}, size{7, 9, 8, 5}, size{5, 33, 16}, size{2, 40, 64}, size{1, 29, 8, 30},
                 size{37, 150, 8}, size{140, 140, 8, 1}})
    for (std::size_t m : {1, 2, 3, 4, 8}) {
      // (at D = 64 a product of 4 or 8 partial dot products of normal vectors is so large that
      // float's rounding of the scores alone, in either kernel, exceeds the tolerance)
      if (z.D % m != 0 || (z.D == 64 && m > 2)) continue;
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

TEST_CASE("a decoding step off the tape (step) equals forward() on the cache bit for bit, float and double") {
  auto run = [&]<class T>(T, score_kind s, std::size_t layers) {
    basic_parameters<T> ps;
    rng g(12);
    basic_gpt<T> gpt(seed_gpt(s, layers), ps, g);
    const auto in = tokens(36, 13);
    basic_tape<T> t;
    basic_kv_cache<T> by_tape, by_step;
    auto embed = [&](std::size_t p, std::size_t n) { return gpt.embed(t, ps, {}, std::span(in).subspan(p, n), p); };
    gpt.forward(t, ps, {}, embed(0, 29), &by_tape);
    by_step = by_tape;
    std::vector<T> logits(17);
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

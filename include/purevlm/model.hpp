// SPDX-License-Identifier: MIT
// model.hpp: the VLM itself and its config presets:
//   image x → tokenizer → vision tokens → GPT with tensor attention → the class name, letter by
//   letter ("seven"). Two tokenizers: the seed's global one (BAE, BAE×BAE, degree-n features of the
//   whole image, then a bilinear vision projection) and the patch tokenizer (the same kernels with
//   shared weights over image patches, one token per region: patch.hpp).
// Preset "seed" is SPEC.md exactly; "default" is the patch model the README recommends.
#pragma once

#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/image.hpp"
#include "data/words.hpp"
#include "gpt.hpp"
#include "optim.hpp"
#include "patch.hpp"

namespace purevlm {

// How the tokenizer's F features become vision positions.
enum class vision_mode {
  shared,   // seed: one bilinear vector v = (Wl f) ⊙ (Wr f), Wl,Wr [C,F], repeated on every position
  chunked,  // f split into `vision_positions` chunks of F/positions; chunk j → (Wl f_j) ⊙ (Wr f_j)
  patches,  // the patch tokenizer's grid cells are the vision positions, no projection
};

// The training recipe travels with the model config, so a preset is a whole reproducible run.
struct train_config {
  std::int64_t steps = 7000;       // optimizer steps
  std::size_t batch = 1;           // samples per step (gradients averaged)
  schedule lr{.decay = schedule::kind::linear, .lr = 0.003};
  bool shuffle = false;            // seed: file order; else a fresh permutation every epoch
  double clip_matrix = 1.0;        // each tokenizer matrix's gradient to this norm (0: off)
  double clip_global = 5.0;        // then all gradients together (0: off)
  int shift = 0;                   // augmentation: random translation by up to ±shift pixels
};

struct vlm_config {
  std::string preset = "seed";
  tokenizer_config tokenizer{};     // the global tokenizer (shared, chunked)
  patch_config patches{};           // the patch tokenizer (vision_mode::patches)
  gpt_config gpt{};
  vision_mode vision = vision_mode::shared;
  std::size_t vision_positions = 28;
  double recon_weight = 0.01;
  train_config train{};

  // SPEC.md exactly.
  static vlm_config seed() { return {}; }
  // The recipe the README recommends, within the seed's 32,240-parameter budget (25,456): the
  // patch tokenizer. A 5x5 bilinear convolution with 24 channels over the 14x14 image (padded:
  // 14x14), pooled 2x2 to 7x7; a 3x3 one with 32 channels over those (5x5), pooled 2x2 with
  // stride 1 to a 4x4 grid: 16 tokens of n_embd = 32, each the degree-4 BAE×BAE code of one
  // region. The GPT reads them with a 64-unit MLP. Batches of 32, shuffled, 8 epochs, cosine
  // schedule from 0.005, ±3-pixel shifts. The experiments that chose it: README "Results".
  static vlm_config default_preset() {
    vlm_config c;
    c.preset = "default";
    c.vision = vision_mode::patches;
    c.patches = {.side = 14,
                 .layers = {{.kernel = 5, .channels = 24, .pad = 2, .pool = 2, .stride = 2},
                            {.kernel = 3, .channels = 32, .pad = 0, .pool = 2, .stride = 1}}};
    c.gpt.mlp_hidden = 64;
    c.train = {.steps = 15000, .batch = 32, .lr = {.decay = schedule::kind::cosine, .lr = 0.005, .warmup = 100},
               .shuffle = true, .clip_matrix = 0, .clip_global = 5.0, .shift = 3};
    return c;
  }
  // The numbers task (data/numbers.hpp): the default's patch layers over a 14x42 image (28x84
  // numbers pooled), so a 4x18 grid of 72 regions, each seeing part of one or two digits; the
  // default's GPT. 120,000 steps of 32 made numbers (3.8 million, none seen twice).
  static vlm_config numbers() {
    vlm_config c = default_preset();
    c.preset = "numbers";
    c.patches.cols = 42;
    c.train.steps = 120000;
    c.train.shift = 0;  // the numbers are placed and jittered when they are made
    return c;
  }
  // "seed", "default" or "numbers"
  static vlm_config named(const std::string& preset) {
    if (preset == "seed") return seed();
    if (preset == "default") return default_preset();
    if (preset == "numbers") return numbers();
    throw error("unknown preset '" + preset + "': choose seed, default or numbers");
  }
  // Parameters a model of this config holds (gpt.vocab and block_size as fitted to its vocabulary).
  std::size_t parameter_count() const {
    if (vision == vision_mode::patches) return patches.parameter_count() + gpt.parameter_count();
    const std::size_t F = tokenizer.features(), in = vision == vision_mode::chunked ? F / vision_positions : F;
    return tokenizer.parameter_count() + 2 * gpt.n_embd * in + gpt.parameter_count();
  }
  // Values in the image the model takes (prepared: pooled, normalised).
  std::size_t pixels() const { return vision == vision_mode::patches ? patches.side * patches.image_cols() : tokenizer.pixels; }
  void validate() const {
    gpt.validate();
    if (vision == vision_mode::patches) {
      patches.validate();
      if (patches.layers.empty()) throw error("vlm_config.patches: vision_mode::patches needs at least one layer");
      if (patches.width() != gpt.n_embd)
        throw error("vlm_config.patches: the last layer's " + std::to_string(patches.width()) +
                    " channels are the tokens and must equal gpt.n_embd (" + std::to_string(gpt.n_embd) + ")");
    } else {
      tokenizer.validate();
    }
    const std::size_t F = tokenizer.features();
    if (vision_positions == 0 || vision_positions >= gpt.block_size)
      throw error("vlm_config.vision_positions (" + std::to_string(vision_positions) +
                  ") must be at least 1 and leave room for text in gpt.block_size (" + std::to_string(gpt.block_size) + ")");
    if (vision == vision_mode::chunked && F % vision_positions != 0)
      throw error("vlm_config: " + std::to_string(F) + " tokenizer features do not split into " +
                  std::to_string(vision_positions) + " vision positions");
  }
};

// What a model reads in an image: the word it writes (greedy decoding), the probability that it
// writes exactly that word, and the probability of each class name (in class order). Each is a
// sequence probability: the product of the probabilities of the name's letters and of the end
// token, so the class probabilities sum to at most 1 (other strings take the rest).
struct reading {
  std::string word;
  double probability = 0;
  std::vector<double> class_probabilities;
};

template <std::floating_point T>
class basic_vlm {
public:
  // What one forward pass gives: the scalar loss and its parts, and the text logits.
  struct forward_result {
    var loss, text_loss, recon, logits;
  };

  basic_vlm(vlm_config cfg, vocabulary vocab, std::uint64_t seed = 42)
      : cfg_(fit(std::move(cfg), vocab)), vocab_(std::move(vocab)), init_(seed),
        tokenizer_(patch_mode() ? std::nullopt : std::optional<basic_tokenizer<T>>(std::in_place, cfg_.tokenizer, params_, init_)),
        patches_(patch_mode() ? std::optional<basic_patch_tokenizer<T>>(std::in_place, cfg_.patches, params_, init_) : std::nullopt),
        vision_end_(params_.entries().size()),
        vis_l_(patch_mode() ? 0 : add_vision(params_, "vis_proj_l")), vis_r_(patch_mode() ? 0 : add_vision(params_, "vis_proj_r")),
        gpt_(cfg_.gpt, params_, init_) {}

  // Builds the loss for one image x[P] (prepared: pooled, normalised) and its text
  // [BOS letters EOS] on the tape; backward() then sends gradients into `grads`.
  forward_result forward(basic_tape<T>& t, std::span<const T> image, std::span<const std::int32_t> text,
                         std::span<T> grads) const {
    if (text.size() < 2 || text.size() > vocab_.max_text_len())
      throw error("vlm: text of " + std::to_string(text.size()) + " tokens; it must hold BOS, the name and EOS (at most " +
                  std::to_string(vocab_.max_text_len()) + ")");
    const std::size_t Tv = cfg_.vision_positions, n = text.size() - 1;  // n predictions
    auto vis = vision(t, image, grads);
    var x = stack(t, vis.tokens, gpt_.embed(t, params_, grads, text.first(n), Tv));
    forward_result r;
    r.logits = gpt_.forward(t, params_, grads, x, nullptr, Tv);   // predictions at BOS and letters
    r.text_loss = cross_entropy(t, r.logits, text.subspan(1));
    const T zero = 0;
    r.recon = vis.has_recon ? vis.recon : t.input(std::span(&zero, 1), 1, 1);
    r.loss = vis.has_recon ? add(t, r.text_loss, scale(t, vis.recon, T(cfg_.recon_weight))) : r.text_loss;
    return r;
  }
  forward_result forward(basic_tape<T>& t, std::span<const T> image, std::span<const std::int32_t> text) {
    return forward(t, image, text, params_.grads());
  }

  // The name the model writes for an image, decoded greedily unless told otherwise. Inference
  // is const: the parameters are read as constants, so any number of threads may share one
  // model, each with its own tape.
  std::string generate(basic_tape<T>& t, std::span<const T> image, const decoding& how = {}, rng* g = nullptr) const {
    var prefix = image_prefix(t, image);
    auto ids = gpt_.generate(t, params_, prefix, max_letters(), vocab_.eos(), vocab_.bos(), how, g);
    t.reset();
    return vocab_.decode(ids);
  }
  std::string generate(std::span<const T> image, const decoding& how = {}, rng* g = nullptr) const {
    basic_tape<T> t;
    return generate(t, image, how, g);
  }

  // Image to answer in one call: a prepared image (pooled, normalised: prepare()), 28x28 bytes in
  // MNIST's layout (light ink on black), or any grey picture (made MNIST-like first: mnist_style()).
  reading read(std::span<const T> image) const {
    basic_tape<T> t;
    reading r;
    // the image and BOS once, on a KV cache; the word is decoded from a copy of it, and each name
    // teacher-forced on another
    var prefix = image_prefix(t, image);
    basic_kv_cache<T> cache;
    std::vector<T> logits(cfg_.gpt.vocab);
    gpt_.advance(t, params_, cache, t.value(prefix), logits);
    const auto first = log_softmax(logits);
    {
      basic_kv_cache<T> c = cache;
      r.word = vocab_.decode(gpt_.generate(t, params_, c, logits, max_letters(), vocab_.eos(), vocab_.bos(), {}));
    }
    auto probability_of = [&](const std::string& word) {
      const auto ids = vocab_.encode(word);  // BOS letters EOS
      const std::size_t n = ids.size() - 2;  // letters
      if (cfg_.vision_positions + 1 + n > cfg_.gpt.block_size) return 0.0;  // longer than the model can hold
      double lp = first[std::size_t(ids[1])];
      if (n > 0) {
        basic_kv_cache<T> c = cache;
        t.reset();
        var x = gpt_.embed(t, params_, {}, std::span(ids).subspan(1, n), cfg_.vision_positions + 1);
        auto rows = t.value(gpt_.forward(t, params_, {}, x, &c));
        const std::size_t V = cfg_.gpt.vocab;
        for (std::size_t j = 0; j < n; ++j) lp += log_softmax(rows.subspan(j * V, V))[std::size_t(ids[j + 2])];
      }
      return std::exp(lp);
    };
    for (const auto& name : vocab_.class_names()) r.class_probabilities.push_back(probability_of(name));
    const int k = vocab_.class_of(r.word);
    r.probability = k >= 0 ? r.class_probabilities[std::size_t(k)] : probability_of(r.word);
    return r;
  }
  reading read(std::span<const std::uint8_t> pixels, std::size_t rows = 28, std::size_t cols = 28) const {
    std::vector<T> x(cfg_.pixels());
    prepare<T>(x, pixels, rows, cols);
    return read(std::span<const T>(x));
  }
  reading read(const gray_image& picture) const {
    const auto digit = mnist_style(picture);
    return read(std::span<const std::uint8_t>(digit));
  }

  // Where the model looks while it writes (for pictures): the word it generates and, for each
  // letter, its probability at that step and the attention weights of the query that chose it,
  // weights[(layer · heads + head) · positions + p] over the positions before it — the vision
  // tokens, BOS, the letters so far — each (layer, head) summing to 1.
  struct letter_attention {
    std::string letter;
    double probability = 0;
    std::vector<double> weights;
  };
  struct attention_trace {
    std::string word;
    std::size_t layers = 0, heads = 0, positions = 0, vision_positions = 0;
    std::vector<letter_attention> letters;
  };
  attention_trace trace(std::span<const T> image) const {
    basic_tape<T> t;
    attention_trace r;
    r.word = generate(t, image);
    const auto ids = vocab_.encode(r.word);  // BOS letters EOS
    const std::size_t Tv = cfg_.vision_positions, n = ids.size() - 2;
    var x = image_prefix(t, image);
    if (n > 0) x = stack(t, x, gpt_.embed(t, params_, {}, std::span(ids).subspan(1, n), Tv + 1));
    std::vector<std::vector<T>> maps;  // per layer [H, Tq, Tk]
    auto logits = t.value(gpt_.forward(t, params_, {}, x, nullptr, Tv, &maps));  // rows: BOS, letters
    r.layers = maps.size();
    r.heads = cfg_.gpt.n_head;
    r.positions = t.rows(x);
    r.vision_positions = Tv;
    const std::size_t V = cfg_.gpt.vocab, Tk = r.positions;
    for (std::size_t j = 0; j < n; ++j) {
      letter_attention a;
      a.letter = vocab_.decode(std::vector<std::int32_t>{ids[j + 1]});
      a.probability = std::exp(log_softmax(logits.subspan(j * V, V))[std::size_t(ids[j + 1])]);
      for (const auto& w : maps) {
        const std::size_t Tq = w.size() / (r.heads * Tk), row = Tv + j - (Tk - Tq);  // position Tv + j
        for (std::size_t h = 0; h < r.heads; ++h)
          a.weights.insert(a.weights.end(), &w[(h * Tq + row) * Tk], &w[(h * Tq + row) * Tk] + Tk);
      }
      r.letters.push_back(std::move(a));
    }
    return r;
  }

  // The class names as a trie, for constrained decoding.
  word_trie class_trie() const {
    word_trie w;
    for (const auto& name : vocab_.class_names()) {
      auto ids = vocab_.encode(name);
      w.insert(std::span<const std::int32_t>(ids).subspan(1, ids.size() - 2));
    }
    return w;
  }

  basic_parameters<T>& parameters() { return params_; }
  const basic_parameters<T>& parameters() const { return params_; }
  std::size_t parameter_count() const { return params_.count(); }
  const vlm_config& config() const { return cfg_; }
  const vocabulary& vocab() const { return vocab_; }
  rng& init_rng() { return init_; }
  // Whether parameter i is one of the tokenizer's matrices (clipped on their own in the seed).
  bool is_tokenizer_parameter(std::size_t i) const { return i < vision_end_; }

private:
  struct vision_result {
    var tokens;  // [vision_positions, C], positions added
    var recon;
    bool has_recon = false;
  };
  // The vision tokens and BOS, embedded: where generation and reading start.
  var image_prefix(basic_tape<T>& t, std::span<const T> image) const {
    t.reset();
    auto vis = vision(t, image, {}, false);
    const std::int32_t bos = vocab_.bos();
    return stack(t, vis.tokens, gpt_.embed(t, params_, {}, std::span(&bos, 1), cfg_.vision_positions));
  }
  static std::vector<double> log_softmax(std::span<const T> logits) {
    double mx = logits[0], sum = 0;
    for (T l : logits) mx = std::max(mx, double(l));
    for (T l : logits) sum += std::exp(double(l) - mx);
    std::vector<double> out;
    for (T l : logits) out.push_back(double(l) - mx - std::log(sum));
    return out;
  }
  vision_result vision(basic_tape<T>& t, std::span<const T> image, std::span<T> grads, bool with_recon = true) const {
    if (image.size() != cfg_.pixels())
      throw error("vlm: image of " + std::to_string(image.size()) + " values, the model takes " + std::to_string(cfg_.pixels()) +
                  (patches_ ? " (" + std::to_string(cfg_.patches.side) + "x" + std::to_string(cfg_.patches.image_cols()) + ")"
                            : std::string(" (prepare() pools a 28x28 digit to 14x14)")));
    var x = t.input(image, 1, image.size());
    if (patches_) return {gpt_.add_positions(t, params_, grads, patches_->forward(t, params_, grads, x), 0), {}, false};
    auto tok = tokenizer_->forward(t, params_, grads, x, with_recon);
    var f = tok.features;
    const std::size_t Tv = cfg_.vision_positions;
    if (cfg_.vision == vision_mode::chunked) f = reshape(t, f, Tv, t.size(f) / Tv);
    const var w[2] = {t.parameter(params_, vis_l_, grads), t.parameter(params_, vis_r_, grads)}, in[2] = {f, f};
    var v = product_of_projections<T>(t, w, in);  // (Wl f) ⊙ (Wr f): degree 2 in f
    if (cfg_.vision == vision_mode::shared) v = repeat_rows(t, v, Tv);
    return {gpt_.add_positions(t, params_, grads, v, 0), tok.recon, tok.has_recon};
  }
  bool patch_mode() const { return cfg_.vision == vision_mode::patches; }
  // Letters a generation may write: the positions the block has after the vision ones.
  std::size_t max_letters() const { return cfg_.gpt.block_size - cfg_.vision_positions; }
  std::size_t add_vision(basic_parameters<T>& ps, const char* name) {
    const std::size_t F = cfg_.tokenizer.features();
    const std::size_t in = cfg_.vision == vision_mode::chunked ? F / cfg_.vision_positions : F;
    return ps.add(name, cfg_.gpt.n_embd, in, T(0.08), init_);
  }
  // The vocabulary decides the GPT's vocabulary and block sizes.
  static vlm_config fit(vlm_config c, const vocabulary& v) {
    c.gpt.vocab = v.size();
    if (c.vision == vision_mode::patches) {
      c.patches.validate();
      c.vision_positions = c.patches.tokens();
    }
    c.gpt.block_size = c.vision_positions + v.max_text_len() - 1 > c.gpt.block_size
                           ? c.vision_positions + v.max_text_len() - 1
                           : c.gpt.block_size;
    c.validate();
    return c;
  }

  vlm_config cfg_;
  vocabulary vocab_;
  rng init_;
  basic_parameters<T> params_;
  std::optional<basic_tokenizer<T>> tokenizer_;        // the global tokenizer, or
  std::optional<basic_patch_tokenizer<T>> patches_;    // the patch tokenizer
  std::size_t vision_end_;                             // parameters before this index are the tokenizer's
  std::size_t vis_l_, vis_r_;                          // the global tokenizer's vision projection
  basic_gpt<T> gpt_;
};

using vlm = basic_vlm<float>;

// Reads images 0..n-1 on `threads` threads (each its own contiguous share, each call its own
// scratch); `image(i)` gives what read() takes for image i. The results, in order, are those of
// reading the images one by one, bit for bit.
template <std::floating_point T, class ImageAt>
std::vector<reading> read_batch(const basic_vlm<T>& model, std::size_t n, ImageAt image, std::size_t threads = 1) {
  std::vector<reading> out(n);
  threads = std::max<std::size_t>(1, std::min(threads, n));
  std::vector<std::exception_ptr> failed(threads);
  auto share = [&](std::size_t w) {
    try {
      for (std::size_t i = w * n / threads; i < (w + 1) * n / threads; ++i) out[i] = model.read(image(i));
    } catch (...) {
      failed[w] = std::current_exception();
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t w = 1; w < threads; ++w) helpers.emplace_back(share, w);
  share(0);
  for (auto& h : helpers) h.join();
  for (auto& e : failed)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace purevlm

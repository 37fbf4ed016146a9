// SPDX-License-Identifier: MIT
// gpt.hpp: the language half. Token and position embeddings, an RMSNorm on entry, n_layer blocks
// (pre-norm attention, residual, pre-norm ReLU MLP, residual), an LM head with no final norm, as
// in SPEC.md. The forward can start from any embeddings (the VLM passes vision positions), and
// decoding runs on a KV cache: greedy, temperature/top-k sampling, or constrained to a word list,
// each letter one step() — the forward's kernels on one row, with no tape.
// Not here: dropout, biases, weight tying, learned norm gains. Letters: T positions, C n_embd, V vocab.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attention.hpp"

namespace purevlm {

// SPEC.md's seed sizes are the defaults.
struct gpt_config {
  std::size_t vocab = 17, block_size = 36, n_layer = 1, n_embd = 32, n_head = 4, mlp_hidden = 128;
  score_kind score = score_kind::tensor;
  std::size_t tensor_factors = 2;  // m: the tensor score multiplies m partial dot products (degree 2m)

  std::size_t head_dim() const { return n_embd / n_head; }
  attention_score attention() const {
    return attention_score::of(score, head_dim(), tensor_factors);
  }
  void validate() const {
    auto fail = [](const std::string& m) { throw error("gpt_config." + m); };
    if (vocab < 2) fail("vocab must be at least 2");
    if (block_size == 0) fail("block_size must be at least 1");
    if (n_layer == 0) fail("n_layer must be at least 1");
    if (n_head == 0 || n_embd % n_head != 0)
      fail("n_embd (" + std::to_string(n_embd) + ") must split into n_head (" + std::to_string(n_head) + ") heads");
    if (mlp_hidden == 0) fail("mlp_hidden must be at least 1");
    if (score == score_kind::tensor && (tensor_factors == 0 || head_dim() % tensor_factors != 0))
      fail("tensor_factors (" + std::to_string(tensor_factors) + ") must divide head_dim (" +
           std::to_string(head_dim()) + ")");
  }
  std::size_t parameter_count() const {
    const std::size_t C = n_embd;
    return 2 * vocab * C + block_size * C + n_layer * (4 * C * C + 2 * mlp_hidden * C);
  }
};

// ---- decoding ----

// Words as token sequences, in a prefix trie: which tokens may follow a prefix, and where words end.
class word_trie {
public:
  void insert(std::span<const std::int32_t> word) {
    std::size_t n = 0;
    for (std::int32_t tok : word) {
      std::size_t next = child(n, tok);
      if (next == none) {
        nodes_.push_back({});
        next = nodes_.size() - 1;
        nodes_[n].children.push_back({tok, next});
      }
      n = next;
    }
    nodes_[n].terminal = true;
  }
  // The node reached by the prefix, or none.
  std::size_t walk(std::span<const std::int32_t> prefix) const {
    std::size_t n = 0;
    for (std::int32_t tok : prefix)
      if ((n = child(n, tok)) == none) return none;
    return n;
  }
  bool allows(std::span<const std::int32_t> prefix, std::int32_t tok) const {
    const std::size_t n = walk(prefix);
    return n != none && child(n, tok) != none;
  }
  bool is_word(std::span<const std::int32_t> prefix) const {
    const std::size_t n = walk(prefix);
    return n != none && nodes_[n].terminal;
  }
  static constexpr std::size_t none = std::size_t(-1);

private:
  struct node {
    std::vector<std::pair<std::int32_t, std::size_t>> children;
    bool terminal = false;
  };
  std::size_t child(std::size_t n, std::int32_t tok) const {
    for (auto [t, c] : nodes_[n].children) if (t == tok) return c;
    return none;
  }
  std::vector<node> nodes_{node{}};
};

// How to choose each next token. temperature 0 is greedy (argmax); top_k 0 keeps every token.
// With a trie, only tokens that continue a listed word may be chosen, and the end token only
// once the text so far is a whole word — constrained decoding, reported apart from free decoding.
struct decoding {
  double temperature = 0.0;
  std::size_t top_k = 0;
  const word_trie* words = nullptr;
};

namespace detail {
// Chooses the next token from logits[V] given the text generated so far.
template <std::floating_point T>
std::int32_t pick_token(std::span<const T> logits, std::span<const std::int32_t> so_far, std::int32_t end_token,
                        const decoding& how, rng* g) {
  const std::size_t V = logits.size();
  auto allowed = [&](std::size_t v) {
    if (!how.words) return true;
    return std::int32_t(v) == end_token ? how.words->is_word(so_far) : how.words->allows(so_far, std::int32_t(v));
  };
  std::int32_t best = -1;
  for (std::size_t v = 0; v < V; ++v)
    if (allowed(v) && (best < 0 || logits[v] > logits[std::size_t(best)])) best = std::int32_t(v);
  if (best < 0) return end_token;  // nothing allowed: stop
  if (how.temperature <= 0.0) return best;
  if (!g) {
    std::string msg = "decoding: temperature ";  // appended: g++ 12 warns falsely on "..." + string
    msg += std::to_string(how.temperature);
    msg += " samples, which needs an rng";
    throw error(msg);
  }
  // sample from softmax(logits / temperature) over the top_k allowed tokens
  std::vector<std::pair<double, std::int32_t>> cand;
  for (std::size_t v = 0; v < V; ++v) if (allowed(v)) cand.push_back({double(logits[v]), std::int32_t(v)});
  std::sort(cand.begin(), cand.end(), [](auto a, auto b) { return a.first > b.first; });
  if (how.top_k > 0 && cand.size() > how.top_k) cand.resize(how.top_k);
  const double top = cand[0].first;  // kept apart: the loop overwrites cand[0] first
  double total = 0;
  for (auto& c : cand) total += (c.first = std::exp((c.first - top) / how.temperature));
  double r = g->uniform() * total;
  for (auto& c : cand) if ((r -= c.first) <= 0) return c.second;
  return cand.back().second;
}
}  // namespace detail

template <std::floating_point T>
class basic_gpt {
public:
  // Registers wte, wpe, L<i>.{wq,wk,wv,wo,mlp_fc1,mlp_fc2}, lm_head; Normal(0, 0.08) as in SPEC.md.
  basic_gpt(const gpt_config& cfg, basic_parameters<T>& ps, rng& g) : cfg_(cfg) {
    cfg_.validate();
    const std::size_t C = cfg_.n_embd, V = cfg_.vocab;
    const T std = T(0.08);
    wte_ = ps.add("wte", V, C, std, g);
    wpe_ = ps.add("wpe", cfg_.block_size, C, std, g);
    for (std::size_t l = 0; l < cfg_.n_layer; ++l) {
      std::string p = "L";  // built by appending: g++ 12 warns falsely on "L" + std::string (-Wrestrict)
      p += std::to_string(l);
      p += '.';
      layer_index w;
      w.wq = ps.add(p + "wq", C, C, std, g);
      w.wk = ps.add(p + "wk", C, C, std, g);
      w.wv = ps.add(p + "wv", C, C, std, g);
      w.wo = ps.add(p + "wo", C, C, std, g);
      w.fc1 = ps.add(p + "mlp_fc1", cfg_.mlp_hidden, C, std, g);
      w.fc2 = ps.add(p + "mlp_fc2", C, cfg_.mlp_hidden, std, g);
      layers_.push_back(w);
    }
    lm_head_ = ps.add("lm_head", V, C, std, g);
  }

  // x[T, C] + wpe[first .. first+T)
  var add_positions(basic_tape<T>& t, const basic_parameters<T>& ps, std::span<T> grads, var x, std::size_t first) const {
    if (first > cfg_.block_size || t.rows(x) > cfg_.block_size - first)
      throw error("gpt: positions " + std::to_string(first) + ".." + std::to_string(first + t.rows(x)) +
                  " exceed block_size " + std::to_string(cfg_.block_size));
    return add(t, x, slice_rows(t, t.parameter(ps, wpe_, grads), first, t.rows(x)));
  }
  // wte[tokens] + wpe[first ..]
  var embed(basic_tape<T>& t, const basic_parameters<T>& ps, std::span<T> grads, std::span<const std::int32_t> tokens,
            std::size_t first) const {
    return add_positions(t, ps, grads, embedding(t, t.parameter(ps, wte_, grads), tokens), first);
  }

  // Logits [T − logits_from, V] for embedded positions x[T, C] (rows before logits_from, such as
  // vision positions that predict nothing, skip the LM head). With a cache, x holds the positions
  // after the cached ones, and their keys and values are appended (inference only: no gradient
  // reaches them). With `weights`, each layer's attention weights [H, Tq, Tk] are appended to it.
  var forward(basic_tape<T>& t, const basic_parameters<T>& ps, std::span<T> grads, var x,
              basic_kv_cache<T>* cache = nullptr, std::size_t logits_from = 0,
              std::vector<std::vector<T>>* weights = nullptr) const {
    t.require(t.cols(x) == cfg_.n_embd, "gpt", "input embeddings must have n_embd columns", {x});
    t.require(logits_from < t.rows(x), "gpt", "logits_from must leave at least one row for the LM head", {x});
    auto p = [&](std::size_t i) { return t.parameter(ps, i, grads); };
    if (cache && cache->k.size() != layers_.size()) { cache->k.resize(layers_.size()); cache->v.resize(layers_.size()); }
    x = rmsnorm(t, x);  // every position normalised once on entry
    const std::size_t T_in = t.rows(x);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const layer_index& w = layers_[l];
      var xn = rmsnorm(t, x);
      var k = matmul(t, xn, p(w.wk)), v = matmul(t, xn, p(w.wv));
      if (cache) {
        k = cached(t, cache->k[l], k);
        v = cached(t, cache->v[l], v);
      }
      if (l + 1 == layers_.size() && logits_from > 0) {
        // Past the last layer's keys and values only rows that reach the LM head matter: their
        // queries attend to every key, and the other rows skip the rest of the block. Exact.
        x = slice_rows(t, x, logits_from, t.rows(x) - logits_from);
        xn = slice_rows(t, xn, logits_from, t.rows(xn) - logits_from);
      }
      var q = matmul(t, xn, p(w.wq));
      if (weights)
        weights->push_back(attention_weights<T>(t.value(q), t.value(k), t.rows(q), t.rows(k), cfg_.n_embd, cfg_.n_head,
                                                cfg_.attention()));
      x = add(t, x, matmul(t, attention(t, q, k, v, cfg_.n_head, cfg_.attention()), p(w.wo)));
      var hn = rmsnorm(t, x);
      x = add(t, x, matmul(t, relu(t, matmul(t, hn, p(w.fc1))), p(w.fc2)));
    }
    if (cache) cache->positions += T_in;
    return matmul(t, x, p(lm_head_));
  }

  // Continues the embedded prefix[T0, C] token by token on a KV cache until `end` or `stop_also`
  // is chosen, max_new tokens are out, or the block is full. Returns the tokens, without the stop.
  std::vector<std::int32_t> generate(basic_tape<T>& t, const basic_parameters<T>& ps, var prefix, std::size_t max_new,
                                     std::int32_t end, std::int32_t stop_also, const decoding& how,
                                     rng* g = nullptr) const {
    basic_kv_cache<T> cache;
    std::vector<T> logits(cfg_.vocab);
    advance(t, ps, cache, t.value(prefix), logits);
    return generate(t, ps, cache, std::move(logits), max_new, end, stop_also, how, g);
  }
  // The same from a cache of the positions so far and the logits[V] of the last of them.
  std::vector<std::int32_t> generate(basic_tape<T>& t, const basic_parameters<T>& ps, basic_kv_cache<T>& cache,
                                     std::vector<T> logits, std::size_t max_new, std::int32_t end,
                                     std::int32_t stop_also, const decoding& how, rng* g = nullptr) const {
    std::vector<std::int32_t> out;
    while (out.size() < max_new) {
      const std::int32_t tok = detail::pick_token<T>(logits, out, end, how, g);
      if (tok == end || tok == stop_also) break;
      out.push_back(tok);
      if (cache.positions >= cfg_.block_size) break;
      step(t, ps, cache, tok, logits);
    }
    return out;
  }

  // The positions rows[n, C] (embedded, positions added) after the cache's, off the tape: their
  // keys and values are appended to the cache, and logits[V] are the last one's. forward() on the
  // same rows and cache, logits from the last row, computes the same with the same kernels in the
  // same order (the tests hold the two equal bit for bit); here nothing is recorded (the tape's
  // bookkeeping was a fifth of a decoding step): t lends its scratch.
  void advance(basic_tape<T>& t, const basic_parameters<T>& ps, basic_kv_cache<T>& cache, std::span<const T> rows,
               std::span<T> logits) const {
    const std::size_t C = cfg_.n_embd, n = rows.size() / C;
    if (n == 0 || rows.size() % C != 0)
      throw error("gpt advance: " + std::to_string(rows.size()) + " values are not rows of n_embd " + std::to_string(C));
    run(t, ps, cache, n, logits, [&](T* x) { std::ranges::copy(rows, x); });
  }
  // One decoding step: token `tok` at the cache's next position (advance() on its embedding).
  void step(basic_tape<T>& t, const basic_parameters<T>& ps, basic_kv_cache<T>& cache, std::int32_t tok,
            std::span<T> logits) const {
    const std::size_t C = cfg_.n_embd, pos = cache.positions;  // (run() refuses a full block before fill reads wpe)
    if (tok < 0 || std::size_t(tok) >= cfg_.vocab)
      throw error("gpt step: token " + std::to_string(tok) + " outside the vocabulary of " + std::to_string(cfg_.vocab));
    run(t, ps, cache, 1, logits, [&](T* x) {
      add_forward<T>({x, C}, ps.value(wte_).subspan(std::size_t(tok) * C, C), ps.value(wpe_).subspan(pos * C, C));
    });
  }

  const gpt_config& config() const { return cfg_; }

private:
  struct layer_index {
    std::size_t wq, wk, wv, wo, fc1, fc2;
  };
  // advance()'s and step()'s block: fill(x) writes the n input rows; every layer runs them all,
  // except that the last one, past its keys and values, runs only the last row (as forward() does
  // with logits from there).
  template <class Fill>
  void run(basic_tape<T>& t, const basic_parameters<T>& ps, basic_kv_cache<T>& cache, std::size_t n,
           std::span<T> logits, Fill fill) const {
    const std::size_t C = cfg_.n_embd, F = cfg_.mlp_hidden, H = cfg_.n_head, V = cfg_.vocab, pos = cache.positions;
    if (pos + n > cfg_.block_size)
      throw error("gpt: " + std::to_string(n) + " more positions after " + std::to_string(pos) + " positions (block_size " +
                  std::to_string(cfg_.block_size) + ")");
    if (logits.size() != V) throw error("gpt: logits of " + std::to_string(logits.size()) + " values for vocab " + std::to_string(V));
    if (lm_head_ >= ps.entries().size() || ps.at(lm_head_).size() != V * C)
      throw error("gpt: the parameter store is not this model's (no lm_head of " + std::to_string(V) + "x" +
                  std::to_string(C) + " where this model registered it)");
    if (cache.k.size() != layers_.size()) { cache.k.resize(layers_.size()); cache.v.resize(layers_.size()); }
    const T eps = T(1e-5);  // rmsnorm()'s default, which forward() uses
    const std::size_t att = attention_scratch_size(pos + n, cfg_.head_dim(), cfg_.attention().factors),
                      mm = std::max({C, F, V}) * C;  // a transposed weight (matmul_forward, n ≥ 4)
    T* x = t.scratch(n * (5 * C + F + 2 * H + 1) + mm + att).data();
    T *xn = x + n * C, *q = xn + n * C, *a = q + n * C, *o = a + n * C, *h = o + n * C, *stats = h + n * F,
      *rstd = stats + 2 * H * n, *wT = rstd + n, *scratch = wT + mm;
    auto at = [](T* p, std::size_t count) { return std::span<T>(p, count); };
    // out[r, O] = in[r, I] · wᵀ
    auto matmul = [&](T* out, const T* in, std::size_t w, std::size_t r, std::size_t O, std::size_t I) {
      matmul_forward<T>(at(out, r * O), {in, r * I}, ps.value(w), r, I, O, at(wT, O * I));
    };
    fill(x);
    rmsnorm_forward<T>(at(x, n * C), at(rstd, n), at(x, n * C), n, C, eps);
    std::size_t r = n;  // rows still running
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const layer_index& L = layers_[l];
      rmsnorm_forward<T>(at(xn, r * C), at(rstd, r), at(x, r * C), r, C, eps);
      matmul(extend(cache.k[l], r), xn, L.wk, r, C, C);
      matmul(extend(cache.v[l], r), xn, L.wv, r, C, C);
      if (l + 1 == layers_.size()) {
        x += (r - 1) * C;
        xn += (r - 1) * C;
        r = 1;
      }
      matmul(q, xn, L.wq, r, C, C);
      attention_forward<T>(at(a, r * C), at(stats, 2 * H * r), at(scratch, att), at(q, r * C), cache.k[l], cache.v[l], r,
                           pos + n, C, H, cfg_.attention());
      matmul(o, a, L.wo, r, C, C);
      add_forward<T>(at(x, r * C), at(x, r * C), at(o, r * C));
      rmsnorm_forward<T>(at(xn, r * C), at(rstd, r), at(x, r * C), r, C, eps);
      matmul(h, xn, L.fc1, r, F, C);
      relu_forward<T>(at(h, r * F), at(h, r * F));
      matmul(o, h, L.fc2, r, C, F);
      add_forward<T>(at(x, r * C), at(x, r * C), at(o, r * C));
    }
    cache.positions = pos + n;
    matmul(logits.data(), x, lm_head_, 1, V, C);
  }
  // Room for `rows` more positions at the end of a cache store: the store is reserved for the
  // whole block, so it never moves while a tape reads it in place.
  T* extend(std::vector<T>& store, std::size_t rows) const {
    store.reserve(cfg_.block_size * cfg_.n_embd);
    store.resize(store.size() + rows * cfg_.n_embd);
    return store.data() + store.size() - rows * cfg_.n_embd;
  }
  // Appends the new rows to the cache and returns all cached rows as a tape constant, read in place.
  var cached(basic_tape<T>& t, std::vector<T>& store, var fresh) const {
    std::ranges::copy(t.value(fresh), extend(store, t.rows(fresh)));
    return t.view(store, store.size() / t.cols(fresh), t.cols(fresh));
  }

  gpt_config cfg_;
  std::size_t wte_ = 0, wpe_ = 0, lm_head_ = 0;
  std::vector<layer_index> layers_;
};


}  // namespace purevlm

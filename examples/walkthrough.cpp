// SPDX-License-Identifier: MIT
// walkthrough: one MNIST image followed from its bytes to the word the model writes, and the
// gradient back to one weight, with every number printed — the numbers of docs/walkthrough.md.
//   walkthrough [--data DIR]                 print the sections
//   walkthrough [--data DIR] --check PAGE    exit 1 unless PAGE's marked blocks equal them
//   walkthrough [--data DIR] --update PAGE   rewrite PAGE's marked blocks with them
// A marked block is a line `<!-- output: NAME -->`, then a ```text fence holding section NAME.
// The forward pass is written out here op by op (the same ops, in the same order, as
// basic_vlm's generation); the program checks that it gives the model's own word and loss.
// Built without -march=native and without FMA contraction, so the digits do not depend on the
// CPU's vector width (another compiler or C library could still move a last digit).
#include <purevlm/vlm.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace purevlm;

namespace {

// What the run prints, section by section: name → text, in the order written.
std::map<std::string, std::string> sections;
std::vector<std::string> order;
std::string* current = nullptr;  // the section say() writes to

void section(const std::string& name) {
  order.push_back(name);
  current = &sections[name];
}
template <class... A>
void say(const char* fmt, A... a) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, a...);
  *current += buf;
}
// The first `n` values of a span, 4 decimals.
template <class T>
std::string values(std::span<const T> v, std::size_t n = 8) {
  std::string s = "[";
  for (std::size_t i = 0; i < std::min(n, v.size()); ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%s%.4f", i ? " " : "", double(v[i]));
    s += b;
  }
  return s + (v.size() > n ? " …]" : "]");
}
template <class T>
double norm(std::span<const T> v) {
  double s = 0;
  for (T x : v) s += double(x) * double(x);
  return std::sqrt(s);
}

// The named intermediate results of one forward pass over the image and `text` (BOS, letters).
struct pass {
  var x, f1, f2, tokens, deg2, deg3, features, v, vision, prefix, q, k, vv, att, logits, loss;
};

// The seed model's forward pass, op by op: the image x[1,196] → vision positions → the GPT over
// the vision positions and the text → logits for the positions after the vision ones. With
// targets, the mean cross-entropy of those logits (the text loss).
template <std::floating_point T>
pass forward(basic_tape<T>& t, basic_vlm<T>& model, std::span<const T> image, std::span<const std::int32_t> text,
             std::span<const std::int32_t> targets, std::span<T> grads) {
  auto& ps = model.parameters();
  auto p = [&](const char* name) {
    const auto* e = ps.find(name);
    return t.parameter(ps, std::size_t(e - ps.entries().data()), grads);
  };
  const auto& c = model.config();
  const std::size_t Tv = c.vision_positions, H = c.gpt.n_head;
  pass r;
  r.x = t.input(image, 1, image.size());
  // the tokenizer: two BAEs (degree 2), their tensor product (degree 4), direct features (2 and 3)
  r.f1 = l2norm(t, mul(t, matmul(t, r.x, p("bae1_l")), matmul(t, r.x, p("bae1_r"))));
  r.f2 = l2norm(t, mul(t, matmul(t, r.x, p("bae2_l")), matmul(t, r.x, p("bae2_r"))));
  r.tokens = mul(t, matmul(t, r.f1, p("tp_proj_a")), matmul(t, r.f2, p("tp_proj_b")));
  r.deg2 = mul(t, matmul(t, r.x, p("bae_deg2_0")), matmul(t, r.x, p("bae_deg2_1")));
  r.deg3 = mul(t, mul(t, matmul(t, r.x, p("bae_deg3_0")), matmul(t, r.x, p("bae_deg3_1"))),
               matmul(t, r.x, p("bae_deg3_2")));
  r.features = l2norm(t, concat(t, concat(t, r.tokens, r.deg2), r.deg3));
  // the vision projection, bilinear again, repeated on every vision position; positions added
  r.v = mul(t, matmul(t, r.features, p("vis_proj_l")), matmul(t, r.features, p("vis_proj_r")));
  var wpe = p("wpe");
  r.vision = add(t, repeat_rows(t, r.v, Tv), slice_rows(t, wpe, 0, Tv));
  var words = add(t, embedding(t, p("wte"), text), slice_rows(t, wpe, Tv, text.size()));
  r.prefix = stack(t, r.vision, words);
  // the GPT: one block of tensor attention and a ReLU MLP, each after an RMSNorm, each residual
  var x = rmsnorm(t, r.prefix), xn = rmsnorm(t, x);
  r.q = matmul(t, xn, p("L0.wq"));
  r.k = matmul(t, xn, p("L0.wk"));
  r.vv = matmul(t, xn, p("L0.wv"));
  r.att = attention(t, r.q, r.k, r.vv, H, c.gpt.attention());
  x = add(t, x, matmul(t, r.att, p("L0.wo")));
  x = add(t, x, matmul(t, relu(t, matmul(t, rmsnorm(t, x), p("L0.mlp_fc1"))), p("L0.mlp_fc2")));
  r.logits = matmul(t, slice_rows(t, x, Tv, text.size()), p("lm_head"));
  if (!targets.empty()) r.loss = cross_entropy(t, r.logits, targets);
  return r;
}

template <class T>
std::span<const T> val(basic_tape<T>& t, var v) { return t.value(v); }

void run(const std::string& data) {
  // ---- a small run: the seed preset for 2,000 images, then training image 0 ----
  const labeled_images train = read_idx_split(data, "train");
  vlm_config cfg = vlm_config::seed();
  cfg.train.steps = 2000;
  vlm model(cfg, vocabulary(mnist_class_names()), 42);
  trainer tr(model, train, 42, 1);
  double last = 0;
  for (int s = 0; s < cfg.train.steps; ++s) last = tr.step().loss;

  section("bytes");
  const auto img = train.images.image(0);
  say("train-images-idx3-ubyte: %zu images of %zux%zu bytes after a 16-byte header; image 0 is bytes 16..799\n",
      train.images.count, train.images.rows, train.images.cols);
  say("train-labels-idx1-ubyte: label 0 (byte 8) = %d\n", int(train.labels[0]));
  const char* ramp = " .:-=+*#%@";
  for (std::size_t r = 4; r < 24; ++r) {
    say("  ");
    for (std::size_t c = 2; c < 26; ++c) say("%c", ramp[img[r * 28 + c] * 9 / 255]);
    say("\n");
  }
  say("row 14, columns 6..18: ");
  for (std::size_t c = 6; c < 19; ++c) say("%d ", int(img[14 * 28 + c]));
  say("\n");

  section("prepare");
  std::vector<float> x(cfg.pixels());
  prepare<float>(x, img);
  say("x [1,%zu]: /255, 2x2 mean (28x28 -> 14x14), divided by its norm (%.4f after)\n", x.size(),
      norm(std::span<const float>(x)));
  say("row 7 of 14: %s\n", values(std::span<const float>(x).subspan(7 * 14, 14), 14).c_str());

  tape t;
  auto ids = model.vocab().encode("five");  // BOS f i v e EOS
  const std::span<const std::int32_t> text(ids.data(), ids.size() - 1), targets(ids.data() + 1, ids.size() - 1);
  pass r = forward<float>(t, model, x, text, targets, model.parameters().grads());

  section("tokenizer");
  auto show = [&](const char* what, var v, std::size_t n = 8) {
    say("%-9s %-8s %s\n", what, t.shape_of(v).c_str(), values(val(t, v), n).c_str());
  };
  show("f1", r.f1, 10);
  show("f2", r.f2, 10);
  show("tokens", r.tokens, 12);
  show("deg2", r.deg2);
  show("deg3", r.deg3);
  show("features", r.features);

  section("vision");
  show("v", r.v);
  show("vision", r.vision);
  show("prefix", r.prefix);

  section("attention");
  const std::size_t Tv = cfg.vision_positions, H = cfg.gpt.n_head, Tk = t.rows(r.k);
  show("q", r.q);
  show("k", r.k);
  const auto w = attention_weights<float>(val(t, r.q), val(t, r.k), Tk, Tk, cfg.gpt.n_embd, H, cfg.gpt.attention());
  say("weights of the BOS query (position %zu), per head: on the vision positions | on BOS\n", Tv);
  for (std::size_t h = 0; h < H; ++h) {
    const float* a = &w[(h * Tk + Tv) * Tk];
    double vis = 0;
    for (std::size_t p = 0; p < Tv; ++p) vis += a[p];
    say("  head %zu: %.4f | %.4f   (largest single vision weight %.4f)\n", h, vis, double(a[Tv]),
        double(*std::max_element(a, a + Tv)));
  }
  show("att", r.att);

  section("letters");
  const auto& vocab = model.vocab();
  const std::size_t V = cfg.gpt.vocab;
  std::string word;
  for (std::size_t j = 0; j < text.size(); ++j) {
    auto l = val(t, r.logits).subspan(j * V, V);
    double mx = l[0], sum = 0;
    for (float z : l) mx = std::max(mx, double(z));
    for (float z : l) sum += std::exp(double(z) - mx);
    const std::size_t best = std::size_t(std::max_element(l.begin(), l.end()) - l.begin());
    const std::int32_t id = std::int32_t(best);
    const std::string got = id == vocab.eos() ? "<end>" : vocab.decode(std::span(&id, 1));
    say("after %-5s logits %s -> '%s' p = %.4f\n", j == 0 ? "BOS" : vocab.decode(text.subspan(1, j)).c_str(),
        values(l, 4).c_str(), got.c_str(), std::exp(double(l[best]) - mx) / sum);
    if (best != std::size_t(vocab.eos())) word += got;
  }
  const std::string generated = model.generate(std::span<const float>(x));
  say("the model's own generate(): \"%s\"\n", generated.c_str());
  if (generated != "five" || word != "five") throw error("walkthrough: the model wrote \"" + generated + "\", not five");

  section("loss");
  tape t2;
  auto ref = model.forward(t2, x, ids);
  say("text loss (mean cross-entropy of the 5 letters and the end) = %.6f; the model's forward: %.6f\n",
      double(val(t, r.loss)[0]), double(val(t2, ref.text_loss)[0]));
  say("training adds %.2f x the tokenizer's reconstruction error, clamped to [0, 10]: here %.3g\n", cfg.recon_weight,
      double(val(t2, ref.recon)[0]));
  say("(the last of the 2,000 training steps had loss %.4f)\n", last);
  if (std::abs(val(t, r.loss)[0] - val(t2, ref.text_loss)[0]) > 1e-6f) throw error("walkthrough: loss differs from the model's");

  section("backward");
  model.parameters().zero_grads();
  t.backward(r.loss);
  auto grad_norm = [&](const char* what, var v) {
    say("%-9s %-8s |grad| = %.6f\n", what, t.shape_of(v).c_str(), norm(std::span<const float>(t.grad(v))));
  };
  say("dloss/dlogits, row BOS (predicting 'f'): %s\n", values(std::span<const float>(t.grad(r.logits)).first(V), 6).c_str());
  for (auto [name, v] : {std::pair{"logits", r.logits}, {"att", r.att}, {"q", r.q}, {"k", r.k}, {"v", r.vv},
                         {"prefix", r.prefix}, {"vision", r.vision}, {"v", r.v}, {"features", r.features},
                         {"tokens", r.tokens}, {"f1", r.f1}})
    grad_norm(name, v);
  say("and into the weights (each a matrix of the parameter store; the image itself needs none):\n");
  const auto& store = model.parameters();
  for (const char* name : {"lm_head", "L0.wq", "vis_proj_l", "tp_proj_a", "bae1_l"}) {
    const std::size_t i = std::size_t(store.find(name) - store.entries().data());
    say("%-10s %-8s |grad| = %.6f\n", name, detail::shape_string(std::array{store.at(i).rows, store.at(i).cols}).c_str(),
        norm(std::span<const float>(model.parameters().grad(i))));
  }

  section("check");
  // The same pass in double precision from the same weights: the analytic gradient of one weight
  // against the central difference of the loss.
  basic_vlm<double> md(cfg, vocabulary(mnist_class_names()), 42);
  std::ranges::copy(model.parameters().values(), md.parameters().values().begin());
  std::vector<double> xd(x.begin(), x.end());
  auto& ps = md.parameters();
  const std::size_t wq = std::size_t(ps.find("L0.wq") - ps.entries().data());
  basic_tape<double> td;
  ps.zero_grads();
  td.backward(forward<double>(td, md, xd, text, targets, ps.grads()).loss);
  auto g = ps.grad(wq);  // the weight of L0.wq the loss is most sensitive to
  const std::size_t at = std::size_t(std::ranges::max_element(g, {}, [](double a) { return std::abs(a); }) - g.begin());
  const double analytic = g[at], h = 1e-5, w0 = ps.value(wq)[at];
  auto loss_at = [&](double wv) {
    ps.value(wq)[at] = wv;
    basic_tape<double> tl;
    return tl.value(forward<double>(tl, md, xd, text, targets, {}).loss)[0];
  };
  const double numeric = (loss_at(w0 + h) - loss_at(w0 - h)) / (2 * h);
  ps.value(wq)[at] = w0;
  say("the largest gradient of L0.wq is at [%zu,%zu]\n", at / 32, at % 32);
  say("  backward pass:                      %.9f\n", analytic);
  say("  (loss(w + h) - loss(w - h)) / 2h:   %.9f   (h = 1e-5)\n", numeric);
  say("relative difference %.1e\n", std::abs(analytic - numeric) / std::abs(numeric));
  if (!(std::abs(analytic - numeric) <= 1e-6 * std::abs(numeric))) throw error("walkthrough: the gradient check failed");
}

// The page with every marked block's text replaced by this run's section of that name. With
// check, throws at the first line where the page and the run differ instead.
std::string replace_blocks(const std::string& page, const std::string& file, bool check) {
  std::istringstream in(page);
  std::string line, out, name;
  std::size_t n = 0, seen = 0;
  while (std::getline(in, line)) {
    ++n;
    out += line + "\n";
    const std::string mark = "<!-- output: ";
    if (line.rfind(mark, 0) != 0) continue;
    name = line.substr(mark.size(), line.find(" -->") - mark.size());
    if (!sections.count(name)) throw error(file + ":" + std::to_string(n) + ": no section named " + name);
    std::string fence, old;
    if (!std::getline(in, fence) || fence != "```text") throw error(file + ":" + std::to_string(n + 1) + ": expected ```text");
    ++n;
    while (std::getline(in, line) && line != "```") { old += line + "\n"; ++n; }
    ++n;
    if (check && old != sections[name]) {
      std::istringstream a(old), b(sections[name]);
      std::string la, lb;
      for (std::size_t k = 1;; ++k) {
        const bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
        if (la != lb || ga != gb)
          throw error(file + ": block " + name + ", line " + std::to_string(k) + ":\n  page: " + (ga ? la : "(none)") +
                      "\n  run:  " + (gb ? lb : "(none)"));
      }
    }
    out += fence + "\n" + sections[name] + "```\n";
    ++seen;
  }
  if (seen != order.size())
    throw error(file + ": " + std::to_string(seen) + " marked blocks for " + std::to_string(order.size()) + " sections");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "data/mnist", check, update;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 < argc && a == "--data") data = argv[++i];
    else if (i + 1 < argc && a == "--check") check = argv[++i];
    else if (i + 1 < argc && a == "--update") update = argv[++i];
    else {
      std::fprintf(stderr, "usage: walkthrough [--data DIR] [--check PAGE | --update PAGE]\n");
      return 2;
    }
  }
  try {
    run(data);
    const std::string page_path = check.empty() ? update : check;
    if (page_path.empty()) {
      for (const auto& name : order) std::printf("== %s ==\n%s", name.c_str(), sections[name].c_str());
      return 0;
    }
    std::ifstream f(page_path);
    if (!f) throw error(page_path + ": cannot open");
    std::stringstream s;
    s << f.rdbuf();
    const std::string page = replace_blocks(s.str(), page_path, !check.empty());
    if (!update.empty()) {
      std::ofstream(update) << page;
      std::printf("walkthrough: %zu blocks written to %s\n", order.size(), update.c_str());
    } else {
      std::printf("walkthrough: %s agrees with this run (%zu blocks)\n", check.c_str(), order.size());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "walkthrough: %s\n", e.what());
    return 1;
  }
}

// SPDX-License-Identifier: MIT
// mnist_vlm: show the model an MNIST digit and it writes the word.
//   mnist_vlm train   train a preset on MNIST (or Fashion-MNIST), save it, evaluate on the test set
//   mnist_vlm eval    evaluate a saved model on the whole test set
//   mnist_vlm say     read PGM pictures and write what they show
//   mnist_vlm show    draw what the model sees and where it looks, as SVG files
// All errors end the program with a message and a non-zero exit; the library only throws.
#include <purevlm/vlm.hpp>

#include <unistd.h>

#include "pictures.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

using namespace purevlm;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

const char* const fetch_hint = "cmake -P cmake/fetch_mnist.cmake   (downloads MNIST into ./data/mnist, checking SHA-256)";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- command line ----
struct options {
  std::string command, data, dataset = "mnist", task = "digits", preset = "default", save, resume, load, report, out, image;
  bool preset_given = false;
  std::optional<std::int64_t> steps, epochs;
  std::optional<std::size_t> index;
  std::optional<std::size_t> batch;
  std::optional<double> lr;
  // training is bit-identical whatever the thread count, so all cores by default
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency()), limit = 0, shift = 0, save_every = 2000;
  std::uint64_t seed = 42;
  bool json = false, constrained = false, help = false;
  std::vector<std::string> images;
};

const std::map<std::string, std::string> help_text = {
    {"train",
     "usage: mnist_vlm train [--data DIR] [--dataset mnist|fashion] [--task digits|numbers] [--preset seed|default|numbers]\n"
     "                       [--steps N | --epochs E] [--batch B] [--lr LR] [--threads T] [--seed S]\n"
     "                       [--save FILE] [--save-every N] [--resume FILE] [--json]\n"
     "Trains the preset, saves it (default: purevlm-<preset>.ckpt) every N steps (2000) and at the end,\n"
     "then evaluates it on the whole test set. --task numbers: whole numbers 0..999 made of MNIST digits,\n"
     "written in words (\"forty-two\"); its preset is numbers, its test set 10,000 numbers of test digits.\n"},
    {"eval",
     "usage: mnist_vlm eval --load FILE [--data DIR] [--limit N] [--shift P] [--constrained] [--json]\n"
     "                      [--report FILE.html]\n"
     "Evaluates a saved model on the test set: accuracy with a 95% interval, per class, confusion matrix.\n"
     "--shift P moves each test digit P pixels in one of 8 directions (fixed per image) first.\n"
     "--report writes one self-contained HTML page of it: bars, the confusion heat map, the misread\n"
     "digits, where the model looked for a few of them, and the training curve when its log is there.\n"},
    {"show",
     "usage: mnist_vlm show --load FILE (--image IMAGE.pgm | --index N) --out DIR [--data DIR]\n"
     "Writes SVG pictures into DIR: input.svg (the image as the model sees it), attention.svg (for each\n"
     "letter it writes, its attention over the image's regions, per head and their mean), filters.svg\n"
     "(the tokenizer's filters) and curve.svg (loss and accuracy from the training log beside FILE).\n"
     "--index N takes test image N (a numbers model: test number N); --image any PGM or PNG picture.\n"},
    {"say", "usage: mnist_vlm say --load FILE [--json] IMAGE.pgm...\n"
            "Writes the word each picture shows (PGM P2/P5, or PNG with libpng; any size) with its probability,\n"
            "and the runner-up "
            "when it is close; --json: one object per picture with every class name's probability.\n"},
};

std::string general_help() {
  std::string s = "mnist_vlm: a vision-language model that writes the name of the digit it sees.\n"
                  "commands: train, eval, say, show   (mnist_vlm COMMAND --help for each)\n";
  return s;
}

template <class V>
V parse_number(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  long long v;
  if (!(in >> v) || !in.eof() || v < 0) throw usage_error(flag + " takes a non-negative whole number, got '" + text + "'");
  return V(v);
}

double parse_positive(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  double v;
  if (!(in >> v) || !in.eof() || !(v > 0) || !std::isfinite(v)) throw usage_error(flag + " takes a positive number, got '" + text + "'");
  return v;
}

options parse(int argc, char** argv) {
  options o;
  if (argc < 2) throw usage_error("no command given\n" + general_help());
  o.command = argv[1];
  if (o.command == "--help" || o.command == "-h") { o.help = true; return o; }
  if (!help_text.count(o.command)) throw usage_error("unknown command '" + o.command + "'\n" + general_help());
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--json") o.json = true;
    else if (a == "--constrained" && o.command == "eval") o.constrained = true;
    else if (a == "--data" && o.command != "say") o.data = value();
    else if (a == "--load" && o.command != "train") o.load = value();
    else if (o.command == "train" && a == "--dataset") o.dataset = value();
    else if (o.command == "train" && a == "--preset") { o.preset = value(); o.preset_given = true; }
    else if (o.command == "train" && a == "--task") o.task = value();
    else if (o.command == "train" && a == "--steps") o.steps = parse_number<std::int64_t>(a, value());
    else if (o.command == "train" && a == "--epochs") o.epochs = parse_number<std::int64_t>(a, value());
    else if (o.command == "train" && a == "--batch") o.batch = parse_number<std::size_t>(a, value());
    else if (o.command == "train" && a == "--lr") o.lr = parse_positive(a, value());
    else if (o.command == "train" && a == "--threads") o.threads = parse_number<std::size_t>(a, value());
    else if (o.command == "train" && a == "--seed") o.seed = parse_number<std::uint64_t>(a, value());
    else if (o.command == "train" && a == "--save") o.save = value();
    else if (o.command == "train" && a == "--save-every") o.save_every = parse_number<std::size_t>(a, value());
    else if (o.command == "train" && a == "--resume") o.resume = value();
    else if (o.command == "eval" && a == "--limit") o.limit = parse_number<std::size_t>(a, value());
    else if (o.command == "eval" && a == "--shift") o.shift = parse_number<std::size_t>(a, value());
    else if (o.command == "say" && !a.starts_with("-")) o.images.push_back(a);
    else if (o.command == "eval" && a == "--report") o.report = value();
    else if (o.command == "show" && a == "--out") o.out = value();
    else if (o.command == "show" && a == "--image") o.image = value();
    else if (o.command == "show" && a == "--index") o.index = parse_number<std::size_t>(a, value());
    else throw usage_error("unknown option '" + a + "' for " + o.command + "\n" + help_text.at(o.command));
  }
  if (o.help) return o;
  if (o.steps && o.epochs) throw usage_error("give --steps or --epochs, not both");
  if (o.threads == 0) throw usage_error("--threads must be at least 1");
  if (o.save_every == 0) throw usage_error("--save-every must be at least 1");
  if (o.shift > 27) throw usage_error("--shift moves a 28x28 digit by 0..27 pixels, got " + std::to_string(o.shift));
  if (o.batch && *o.batch == 0) throw usage_error("--batch must be at least 1");
  if (o.dataset != "mnist" && o.dataset != "fashion") throw usage_error("--dataset is mnist or fashion, got '" + o.dataset + "'");
  if (o.task != "digits" && o.task != "numbers") throw usage_error("--task is digits or numbers, got '" + o.task + "'");
  if (o.task == "numbers" && o.dataset != "mnist") throw usage_error("--task numbers is made of MNIST digits: drop --dataset " + o.dataset);
  if (o.command != "train" && o.load.empty()) throw usage_error(o.command + " needs --load FILE\n" + help_text.at(o.command));
  if (o.command == "say" && o.images.empty()) throw usage_error("say needs at least one IMAGE.pgm\n" + help_text.at("say"));
  if (o.command == "show" && (o.out.empty() || o.image.empty() == !o.index))
    throw usage_error("show needs --out DIR and one of --image FILE or --index N\n" + help_text.at("show"));
  return o;
}

// ---- data ----
std::vector<std::string> class_names_for(const std::string& dataset) {
  return dataset == "fashion" ? fashion_mnist_class_names() : mnist_class_names();
}

// --data, then $PUREVLM_DATA, then ./data/mnist (Fashion-MNIST: Debian's package directory).
std::string find_data(const options& o, const std::string& dataset) {
  std::vector<std::string> tried;
  if (!o.data.empty()) tried.push_back(o.data);
  else {
    if (const char* env = std::getenv("PUREVLM_DATA")) tried.push_back(env);
    tried.push_back(dataset == "fashion" ? "/usr/share/datasets/fashion-mnist" : "data/mnist");
  }
  for (const auto& d : tried) {
    if (fs::exists(d + "/t10k-labels-idx1-ubyte.gz") || fs::exists(d + "/t10k-labels-idx1-ubyte")) return d;
  }
  std::string msg = "no " + dataset + " data found; looked in:";
  for (const auto& d : tried) msg += "\n  " + d;
  msg += dataset == "fashion" ? "\nHINT: apt-get install dataset-fashion-mnist, or pass --data DIR"
                              : std::string("\nHINT: fetch it with\n  ") + fetch_hint + "\nor pass --data DIR";
  throw error(msg);
}

// ---- evaluation ----
// The 28 x cols picture in 14 lines of text (two image rows per line: characters are tall), with
// `caption` beside its middle line.
std::string ascii_art(std::span<const std::uint8_t> img, const std::string& caption, std::size_t cols = 28) {
  static const char ramp[] = " .:-=+*#%@";
  std::string s;
  for (std::size_t r = 0; r < 28; r += 2) {
    s += "    ";
    for (std::size_t c = 0; c < cols; ++c) s += ramp[(img[r * cols + c] + img[(r + 1) * cols + c]) * 9 / 510];
    if (r == 14) s += "   " + caption;
    s += '\n';
  }
  return s;
}

struct report {
  std::size_t n = 0, correct = 0, invalid = 0, constrained_correct = 0;
  double micros_per_image = 0;
  std::vector<std::vector<std::size_t>> confusion;  // [true class][word written; last: not a name]
  std::vector<std::string> said;                    // the word written for each test image
};

// The 95% Wilson score interval of an accuracy p over n images: honest near 100% and for small n.
std::pair<double, double> wilson(double p, std::size_t n) {
  const double z = 1.96, N = double(n);
  const double centre = (p + z * z / (2 * N)) / (1 + z * z / N),
               half = z * std::sqrt(p * (1 - p) / N + z * z / (4.0 * N * N)) / (1 + z * z / N);
  return {centre - half, centre + half};
}

// Test image i as evaluated: moved by `shift` pixels in its own direction (test_shift), or as is.
std::span<const std::uint8_t> test_image(const labeled_images& test, std::size_t i, std::size_t shift,
                                         std::vector<std::uint8_t>& moved) {
  auto img = test.images.image(i);
  if (shift == 0) return img;
  moved.resize(img.size());
  const auto [dx, dy] = test_shift(i, int(shift));
  shift_image(moved, img, dx, dy, test.images.rows, test.images.cols);
  return moved;
}

report evaluate(const vlm& model, const labeled_images& test, std::size_t limit, std::size_t shift, bool constrained, bool quiet) {
  const auto& names = model.vocab().class_names();
  const std::size_t K = names.size(), n = limit ? std::min(limit, test.size()) : test.size();
  report r;
  r.n = n;
  r.confusion.assign(K, std::vector<std::size_t>(K + 1, 0));
  r.said.resize(n);
  auto& confusion = r.confusion;
  auto& said = r.said;
  std::vector<float> x(model.config().pixels());
  std::vector<std::uint8_t> moved;
  tape t;
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) {
    prepare<float>(x, test_image(test, i, shift, moved), test.images.rows, test.images.cols);
    said[i] = model.generate(t, x);
    const int k = model.vocab().class_of(said[i]);
    confusion[test.labels[i]][k < 0 ? K : std::size_t(k)]++;
    r.correct += said[i] == names[test.labels[i]];
    r.invalid += k < 0;
  }
  r.micros_per_image = std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / double(n);
  if (constrained) {
    const word_trie words = model.class_trie();
    for (std::size_t i = 0; i < n; ++i) {
      prepare<float>(x, test_image(test, i, shift, moved), test.images.rows, test.images.cols);
      r.constrained_correct += model.generate(t, x, decoding{.words = &words}) == names[test.labels[i]];
    }
  }
  if (quiet) return r;

  // a few examples: the first few, and the first few mistakes
  std::printf("\nexamples:\n");
  std::size_t shown = 0, wrong_shown = 0;
  for (std::size_t i = 0; i < n && (shown < 3 || wrong_shown < 2); ++i) {
    const bool ok = said[i] == names[test.labels[i]];
    if (ok ? shown >= 3 : wrong_shown >= 2) continue;
    (ok ? shown : wrong_shown)++;
    std::string caption = "[";  // appended: g++ 12 warns falsely on "..." + std::string (-Wrestrict)
    caption += std::to_string(test.labels[i]);
    caption += "] true: " + names[test.labels[i]] + " | generated: " + said[i] + (ok ? "  ✓" : "  ✗");
    std::printf("%s\n", ascii_art(test_image(test, i, shift, moved), caption).c_str());
  }
  const double p = double(r.correct) / double(n);
  const auto [lo, hi] = wilson(p, n);
  if (shift > 0) std::printf("each test digit moved %zu pixels (one of 8 directions, fixed per image)\n", shift);
  std::printf("test images: %zu\nexact-word accuracy: %.2f%%  (95%% interval %.2f–%.2f%%)\n", n, 100 * p, 100 * lo,
              100 * hi);
  std::printf("generated strings that are not a class name: %zu\n", r.invalid);
  if (constrained) std::printf("constrained decoding (to the class names) accuracy: %.2f%%\n", 100.0 * double(r.constrained_correct) / double(n));
  std::printf("inference: %.1f µs per image (1 thread)\n\nper class:\n", r.micros_per_image);
  for (std::size_t k = 0; k < K; ++k) {
    std::size_t total = 0;
    for (auto c : confusion[k]) total += c;
    std::printf("  %-12s %6.2f%%  (%zu images)\n", names[k].c_str(), total ? 100.0 * double(confusion[k][k]) / double(total) : 0.0, total);
  }
  std::printf("\nconfusion (rows: true class, columns: generated word, '?': not a class name):\n%14s", "");
  for (std::size_t k = 0; k < K; ++k) std::printf("%6.5s", names[k].c_str());
  std::printf("%6s\n", "?");
  for (std::size_t k = 0; k < K; ++k) {
    std::printf("  %-12.12s", names[k].c_str());
    for (auto c : confusion[k]) std::printf("%6zu", c);
    std::printf("\n");
  }
  return r;
}

// ---- the numbers task ----
// The fixed test set: numbers 0..9999 of this seed, made of test digits.
constexpr std::uint64_t numbers_test_seed = 1000;
bool is_numbers_model(const vlm& model) { return model.vocab().class_names() == number_class_names(); }

struct numbers_report {
  std::size_t n = 0, correct = 0, valid = 0;
  std::array<std::size_t, 4> n_by_digits{}, correct_by_digits{};
  std::array<std::size_t, 3> wrong_digit_at{};  // same number of digits, this position wrong (left to right)
  std::size_t wrong_length = 0;                 // a valid number of another length
};
numbers_report evaluate_numbers(const vlm& model, const labeled_images& test, std::size_t limit, bool quiet) {
  const number_images make(test, numbers_test_seed);
  numbers_report r;
  r.n = limit ? std::min<std::size_t>(limit, 10000) : 10000;
  std::vector<float> x(model.config().pixels());
  tape t;
  std::vector<std::string> shown;
  for (std::size_t i = 0; i < r.n; ++i) {
    const number_image im = make(i);
    prepare<float>(x, im.pixels, number_images::rows, make.width());
    const std::string said = model.generate(t, x), want = number_words(im.value), digits = std::to_string(im.value);
    const bool ok = said == want;
    r.correct += ok;
    r.n_by_digits[digits.size()]++;
    r.correct_by_digits[digits.size()] += ok;
    const auto v = number_from_words(said);
    r.valid += v.has_value();
    if (v && !ok) {
      const std::string got = std::to_string(*v);
      if (got.size() != digits.size()) r.wrong_length++;
      else
        for (std::size_t k = 0; k < got.size(); ++k) r.wrong_digit_at[k] += got[k] != digits[k];
    }
    if (!ok && shown.size() < 8) shown.push_back(digits + " → \"" + said + "\"" + (v ? "" : " (not a number)"));
  }
  if (quiet) return r;
  const double p = double(r.correct) / double(r.n);
  const auto [lo, hi] = wilson(p, r.n);
  std::printf("test numbers: %zu (made of test digits)\nexact words: %.2f%%  (95%% interval %.2f–%.2f%%)\n", r.n, 100 * p,
              100 * lo, 100 * hi);
  for (std::size_t d = 1; d <= 3; ++d)
    std::printf("  %zu digit%s %6.2f%%  (%zu numbers)\n", d, d > 1 ? "s:" : ": ",
                r.n_by_digits[d] ? 100.0 * double(r.correct_by_digits[d]) / double(r.n_by_digits[d]) : 0.0, r.n_by_digits[d]);
  std::printf("outputs that are number words: %.2f%%\n", 100.0 * double(r.valid) / double(r.n));
  std::printf("misread digit, when the length was right: first %zu, second %zu, third %zu; wrong length %zu\n",
              r.wrong_digit_at[0], r.wrong_digit_at[1], r.wrong_digit_at[2], r.wrong_length);
  if (!shown.empty()) {
    std::printf("some mistakes:\n");
    for (const auto& m : shown) std::printf("  %s\n", m.c_str());
  }
  return r;
}

// ---- progress ----
class progress {
public:
  progress(std::int64_t total, std::size_t batch) : total_(total), batch_(batch), tty_(isatty(STDERR_FILENO)) {}
  void update(std::int64_t step, double loss) {
    smooth_ = step == 1 || smooth_ < 0 ? loss : 0.98 * smooth_ + 0.02 * loss;
    const auto now = clock_type::now();
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = double(step - first_) * double(batch_) / std::max(secs, 1e-9);
    const double eta = double(total_ - step) * double(batch_) / std::max(rate, 1e-9);
    if (tty_) {
      if (std::chrono::duration<double>(now - last_).count() < 0.1 && step != total_) return;
      last_ = now;
      const int width = 30, filled = int(double(width) * double(step) / double(total_));
      std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f  %.0f samples/s  ETA %.0fs   ", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), (long long)step, (long long)total_, smooth_, rate, eta);
      if (step == total_) std::fprintf(stderr, "\n");
    } else if (step == total_ || step % std::max<std::int64_t>(1, total_ / 10) == 0) {
      std::fprintf(stderr, "step %lld/%lld  loss %.4f  %.0f samples/s  ETA %.0fs\n", (long long)step, (long long)total_,
                   smooth_, rate, eta);
    }
  }
  void start_at(std::int64_t step) { first_ = step; }

private:
  std::int64_t total_, first_ = 0;
  std::size_t batch_;
  bool tty_;
  double smooth_ = -1;
  clock_type::time_point start_ = clock_type::now(), last_{};
};

void print_json(const std::map<std::string, std::string>& fields) {
  std::string s = "{";
  for (const auto& [k, v] : fields) s += (s.size() > 1 ? ", \"" : "\"") + k + "\": " + v;
  std::printf("%s}\n", s.c_str());
}
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", c);
      out += u;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

// ---- pictures ----
// Writes text to a file, or throws naming it.
void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw error("cannot write " + path);
}

// eval --report: one self-contained page (inline SVG, no scripts, no network).
void write_report(const std::string& path, const std::string& checkpoint, const vlm& model, const labeled_images& test,
                  const report& r, std::size_t shift) {
  const auto& names = model.vocab().class_names();
  const std::size_t K = names.size();
  const double p = double(r.correct) / double(r.n);
  const auto [lo, hi] = wilson(p, r.n);
  std::string h = "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head><meta charset=\"utf-8\"/>"
                  "<title>purevlm report: " + pictures::escape(checkpoint) + "</title>\n<style>body{font-family:sans-serif;"
                  "margin:24px;max-width:1100px} .digits svg{margin:2px}</style></head>\n<body>\n";
  h += "<h1>purevlm: " + pictures::escape(checkpoint) + "</h1>\n<p>preset <b>" + pictures::escape(model.config().preset) +
       "</b>, " + std::to_string(model.parameter_count()) + " parameters; " + std::to_string(r.n) + " test images" +
       (shift ? ", each moved " + std::to_string(shift) + " pixels" : std::string()) + ".</p>\n";
  h += "<h2>Exact-word accuracy: " + pictures::num(100 * p) + "%</h2>\n<p>95% interval " + pictures::num(100 * lo) + "–" +
       pictures::num(100 * hi) + "%; " + std::to_string(r.invalid) + " generated strings are not a class name.</p>\n";
  std::vector<double> acc(K, 0.0);
  for (std::size_t k = 0; k < K; ++k) {
    std::size_t total = 0;
    for (auto c : r.confusion[k]) total += c;
    acc[k] = total ? double(r.confusion[k][k]) / double(total) : 0.0;
  }
  h += "<h2>Per class</h2>\n" + pictures::class_bars(names, acc);
  h += "<h2>Confusion</h2>\n" + pictures::confusion_map(names, r.confusion);
  std::vector<std::size_t> wrong;
  std::vector<std::uint8_t> moved;
  for (std::size_t i = 0; i < r.n; ++i)
    if (r.said[i] != names[test.labels[i]]) wrong.push_back(i);
  const std::size_t shown = std::min<std::size_t>(wrong.size(), 60);
  h += "<h2>Misread (" + std::to_string(shown) + " of " + std::to_string(wrong.size()) + ")</h2>\n<div class=\"digits\">\n";
  for (std::size_t j = 0; j < shown; ++j) {
    const std::size_t i = wrong[j];
    std::string top = "#", bottom = "wrote \"";  // appended: g++ 12 warns falsely on "..." + std::string
    top += std::to_string(i) + " " + names[test.labels[i]];
    bottom += r.said[i] + "\"";
    h += pictures::digit_picture(test_image(test, i, shift, moved), top, bottom);
  }
  h += "</div>\n";
  std::vector<float> x(model.config().pixels());
  for (std::size_t j = 0; j < std::min<std::size_t>(wrong.size(), 3); ++j) {
    const std::size_t i = wrong[j];
    prepare<float>(x, test_image(test, i, shift, moved), test.images.rows, test.images.cols);
    h += "<h3>Where it looked: test image " + std::to_string(i) + " (" + pictures::escape(names[test.labels[i]]) + ")</h3>\n";
    h += pictures::attention_picture(model, x, model.trace(x));
  }
  const auto log = pictures::read_log(pictures::log_path(checkpoint));
  if (!log.empty()) h += "<h2>Training</h2>\n" + pictures::curve_picture(log);
  h += "</body>\n</html>\n";
  write_text(path, h);
}

// ---- commands ----
int train(const options& o) {
  bool numbers = o.task == "numbers";
  vlm_config cfg = vlm_config::named(numbers && !o.preset_given ? "numbers" : o.preset);
  std::string dataset = o.dataset;
  std::optional<checkpoint> resumed;
  if (!o.resume.empty()) {
    resumed = read_checkpoint(o.resume);
    if (resumed->preset != cfg.preset)
      throw error(o.resume + " holds preset '" + resumed->preset + "'; pass --preset " + resumed->preset + " to resume it");
    cfg = resumed->config;  // the run's own config, whatever this version's preset is
    dataset = resumed->class_names == fashion_mnist_class_names() ? "fashion" : "mnist";
    numbers = resumed->class_names == number_class_names();
  }
  const std::vector<std::string> class_names = numbers ? number_class_names() : class_names_for(dataset);
  const std::string dir = find_data(o, dataset);
  std::fprintf(stderr, "reading %s from %s\n", dataset.c_str(), dir.c_str());
  const labeled_images train_set = read_idx_split(dir, "train"), test_set = read_idx_split(dir, "t10k");

  if (o.batch) cfg.train.batch = *o.batch;
  if (o.lr) cfg.train.lr.lr = *o.lr;
  if (o.steps) cfg.train.steps = *o.steps;
  if (o.epochs) cfg.train.steps = std::max<std::int64_t>(1, *o.epochs * std::int64_t(train_set.size()) / std::int64_t(cfg.train.batch));
  vlm model(cfg, vocabulary(class_names), o.seed);
  run_state run{.step = 0, .total_steps = cfg.train.steps, .seed = o.seed, .batch = cfg.train.batch};
  if (resumed) {
    restore(*resumed, model, nullptr, &run, &model.init_rng());  // weights and where the run stands
    if (!o.steps && !o.epochs) cfg.train.steps = run.total_steps;
    if (cfg.train.steps != run.total_steps || cfg.train.batch != run.batch)
      std::fprintf(stderr, "note: the run was planned as %lld steps of batch %llu; its schedule changes\n",
                   (long long)run.total_steps, (unsigned long long)run.batch);
    model = vlm(cfg, vocabulary(class_names), o.seed);
  }
  // a resumed run keeps its own seed: the same samples
  std::optional<number_images> train_numbers;
  if (numbers) train_numbers.emplace(train_set, run.seed);
  auto make_number = [&](std::uint64_t g) {
    number_image im = (*train_numbers)(g);
    return made_sample{std::move(im.pixels), std::size_t(im.value)};
  };
  trainer tr = numbers ? trainer(model, make_number, number_images::rows, train_numbers->width(), run.seed, o.threads)
                       : trainer(model, train_set, run.seed, o.threads);
  if (tr.threads() < o.threads)
    std::fprintf(stderr, "note: %zu threads for batches of %zu samples: %zu of them have work\n", o.threads,
                 cfg.train.batch, tr.threads());
  if (resumed) {
    restore(*resumed, model, &tr.adam(), &run, &model.init_rng());
    tr.set_steps_done(run.step);
    run.total_steps = cfg.train.steps;
  }
  const std::string save = o.save.empty() ? "purevlm-" + cfg.preset + ".ckpt" : o.save;
  std::fprintf(stderr, "preset %s: %zu parameters, %lld steps of batch %zu, %zu thread(s)\n", cfg.preset.c_str(),
               model.parameter_count(), (long long)model.config().train.steps, cfg.train.batch, tr.threads());

  progress bar(model.config().train.steps, cfg.train.batch);
  bar.start_at(tr.steps_done());
  const auto start = clock_type::now();
  const std::int64_t first = tr.steps_done(), total = model.config().train.steps;
  std::int64_t saved_at = -1;  // the step this run last saved, if it did
  // the training log beside the checkpoint: a row of means every `every` steps (about 200 rows)
  pictures::log_writer log(pictures::log_path(save), resumed ? double(first) : -1.0);
  const std::int64_t every = std::max<std::int64_t>(1, total / 200);
  pictures::log_row sum;
  std::int64_t in_sum = 0;
  auto row_start = clock_type::now();
  while (tr.steps_done() < total) {
    const step_stats s = tr.step();
    sum.loss += s.loss; sum.text_loss += s.text_loss; sum.recon_loss += s.recon; ++in_sum;
    if (s.finite && (tr.steps_done() % every == 0 || tr.steps_done() == total)) {
      const auto now = clock_type::now();
      const double n = double(in_sum), secs = std::chrono::duration<double>(now - row_start).count();
      log.write({double(tr.steps_done()), sum.loss / n, sum.text_loss / n, sum.recon_loss / n, s.lr,
                 n * double(cfg.train.batch) / std::max(secs, 1e-9)});
      sum = {};
      in_sum = 0;
      row_start = now;
    }
    if (!s.finite) {
      std::string kept = "Nothing was saved.";
      if (saved_at >= 0) kept = "The last good checkpoint of this run, " + save + " (step " + std::to_string(saved_at) + "), is untouched.";
      else if (fs::exists(save)) kept = "This run saved nothing; " + save + " is from before it and is untouched.";
      std::fprintf(stderr, "\nstopped at step %lld: the loss or a parameter became NaN/Inf (lr %.3g). %s\n",
                   (long long)tr.steps_done(), s.lr, kept.c_str());
      return 3;
    }
    bar.update(tr.steps_done(), s.loss);
    if (tr.steps_done() % std::int64_t(o.save_every) == 0 || tr.steps_done() == total) {
      run.step = tr.steps_done();
      save_checkpoint(save, model, tr.adam(), model.init_rng(), run);
      saved_at = run.step;
    }
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  const double rate = double(total - first) * double(cfg.train.batch) / std::max(secs, 1e-9);
  std::fprintf(stderr, "trained in %.1f s (%.0f samples/s); saved %s\n", secs, rate, save.c_str());
  report r;
  if (numbers) {
    const numbers_report nr = evaluate_numbers(model, test_set, 0, false);
    r.n = nr.n;
    r.correct = nr.correct;
    r.invalid = nr.n - nr.valid;
  } else {
    r = evaluate(model, test_set, 0, 0, false, false);
  }
  log.write_accuracy(double(r.correct) / double(r.n));
  if (o.json) {
    std::map<std::string, std::string> f = {{"test_accuracy", std::to_string(double(r.correct) / double(r.n))},
                                            {"n_test", std::to_string(r.n)}, {"params", std::to_string(model.parameter_count())},
                                            {"train_seconds", std::to_string(secs)}, {"train_samples_per_second", std::to_string(rate)},
                                            {"preset", json_string(cfg.preset)}, {"invalid_words", std::to_string(r.invalid)},
                                            {"dataset", json_string(dataset)}, {"micros_per_image", std::to_string(r.micros_per_image)}};
    print_json(f);
  }
  return 0;
}

int eval(const options& o) {
  const vlm model = load_model(o.load);
  const std::string dataset = model.vocab().class_names() == fashion_mnist_class_names() ? "fashion" : "mnist";
  const labeled_images test_set = read_idx_split(find_data(o, dataset), "t10k");
  if (is_numbers_model(model)) {
    if (o.shift || o.constrained || !o.report.empty())
      throw usage_error("--shift, --constrained and --report are for the digits task; " + o.load + " reads numbers");
    const numbers_report r = evaluate_numbers(model, test_set, o.limit, false);
    if (o.json) {
      std::map<std::string, std::string> f = {{"test_accuracy", std::to_string(double(r.correct) / double(r.n))},
                                              {"n_test", std::to_string(r.n)}, {"params", std::to_string(model.parameter_count())},
                                              {"preset", json_string(model.config().preset)},
                                              {"valid_number_words", std::to_string(double(r.valid) / double(r.n))}};
      for (std::size_t d = 1; d <= 3; ++d)
        f["accuracy_" + std::to_string(d) + "_digits"] =
            std::to_string(r.n_by_digits[d] ? double(r.correct_by_digits[d]) / double(r.n_by_digits[d]) : 0.0);
      print_json(f);
    }
    return 0;
  }
  const report r = evaluate(model, test_set, o.limit, o.shift, o.constrained, false);
  if (!o.report.empty()) {
    write_report(o.report, o.load, model, test_set, r, o.shift);
    std::fprintf(stderr, "wrote %s\n", o.report.c_str());
  }
  if (o.json) {
    std::map<std::string, std::string> f = {{"test_accuracy", std::to_string(double(r.correct) / double(r.n))},
                                            {"n_test", std::to_string(r.n)}, {"params", std::to_string(model.parameter_count())},
                                            {"preset", json_string(model.config().preset)}, {"invalid_words", std::to_string(r.invalid)},
                                            {"micros_per_image", std::to_string(r.micros_per_image)},
                                            {"shift", std::to_string(o.shift)}};
    if (o.constrained) f["constrained_accuracy"] = std::to_string(double(r.constrained_correct) / double(r.n));
    print_json(f);
  }
  return 0;
}

int say(const options& o) {
  const vlm model = load_model(o.load);
  const auto& names = model.vocab().class_names();
  for (const auto& path : o.images) {
    const std::size_t cols = is_numbers_model(model) ? 84 : 28;  // a written number's canvas is 28x84
    const auto digit = mnist_style(read_image(path), cols);
    const reading r = model.read(std::span<const std::uint8_t>(digit), 28, cols);
    // the runner-up: the most probable class name other than the word written
    std::size_t second = names.size();
    for (std::size_t k = 0; k < names.size(); ++k)
      if (names[k] != r.word && (second == names.size() || r.class_probabilities[k] > r.class_probabilities[second])) second = k;
    const bool close = second < names.size() && r.class_probabilities[second] >= 0.25 * r.probability;
    if (o.json) {
      std::map<std::string, std::string> f = {{"image", json_string(path)}, {"word", json_string(r.word)},
                                              {"probability", std::to_string(r.probability)}};
      if (second < names.size()) {
        f["runner_up"] = json_string(names[second]);
        f["runner_up_probability"] = std::to_string(r.class_probabilities[second]);
      }
      std::string all = "{";
      for (std::size_t k = 0; k < names.size(); ++k)
        all += (k ? ", " : "") + json_string(names[k]) + ": " + std::to_string(r.class_probabilities[k]);
      f["class_probabilities"] = all + "}";
      print_json(f);
      continue;
    }
    char caption[256];
    std::snprintf(caption, sizeof caption, " (p = %.3f)", r.probability);
    std::string said = path + " → \"" + r.word + "\"" + caption;
    if (close) {
      std::snprintf(caption, sizeof caption, ", or \"%s\" (p = %.3f)", names[second].c_str(), r.class_probabilities[second]);
      said += caption;
    }
    std::printf("%s\n", ascii_art(digit, said, cols).c_str());
  }
  return 0;
}

int show(const options& o) {
  const vlm model = load_model(o.load);
  std::vector<float> x(model.config().pixels());
  std::string what;
  if (o.index) {
    const std::string dataset = model.vocab().class_names() == fashion_mnist_class_names() ? "fashion" : "mnist";
    const labeled_images test_set = read_idx_split(find_data(o, dataset), "t10k");
    if (is_numbers_model(model)) {  // test number N
      if (*o.index >= 10000) throw usage_error("--index " + std::to_string(*o.index) + ": the test set has 10000 numbers");
      const number_images make(test_set, numbers_test_seed);
      const number_image im = make(*o.index);
      prepare<float>(x, im.pixels, number_images::rows, make.width());
      what = "test number " + std::to_string(*o.index) + " (" + std::to_string(im.value) + ")";
    } else {
      if (*o.index >= test_set.size())
        throw usage_error("--index " + std::to_string(*o.index) + ": the test set has " + std::to_string(test_set.size()) + " images");
      prepare<float>(x, test_set.images.image(*o.index), test_set.images.rows, test_set.images.cols);
      what = "test image " + std::to_string(*o.index) + " (" + model.vocab().class_names()[test_set.labels[*o.index]] + ")";
    }
  } else {
    const std::size_t cols = is_numbers_model(model) ? 84 : 28;
    const auto digit = mnist_style(read_image(o.image), cols);
    prepare<float>(x, std::span<const std::uint8_t>(digit), 28, cols);
    what = o.image;
  }
  fs::create_directories(o.out);
  const auto tr = model.trace(x);
  const auto& pc = model.config().patches;
  const bool patches = model.config().vision == vision_mode::patches;
  const std::size_t rows = patches ? pc.side : std::size_t(std::lround(std::sqrt(double(x.size())))),
                    cols = patches ? pc.image_cols() : rows;
  write_text(o.out + "/input.svg", pictures::input_picture(x, rows, cols));
  write_text(o.out + "/attention.svg", pictures::attention_picture(model, x, tr));
  write_text(o.out + "/filters.svg", pictures::filter_picture(model));
  const auto log = pictures::read_log(pictures::log_path(o.load));
  write_text(o.out + "/curve.svg", pictures::curve_picture(log));
  std::printf("%s → \"%s\"\nwrote %s/input.svg, attention.svg, filters.svg, curve.svg%s\n", what.c_str(), tr.word.c_str(),
              o.out.c_str(), log.empty() ? (" (no training log at " + pictures::log_path(o.load) + ": the curve says so)").c_str() : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    if (o.help) {
      std::printf("%s", o.command.empty() || !help_text.count(o.command) ? general_help().c_str() : help_text.at(o.command).c_str());
      return 0;
    }
    if (o.command == "train") return train(o);
    if (o.command == "eval") return eval(o);
    if (o.command == "show") return show(o);
    return say(o);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "mnist_vlm: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_vlm: error: %s\n", e.what());
    return 1;
  }
}

// SPDX-License-Identifier: MIT
// pictures.hpp: what mnist_vlm draws — the image as the model sees it, where it looks while it
// writes each letter, the tokenizer's filters, the training curve, and one report page. SVG is
// text, so this needs nothing but the standard library; the model only supplies numbers
// (vlm::trace, the parameters, the training log). Part of the example, not of the library.
#pragma once

#include <purevlm/vlm.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace pictures {

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}
inline std::string num(double v, int digits = 2) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
inline std::string rgb(double r, double g, double b) {
  auto c = [](double v) { return int(std::lround(255 * std::clamp(v, 0.0, 1.0))); };
  char s[8];
  std::snprintf(s, sizeof s, "#%02x%02x%02x", c(r), c(g), c(b));
  return s;
}
inline std::string gray(double v) { return rgb(v, v, v); }
// -1 → blue, 0 → white, +1 → red
inline std::string signed_colour(double v) {
  v = std::clamp(v, -1.0, 1.0);
  return v >= 0 ? rgb(1, 1 - v, 1 - v) : rgb(1 + v, 1 + v, 1);
}

// One SVG picture, built up element by element in user units.
class svg {
public:
  svg(double width, double height) : w_(width), h_(height) {}
  svg& rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra = "") {
    body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
             "\" fill=\"" + fill + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
    return *this;
  }
  svg& text(double x, double y, const std::string& s, double size = 12, const std::string& anchor = "start") {
    body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size, 1) +
             "\" font-family=\"sans-serif\" text-anchor=\"" + anchor + "\">" + escape(s) + "</text>\n";
    return *this;
  }
  svg& line(double x1, double y1, double x2, double y2, const std::string& stroke = "#444", double width = 1) {
    body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
             "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width, 1) + "\"/>\n";
    return *this;
  }
  svg& polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke, double width = 1.5) {
    body_ += "<polyline fill=\"none\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width, 1) + "\" points=\"";
    for (const auto& [x, y] : pts) body_ += num(x) + "," + num(y) + " ";
    body_ += "\"/>\n";
    return *this;
  }
  svg& open_group(const std::string& attributes) { body_ += "<g " + attributes + ">\n"; return *this; }
  svg& close_group() { body_ += "</g>\n"; return *this; }
  std::string str() const {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w_, 0) + "\" height=\"" + num(h_, 0) +
           "\" viewBox=\"0 0 " + num(w_, 0) + " " + num(h_, 0) + "\" shape-rendering=\"crispEdges\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" +
           body_ + "</svg>\n";
  }

private:
  double w_, h_;
  std::string body_;
};

// A rows×cols grey image at (x, y), `scale` units per pixel, its values stretched from their
// minimum (black) to their maximum (white), or from lo to hi when given.
inline void draw_image(svg& s, double x, double y, std::span<const float> v, std::size_t rows, std::size_t cols, double scale,
                       double lo = NAN, double hi = NAN) {
  if (std::isnan(lo)) {
    const auto [a, b] = std::minmax_element(v.begin(), v.end());
    lo = *a;
    hi = *b;
  }
  const double range = std::max(1e-6, hi - lo);
  s.rect(x, y, double(cols) * scale, double(rows) * scale, gray(0));  // then only the pixels above black
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      if (const double g = (v[r * cols + c] - lo) / range; g >= 0.5 / 255)
        s.rect(x + double(c) * scale, y + double(r) * scale, scale, scale, gray(g));
}

// The prepared image, enlarged.
inline std::string input_picture(std::span<const float> x, std::size_t rows, std::size_t cols) {
  const double scale = 240.0 / double(rows);
  svg s(std::max(300.0, 20 + double(cols) * scale), 280);
  draw_image(s, 10, 30, x, rows, cols, scale);
  s.text(10, 20, "the input as the model sees it (" + std::to_string(rows) + "x" + std::to_string(cols) + ")", 13);
  return s.str();
}

// Where the model looks while it writes: one row per letter, one panel per head and one for their
// mean. Vision tokens of the patch model are drawn over the image where they look (a cell one
// token step wide at the centre of what each sees, orange as deep as its weight); positions that
// are not image regions (the seed's vision positions, BOS, the letters before) are cells of a
// strip under it. Each drawn cell carries its weight (data-weight), so the drawn weights of a
// panel sum to 1, as attention's do.
inline std::string attention_picture(const purevlm::vlm& model, std::span<const float> x, const purevlm::vlm::attention_trace& tr) {
  const auto& cfg = model.config();
  const bool regions = cfg.vision == purevlm::vision_mode::patches;
  const std::size_t rows = regions ? cfg.patches.side : 14, cols = regions ? cfg.patches.image_cols() : 14;
  const std::size_t L = tr.layers, H = tr.heads, P = tr.positions;
  const double img = 150, img_w = img * double(cols) / double(rows), pad = 16, strip_h = 16, panel_w = img_w + pad,
               panel_h = img + strip_h + 44;
  const std::size_t panels = H + 1;
  svg s(pad + double(panels) * panel_w, 40 + double(std::max<std::size_t>(1, tr.letters.size())) * panel_h);
  s.text(pad, 22, "\"" + tr.word + "\": attention of each letter's step (last layer), per head and their mean", 14);
  const double scale = img / double(rows);
  const auto foot = cfg.patches.token_footprint();
  const std::size_t grid = regions ? cfg.patches.grid_cols() : 0;  // tokens are row-major over the grid
  const std::size_t strip_first = regions ? cfg.vision_positions : 0;  // positions drawn in the strip
  for (std::size_t j = 0; j < tr.letters.size(); ++j) {
    const auto& a = tr.letters[j];
    const double y0 = 40 + double(j) * panel_h;
    const std::size_t seen = tr.vision_positions + 1 + j;
    for (std::size_t p = 0; p < panels; ++p) {
      std::vector<double> w(P, 0.0);  // this panel's weights over the positions
      for (std::size_t h = 0; h < H; ++h)
        if (p == H || p == h)
          for (std::size_t t = 0; t < P; ++t) w[t] += a.weights[((L - 1) * H + h) * P + t] / (p == H ? double(H) : 1.0);
      const double x0 = pad + double(p) * panel_w, top = y0 + 18;
      s.text(x0, y0 + 12, "'" + a.letter + "' p=" + num(a.probability, 3) + (p == H ? "  mean" : "  head " + std::to_string(p)), 11);
      s.open_group("class=\"panel\" data-letter=\"" + escape(a.letter) + "\" data-head=\"" + (p == H ? std::string("mean") : std::to_string(p)) + "\"");
      const double wmax = std::max(1e-9, *std::max_element(w.begin(), w.end()));
      if (regions) {
        draw_image(s, x0, top, x, rows, cols, scale);
        for (std::size_t t = 0; t < cfg.vision_positions; ++t) {
          const double cx = foot.first + foot.step * double(t % grid), cy = foot.first + foot.step * double(t / grid);
          const double half = foot.step / 2;
          s.rect(x0 + (cx - half + 0.5) * scale, top + (cy - half + 0.5) * scale, foot.step * scale, foot.step * scale, "#ff7f0e",
                 "fill-opacity=\"" + num(0.85 * w[t] / wmax, 3) + "\" data-weight=\"" + num(w[t], 6) + "\"");
        }
      } else {
        s.rect(x0, top, img_w, img, "#f4f4f4");
        s.text(x0 + img_w / 2, top + img / 2, "no image regions", 10, "middle");
      }
      const std::size_t cells = seen - strip_first;
      const double cw = img_w / double(std::max<std::size_t>(cells, 1));
      for (std::size_t t = strip_first; t < seen; ++t)
        s.rect(x0 + double(t - strip_first) * cw, top + img + 4, cw, strip_h - 4, "#1f77b4",
               "fill-opacity=\"" + num(0.1 + 0.9 * w[t] / wmax, 3) + "\" data-weight=\"" + num(w[t], 6) + "\"");
      s.close_group();
      double text_share = 0;
      for (std::size_t t = cfg.vision_positions; t < seen; ++t) text_share += w[t];
      s.text(x0, top + img + strip_h + 12, (regions ? "text " : "strip: vision, text; text ") + num(100 * text_share, 0) + "%", 9);
    }
  }
  return s.str();
}

// The tokenizer's filters as tiles, each matrix on its own signed scale (blue < 0 < red): every
// patch layer's kernels, L and R of every channel (a layer over Cin channels: its K×K slices side
// by side, one per input channel), or each row of the global tokenizer's projections as a
// side×side image.
inline std::string filter_picture(const purevlm::vlm& model) {
  struct tile_set {
    std::string name;
    std::size_t count, rows, cols;
    std::vector<float> values;  // count tiles of rows × cols
  };
  std::vector<tile_set> sets;
  const auto& ps = model.parameters();
  const auto& cfg = model.config();
  for (std::size_t i = 0; i < ps.entries().size(); ++i) {
    const auto& e = ps.entries()[i];
    const auto v = ps.value(i);
    if (cfg.vision == purevlm::vision_mode::patches) {
      for (std::size_t l = 0, in = 1; l < cfg.patches.layers.size(); in = cfg.patches.layers[l++].channels) {
        if (e.name != "patch" + std::to_string(l) + "_l" && e.name != "patch" + std::to_string(l) + "_r") continue;
        const std::size_t k = cfg.patches.layers[l].kernel;
        tile_set t{e.name + " (" + std::to_string(e.rows) + " kernels of " + std::to_string(k) + "x" + std::to_string(k) +
                       (in > 1 ? " over " + std::to_string(in) + " channels, side by side" : std::string()) + ")",
                   e.rows, k, k * in, std::vector<float>(v.size())};
        for (std::size_t o = 0; o < e.rows; ++o)  // columns are (ky, kx, c): tile column c·K + kx, row ky
          for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx)
              for (std::size_t c = 0; c < in; ++c)
                t.values[o * k * k * in + ky * k * in + c * k + kx] = v[o * e.cols + (ky * k + kx) * in + c];
        sets.push_back(std::move(t));
      }
    } else if (model.is_tokenizer_parameter(i) && e.cols == cfg.tokenizer.pixels) {
      const std::size_t side = std::size_t(std::lround(std::sqrt(double(e.cols))));
      sets.push_back({e.name, e.rows, side, side, {v.begin(), v.end()}});
    }
  }
  const double px_max = 7, width = 500;
  double height = 30;
  auto layout = [&](const tile_set& t) {  // pixel size, tiles per row
    const double px = std::min(px_max, 36.0 / double(t.rows));
    const std::size_t per_row = std::max<std::size_t>(1, std::size_t(width / (double(t.cols) * px + 4)));
    return std::pair{px, per_row};
  };
  for (const auto& t : sets) {
    const auto [px, per_row] = layout(t);
    height += 24 + std::ceil(double(t.count) / double(per_row)) * (double(t.rows) * px + 4);
  }
  svg s(width + 20, height);
  s.text(10, 20, "tokenizer filters (each matrix on its own scale: blue negative, white 0, red positive)", 12);
  double y = 30;
  for (const auto& t : sets) {
    const auto [px, per_row] = layout(t);
    s.text(10, y + 16, t.name, 12);
    y += 24;
    float amax = 1e-9f;
    for (float v : t.values) amax = std::max(amax, std::abs(v));
    for (std::size_t f = 0; f < t.count; ++f) {
      const double x0 = 10 + double(f % per_row) * (double(t.cols) * px + 4), y0 = y + double(f / per_row) * (double(t.rows) * px + 4);
      for (std::size_t r = 0; r < t.rows; ++r)
        for (std::size_t c = 0; c < t.cols; ++c)
          s.rect(x0 + double(c) * px, y0 + double(r) * px, px, px, signed_colour(t.values[(f * t.rows + r) * t.cols + c] / amax));
    }
    y += std::ceil(double(t.count) / double(per_row)) * (double(t.rows) * px + 4);
  }
  return s.str();
}

// ---- the training log: step,loss,text_loss,recon_loss,lr,samples_per_s,test_accuracy ----
struct log_row {
  double step = 0, loss = 0, text_loss = 0, recon_loss = 0, lr = 0, samples_per_s = 0;
  double test_accuracy = -1;  // −1: not evaluated at this row
};
inline const char* log_header = "step,loss,text_loss,recon_loss,lr,samples_per_s,test_accuracy";
// The log beside a checkpoint: x.ckpt → x.log.csv (any other name: name + ".log.csv").
inline std::string log_path(const std::string& checkpoint) {
  const std::string ext = ".ckpt";
  if (checkpoint.size() > ext.size() && checkpoint.ends_with(ext))
    return checkpoint.substr(0, checkpoint.size() - ext.size()) + ".log.csv";
  return checkpoint + ".log.csv";
}
// Rows of a log, or none when there is no file. A malformed line is an error naming it.
inline std::vector<log_row> read_log(const std::string& path) {
  std::ifstream in(path);
  std::vector<log_row> rows;
  if (!in) return rows;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 || line.empty()) continue;
    log_row r;
    std::string acc;
    std::istringstream ls(line);
    char c1, c2, c3, c4, c5, c6;
    if (!(ls >> r.step >> c1 >> r.loss >> c2 >> r.text_loss >> c3 >> r.recon_loss >> c4 >> r.lr >> c5 >> r.samples_per_s >> c6) ||
        c1 != ',' || c2 != ',' || c3 != ',' || c4 != ',' || c5 != ',' || c6 != ',')
      throw purevlm::error(path + ":" + std::to_string(n) + ": not a training log row: '" + line + "'");
    if (ls >> acc && !acc.empty()) r.test_accuracy = std::stod(acc);
    rows.push_back(r);
  }
  return rows;
}

// Writes the log as training goes, a row at a time (flushed, so a stopped run keeps its rows).
// A resumed run keeps the rows up to the step it resumes from and continues after them.
class log_writer {
public:
  log_writer(const std::string& path, double keep_until) : path_(path) {
    const auto kept = read_log(path);
    out_.open(path, std::ios::trunc);
    out_ << log_header << '\n';
    for (const auto& r : kept)
      if (r.step <= keep_until) write(r);
    if (!out_) throw purevlm::error("cannot write the training log " + path);
  }
  void write(const log_row& r) {
    last_ = r;
    out_ << num(r.step, 0) << ',' << num(r.loss, 6) << ',' << num(r.text_loss, 6) << ',' << num(r.recon_loss, 6) << ','
         << r.lr << ',' << num(r.samples_per_s, 0) << ',' << (r.test_accuracy >= 0 ? num(r.test_accuracy, 6) : "") << '\n';
    out_.flush();
  }
  // The test accuracy, on a copy of the last row (nothing when no row was written).
  void write_accuracy(double accuracy) {
    if (!last_) return;
    log_row r = *last_;
    r.test_accuracy = accuracy;
    write(r);
  }

private:
  std::string path_;
  std::ofstream out_;
  std::optional<log_row> last_;
};

// Loss (total and text, log scale) against step, and the test accuracy where it was measured.
inline std::string curve_picture(const std::vector<log_row>& rows) {
  const double W = 560, Hh = 300, left = 60, right = 60, top = 30, bottom = 50;
  svg s(W, Hh);
  s.text(W / 2, 18, "training curve", 13, "middle");
  if (rows.empty()) {
    s.text(W / 2, Hh / 2, "no training log", 12, "middle");
    return s.str();
  }
  double smax = 1, lmax = 1e-9, lmin = 1e9;
  for (const auto& r : rows) {
    smax = std::max(smax, r.step);
    for (double v : {r.loss, r.text_loss})
      if (v > 0) { lmax = std::max(lmax, v); lmin = std::min(lmin, v); }
  }
  const double hi = std::ceil(std::log10(lmax)), lo = std::min(hi - 1, std::floor(std::log10(std::min(lmin, lmax))));
  const double pw = W - left - right, ph = Hh - top - bottom;
  auto X = [&](double step) { return left + pw * step / smax; };
  auto Y = [&](double loss) { return top + ph * (hi - std::log10(std::max(loss, std::pow(10.0, lo)))) / (hi - lo); };
  s.line(left, top, left, top + ph).line(left, top + ph, left + pw, top + ph).line(left + pw, top, left + pw, top + ph);
  for (double e = lo; e <= hi; ++e) {
    const double yy = Y(std::pow(10.0, e));
    s.line(left - 4, yy, left, yy).text(left - 6, yy + 4, e >= 0 ? num(std::pow(10.0, e), 0) : num(std::pow(10.0, e), int(-e)), 10, "end");
  }
  for (int i = 0; i <= 4; ++i) {
    const double yy = top + ph * (1 - i / 4.0);
    s.line(left + pw, yy, left + pw + 4, yy).text(left + pw + 6, yy + 4, num(100.0 * i / 4, 0) + "%", 10);
    const double st = smax * i / 4;
    s.line(X(st), top + ph, X(st), top + ph + 4).text(X(st), top + ph + 16, num(st, 0), 10, "middle");
  }
  s.text(left + pw / 2, Hh - 10, "step", 12, "middle");
  s.text(14, top - 8, "loss (log scale)", 12).text(W - 14, top - 8, "accuracy", 12, "end");
  std::vector<std::pair<double, double>> loss, text;
  for (const auto& r : rows) { loss.push_back({X(r.step), Y(r.loss)}); text.push_back({X(r.step), Y(r.text_loss)}); }
  s.polyline(loss, "#1f77b4").polyline(text, "#2ca02c", 1);
  for (const auto& r : rows)
    if (r.test_accuracy >= 0) {
      const double yy = top + ph * (1 - r.test_accuracy);
      s.rect(X(r.step) - 4, yy - 4, 8, 8, "#d62728").text(X(r.step) - 8, yy - 8, num(100 * r.test_accuracy, 2) + "%", 10, "end");
    }
  s.line(left + 10, top + 10, left + 30, top + 10, "#1f77b4", 2).text(left + 34, top + 14, "loss", 10);
  s.line(left + 80, top + 10, left + 100, top + 10, "#2ca02c", 2).text(left + 104, top + 14, "text loss", 10);
  s.rect(left + 170, top + 6, 8, 8, "#d62728").text(left + 182, top + 14, "test accuracy", 10);
  return s.str();
}

// Per-class accuracy as horizontal bars.
inline std::string class_bars(const std::vector<std::string>& names, const std::vector<double>& accuracy) {
  const double row = 20, left = 110, width = 300;
  svg s(left + width + 70, 20 + row * double(names.size()));
  for (std::size_t k = 0; k < names.size(); ++k) {
    const double y = 10 + row * double(k);
    s.text(left - 6, y + 13, names[k], 11, "end");
    s.rect(left, y + 2, width, row - 6, "#eeeeee").rect(left, y + 2, width * accuracy[k], row - 6, "#1f77b4");
    s.text(left + width + 6, y + 13, num(100 * accuracy[k], 2) + "%", 11);
  }
  return s.str();
}

// The confusion matrix as a heat map: rows true class, columns the word written ('?': not a
// class name); each row's shade relative to its count, numbers printed.
inline std::string confusion_map(const std::vector<std::string>& names, const std::vector<std::vector<std::size_t>>& confusion) {
  const std::size_t K = names.size();
  const double cell = 34, left = 100, top = 70;
  svg s(left + cell * double(K + 1) + 10, top + cell * double(K) + 10);
  s.text(left, 14, "rows: true class; columns: word written ('?' not a class name)", 11);
  for (std::size_t c = 0; c <= K; ++c) {
    const double x = left + cell * double(c) + cell / 2;
    s.text(x, top - 8, c < K ? names[c].substr(0, 5) : "?", 10, "middle");
  }
  for (std::size_t r = 0; r < K; ++r) {
    std::size_t total = 0;
    for (auto v : confusion[r]) total += v;
    s.text(left - 6, top + cell * double(r) + cell / 2 + 4, names[r], 11, "end");
    for (std::size_t c = 0; c <= K; ++c) {
      const double share = total ? double(confusion[r][c]) / double(total) : 0;
      const double shade = confusion[r][c] ? 0.15 + 0.85 * std::sqrt(share) : 0;
      s.rect(left + cell * double(c), top + cell * double(r), cell - 1, cell - 1, r == c ? rgb(1 - 0.9 * shade, 1 - 0.5 * shade, 1 - 0.9 * shade) : rgb(1, 1 - 0.8 * shade, 1 - 0.8 * shade));
      if (confusion[r][c]) s.text(left + cell * double(c) + cell / 2, top + cell * double(r) + cell / 2 + 4, std::to_string(confusion[r][c]), 10, "middle");
    }
  }
  return s.str();
}

// One raw 28x28 test digit (light ink on black, as MNIST stores it) with a caption.
inline std::string digit_picture(std::span<const std::uint8_t> img, const std::string& top, const std::string& bottom) {
  svg s(120, 150);
  const std::vector<float> v(img.begin(), img.end());
  draw_image(s, 4, 18, v, 28, 28, 4, 0, 255);
  s.text(4, 12, top, 11).text(4, 146, bottom, 11);
  return s.str();
}

}  // namespace pictures

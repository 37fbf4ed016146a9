// SPDX-License-Identifier: MIT
// data/image.hpp: from pixels to the model's input. prepare() is SPEC.md's preparation (scale to
// [0,1], 2x2 average pool 28x28 → 14x14, L2-normalise); shift_image() is the translation used for
// augmentation; read_pgm() reads P2/P5 files and mnist_style() turns a user's picture into an
// MNIST-like 28x28 digit (ink made light-on-dark, cropped, scaled into 20x20, centred by mass).
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../tensor.hpp"
#include "optional.hpp"

#if defined(PUREVLM_HAS_PNG)
#include <png.h>
#endif

namespace purevlm {

// img[rows·cols] (uint8) → out: /255, 2x2 mean when out is [(rows/2)·(cols/2)] (SPEC.md's 14x14)
// or as is when out is [rows·cols], then x / (‖x‖ + 1e-8).
template <std::floating_point T>
void prepare(std::span<T> out, std::span<const std::uint8_t> img, std::size_t rows = 28, std::size_t cols = 28) {
  const std::size_t f = out.size() == rows * cols ? 1 : 2;  // the pooling factor
  if (img.size() != rows * cols || out.size() != (rows / f) * (cols / f))
    throw error("prepare: image of " + std::to_string(img.size()) + " pixels as " + std::to_string(rows) + "x" +
                std::to_string(cols) + " into " + std::to_string(out.size()) + " values");
  const std::size_t oc = cols / f;
  T norm2 = 0;
  for (std::size_t r = 0; r < rows / f; ++r)
    for (std::size_t c = 0; c < oc; ++c) {
      const std::size_t a = f * r * cols + f * c;
      const T v = f == 1 ? T(img[a]) / T(255)
                         : (T(img[a]) / T(255) + T(img[a + 1]) / T(255) + T(img[a + cols]) / T(255) + T(img[a + cols + 1]) / T(255)) / T(4);
      out[r * oc + c] = v;
      norm2 += v * v;
    }
  const T inv = T(1) / (std::sqrt(norm2) + T(1e-8));
  for (T& v : out) v *= inv;
}

// out = img moved by (dx, dy) pixels (positive: right, down), zeros shifted in.
inline void shift_image(std::span<std::uint8_t> out, std::span<const std::uint8_t> img, int dx, int dy,
                        std::size_t rows = 28, std::size_t cols = 28) {
  std::fill(out.begin(), out.end(), std::uint8_t(0));
  for (std::size_t r = 0; r < rows; ++r) {
    const long sr = long(r) - dy;
    if (sr < 0 || sr >= long(rows)) continue;
    for (std::size_t c = 0; c < cols; ++c) {
      const long sc = long(c) - dx;
      if (sc >= 0 && sc < long(cols)) out[r * cols + c] = img[std::size_t(sr) * cols + std::size_t(sc)];
    }
  }
}

// The move `eval --shift P` gives test image `index`: P pixels in one of the 8 directions
// (N, NE, E, …), picked by a fixed hash of the index, so every run moves every image the same way.
inline std::pair<int, int> test_shift(std::size_t index, int P) {
  static constexpr int dirs[8][2] = {{0, -1}, {1, -1}, {1, 0}, {1, 1}, {0, 1}, {-1, 1}, {-1, 0}, {-1, -1}};
  std::uint64_t h = (std::uint64_t(index) + 1) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 31;
  const int* d = dirs[(h * 0xbf58476d1ce4e5b9ull) >> 61];  // the top 3 bits: one of 8
  return {d[0] * P, d[1] * P};
}

struct gray_image {
  std::size_t width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0..255
};

// PGM, plain (P2) or binary (P5), maxval up to 65535 (rescaled to 0..255); '#' comments allowed.
inline gray_image read_pgm(std::istream& in, const std::string& name, std::size_t max_side = 16384) {
  auto fail = [&](const std::string& what) -> gray_image {
    const auto at = in.tellg();
    throw error(name + ": " + what + (at >= 0 ? " (near byte offset " + std::to_string(std::streamoff(at)) + ")" : ""));
  };
  auto number = [&](const char* what) -> long {
    for (;;) {  // skip white space and comments
      const int c = in.peek();
      if (c == '#') { std::string skip; std::getline(in, skip); }
      else if (c != EOF && std::isspace(c)) in.get();
      else break;
    }
    long v = -1;
    if (!(in >> v) || v < 0) fail(std::string("malformed PGM: expected ") + what);
    return v;
  };
  char magic[2] = {};
  if (!in.read(magic, 2) || magic[0] != 'P' || (magic[1] != '2' && magic[1] != '5'))
    fail("not a PGM file: expected P2 or P5 at offset 0");
  if (const int c = in.peek(); c == EOF || !std::isspace(c)) fail("malformed PGM: no white space after the magic P" + std::string(1, magic[1]));
  gray_image img;
  const long w = number("a width"), h = number("a height"), maxval = number("a maximum value");
  if (w <= 0 || h <= 0 || std::size_t(w) > max_side || std::size_t(h) > max_side)
    fail("absurd PGM size " + std::to_string(w) + "x" + std::to_string(h));
  if (maxval <= 0 || maxval > 65535) fail("PGM maximum value " + std::to_string(maxval) + " is outside 1..65535");
  img.width = std::size_t(w);
  img.height = std::size_t(h);
  const std::size_t n = img.width * img.height;
  // pixels are appended as they are read, so memory follows the bytes that exist, never the
  // size the header claims
  auto store = [&](long v) {
    if (v > maxval) fail("pixel " + std::to_string(img.pixels.size()) + " is " + std::to_string(v) + ", above the maximum " + std::to_string(maxval));
    img.pixels.push_back(std::uint8_t((v * 255 + maxval / 2) / maxval));
  };
  if (magic[1] == '2') {
    while (img.pixels.size() < n) store(number("a pixel value"));
  } else {
    in.get();  // the single white-space byte after maxval
    const std::size_t bpp = maxval > 255 ? 2 : 1;
    unsigned char raw[4096];
    while (img.pixels.size() < n) {
      const std::size_t want = std::min(sizeof raw / bpp, n - img.pixels.size()) * bpp;
      if (!in.read(reinterpret_cast<char*>(raw), std::streamsize(want)))
        fail("truncated PGM: " + std::to_string(n * bpp) + " pixel bytes expected, " +
             std::to_string(img.pixels.size() * bpp + std::size_t(in.gcount())) + " found");
      for (std::size_t i = 0; i < want; i += bpp) store(bpp == 1 ? long(raw[i]) : long(raw[i]) * 256 + raw[i + 1]);
    }
  }
  return img;
}
inline gray_image read_pgm(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  return read_pgm(f, path);
}

inline namespace PUREVLM_IO_NAMESPACE {  // with or without libpng: see optional.hpp
// A picture file: PGM (P2/P5) always; PNG — grey, RGB or palette, with or without alpha, 8 or 16
// bits — when the program defines PUREVLM_HAS_PNG and links libpng (never a decoder of our own).
// Colours become grey; transparent parts become white paper. At most max_pixels are decoded.
inline gray_image read_image(const std::string& path, [[maybe_unused]] std::size_t max_pixels = std::size_t(1) << 25) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  char sig[8] = {};
  f.read(sig, 8);
  if (f.gcount() < 8 || std::memcmp(sig, "\x89PNG\r\n\x1a\n", 8) != 0) {
    f.clear();
    f.seekg(0);
    return read_pgm(f, path);
  }
#if defined(PUREVLM_HAS_PNG)
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) throw error(path + ": unreadable PNG: " + png.message);
  if (std::size_t(png.width) * png.height > max_pixels) {
    const std::string size = std::to_string(png.width) + "x" + std::to_string(png.height);
    png_image_free(&png);
    throw error(path + ": PNG of " + size + " pixels, more than the " + std::to_string(max_pixels) + " read");
  }
  // libpng converts every colour type to grey (and alpha). 16-bit files come out as 16-bit
  // values and alpha is left to us, so neither goes through libpng's linear-light conversions:
  // the picture keeps the values its file holds, and transparent paper turns white, not black.
  const bool wide = png.format & PNG_FORMAT_FLAG_LINEAR, alpha = png.format & PNG_FORMAT_FLAG_ALPHA;
  png.format = wide ? (alpha ? PNG_FORMAT_LINEAR_Y_ALPHA : PNG_FORMAT_LINEAR_Y) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  const std::size_t n = std::size_t(png.width) * png.height, channels = alpha ? 2 : 1;
  std::vector<std::uint16_t> wide_buf(wide ? n * channels : 0);
  std::vector<std::uint8_t> byte_buf(wide ? 0 : n * channels);
  void* buf = wide ? static_cast<void*>(wide_buf.data()) : static_cast<void*>(byte_buf.data());
  if (!png_image_finish_read(&png, nullptr, buf, 0, nullptr)) throw error(path + ": corrupt PNG: " + png.message);
  gray_image out{.width = png.width, .height = png.height, .pixels = std::vector<std::uint8_t>(n)};
  const double top = wide ? 65535.0 : 255.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = wide ? wide_buf[i * channels] : byte_buf[i * channels];
    const double a = alpha ? (wide ? wide_buf[i * 2 + 1] : byte_buf[i * 2 + 1]) / top : 1.0;
    const double ink = wide ? v : v * a;  // 16-bit grey comes premultiplied by alpha, 8-bit does not
    out.pixels[i] = std::uint8_t(std::lround((ink + top * (1 - a)) / top * 255.0));  // onto white paper
  }
  return out;
#else
  throw error(path + ": is a PNG, and this program was built without libpng. HINT: convert it to PGM "
                     "(convert picture.png picture.pgm), or install libpng (Debian: libpng-dev) and rebuild");
#endif
}
}  // inline namespace PUREVLM_IO_NAMESPACE

// A picture of one digit → MNIST's 28x28 convention: light ink on black, the ink's bounding box
// scaled (area-averaged) so its longer side is 20 pixels, placed so its centre of mass is at the
// centre. Dark-on-light pictures (a light border) are inverted first. With cols > 28 (a written
// number: 84), the canvas is 28 x cols and the ink 20 pixels tall, or cols − 8 wide if narrower.
inline std::vector<std::uint8_t> mnist_style(const gray_image& img, std::size_t cols = 28) {
  const std::size_t W = img.width, H = img.height;
  if (W == 0 || H == 0 || img.pixels.size() != W * H) throw error("mnist_style: empty or inconsistent image");
  double border = 0;
  for (std::size_t x = 0; x < W; ++x) border += img.pixels[x] + img.pixels[(H - 1) * W + x];
  for (std::size_t y = 0; y < H; ++y) border += img.pixels[y * W] + img.pixels[y * W + W - 1];
  const bool invert = border / double(2 * (W + H)) > 127.5;
  std::vector<float> ink(W * H);  // floats: a picture may be large, and 8-bit ink needs no more
  for (std::size_t i = 0; i < ink.size(); ++i) ink[i] = float(invert ? 255 - img.pixels[i] : img.pixels[i]) / 255.0f;
  // bounding box of pixels clearly above the background
  std::size_t x0 = W, x1 = 0, y0 = H, y1 = 0;
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x)
      if (ink[y * W + x] > 0.25) { x0 = std::min(x0, x); x1 = std::max(x1, x); y0 = std::min(y0, y); y1 = std::max(y1, y); }
  if (cols < 28) throw error("mnist_style: a canvas of 28x" + std::to_string(cols) + " is narrower than a digit");
  std::vector<std::uint8_t> out(28 * cols, 0);
  if (x0 > x1) return out;  // blank picture: a blank digit
  const double bw = double(x1 - x0 + 1), bh = double(y1 - y0 + 1), s = std::min(20.0 / bh, double(cols - 8) / bw);
  const std::size_t nw = std::max<std::size_t>(1, std::size_t(std::lround(bw * s))),
                    nh = std::max<std::size_t>(1, std::size_t(std::lround(bh * s)));
  // area-average resample of the box into nw x nh
  std::vector<double> box(nw * nh, 0.0);
  for (std::size_t y = 0; y < nh; ++y)
    for (std::size_t x = 0; x < nw; ++x) {
      const double sx0 = x0 + x / s, sx1 = x0 + (x + 1) / s, sy0 = y0 + y / s, sy1 = y0 + (y + 1) / s;
      double sum = 0, area = 0;
      for (std::size_t py = std::size_t(sy0); py < std::min<double>(double(H), std::ceil(sy1)); ++py)
        for (std::size_t px = std::size_t(sx0); px < std::min<double>(double(W), std::ceil(sx1)); ++px) {
          const double a = (std::min(sx1, px + 1.0) - std::max(sx0, double(px))) * (std::min(sy1, py + 1.0) - std::max(sy0, double(py)));
          if (a > 0) { sum += a * ink[py * W + px]; area += a; }
        }
      box[y * nw + x] = area > 0 ? sum / area : 0;
    }
  double mass = 0, cx = 0, cy = 0;
  for (std::size_t y = 0; y < nh; ++y)
    for (std::size_t x = 0; x < nw; ++x) { mass += box[y * nw + x]; cx += x * box[y * nw + x]; cy += y * box[y * nw + x]; }
  const long ox = long(cols / 2) - std::lround(mass > 0 ? cx / mass + 0.5 : nw / 2.0),
             oy = 14 - std::lround(mass > 0 ? cy / mass + 0.5 : nh / 2.0);
  for (std::size_t y = 0; y < nh; ++y)
    for (std::size_t x = 0; x < nw; ++x) {
      const long tx = long(x) + ox, ty = long(y) + oy;
      if (tx >= 0 && tx < long(cols) && ty >= 0 && ty < 28)
        out[std::size_t(ty) * cols + std::size_t(tx)] = std::uint8_t(std::lround(std::clamp(box[y * nw + x], 0.0, 1.0) * 255));
    }
  return out;
}

}  // namespace purevlm

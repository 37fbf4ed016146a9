// SPDX-License-Identifier: MIT
// data/numbers.hpp: the numbers task's data — whole numbers 0..999 written in English words, and
// images of them made of MNIST digits side by side.
//
// Spelling (one per number, no "and"): 0..19 by name ("zero" … "nineteen"); tens "twenty" …
// "ninety", with a hyphen before a unit ("forty-two"); hundreds "<unit> hundred", then a space and
// the rest when it is not zero ("three hundred", "seven hundred five", "nine hundred ninety-nine").
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idx.hpp"

namespace purevlm {

namespace detail {
inline const std::array<const char*, 20>& small_number_names() {
  static const std::array<const char*, 20> n = {"zero",    "one",     "two",       "three",    "four",
                                                "five",    "six",     "seven",     "eight",    "nine",
                                                "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                                "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  return n;
}
inline const std::array<const char*, 10>& tens_names() {
  static const std::array<const char*, 10> n = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  return n;
}
}  // namespace detail

// 42 → "forty-two"; n must be in 0..999.
inline std::string number_words(int n) {
  if (n < 0 || n > 999) throw error("number_words: " + std::to_string(n) + " is not in 0..999");
  auto below_hundred = [](int k) {
    if (k < 20) return std::string(detail::small_number_names()[std::size_t(k)]);
    std::string s = detail::tens_names()[std::size_t(k / 10)];
    if (k % 10) (s += '-') += detail::small_number_names()[std::size_t(k % 10)];
    return s;
  };
  if (n < 100) return below_hundred(n);
  std::string s = detail::small_number_names()[std::size_t(n / 100)];
  s += " hundred";
  if (n % 100) (s += ' ') += below_hundred(n % 100);
  return s;
}

// The grammar check: the number a string spells, or nothing when it is not exactly the spelling
// of one number in 0..999 ("forty two", "one hundred and five", "zero hundred" are not).
inline std::optional<int> number_from_words(std::string_view s) {
  auto word = [](std::string_view w, auto names, std::size_t first) -> int {
    for (std::size_t i = first; i < names.size(); ++i)
      if (w == names[i]) return int(i);
    return -1;
  };
  auto below_hundred = [&](std::string_view w) -> int {  // "seven", "nineteen", "forty", "forty-two"
    if (int k = word(w, detail::small_number_names(), 0); k >= 0) return k;
    const auto dash = w.find('-');
    const int tens = word(w.substr(0, dash), detail::tens_names(), 2);
    if (tens < 0) return -1;
    if (dash == std::string_view::npos) return 10 * tens;
    const int unit = word(w.substr(dash + 1), detail::small_number_names(), 1);
    return unit >= 1 && unit <= 9 ? 10 * tens + unit : -1;
  };
  const auto space = s.find(' ');
  if (space == std::string_view::npos) {
    const int k = below_hundred(s);
    return k >= 0 ? std::optional<int>(k) : std::nullopt;
  }
  const int hundreds = word(s.substr(0, space), detail::small_number_names(), 1);
  if (hundreds < 1 || hundreds > 9) return std::nullopt;
  std::string_view rest = s.substr(space + 1);
  if (!rest.starts_with("hundred")) return std::nullopt;
  rest.remove_prefix(7);
  if (rest.empty()) return 100 * hundreds;
  if (rest[0] != ' ') return std::nullopt;
  const int k = below_hundred(rest.substr(1));
  return k >= 1 ? std::optional<int>(100 * hundreds + k) : std::nullopt;
}

// All 1000 spellings, in order: the numbers task's class names (class k is the number k).
inline std::vector<std::string> number_class_names() {
  std::vector<std::string> names;
  for (int n = 0; n < 1000; ++n) names.push_back(number_words(n));
  return names;
}

// Images of numbers made of MNIST digits: a number of one, two or three digits (equally likely;
// no leading zero), each digit a random image of it from `digits` (so test numbers come from test
// digits), placed left to right on a 28 × width canvas with gaps of −4..+4 pixels (negative:
// overlapping, strokes combined by max) and up to ±3 pixels of vertical jitter, the whole centred.
// Sample i of a seed is always the same image: the test set is samples 0..9999 of the test
// seed, and training draws from an endless stream.
struct number_image {
  std::vector<std::uint8_t> pixels;  // [28, width], light ink on black like MNIST
  int value = 0;
};

class number_images {
public:
  static constexpr std::size_t rows = 28;

  number_images(const labeled_images& digits, std::uint64_t seed, std::size_t width = 84)
      : digits_(&digits), seed_(seed), width_(width) {
    if (digits.images.rows != 28 || digits.images.cols != 28)
      throw error("number_images: digits must be 28x28, not " + std::to_string(digits.images.rows) + "x" +
                  std::to_string(digits.images.cols));
    if (width < 3 * 28 - 2 * 4) throw error("number_images: width " + std::to_string(width) + " cannot hold three digits");
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (digits.labels[i] > 9) throw error("number_images: label " + std::to_string(digits.labels[i]) + " at " + std::to_string(i) + " is not a digit");
      by_digit_[digits.labels[i]].push_back(i);
    }
    for (std::size_t d = 0; d < 10; ++d)
      if (by_digit_[d].empty()) throw error("number_images: no image of the digit " + std::to_string(d));
  }
  number_images(labeled_images&&, std::uint64_t, std::size_t = 84) = delete;  // would dangle

  std::size_t width() const { return width_; }

  number_image operator()(std::uint64_t index) const {
    rng g(seed_ * 0x9e3779b97f4a7c15ull + index);
    const std::size_t count = 1 + g.below(3);
    const int lo = count == 1 ? 0 : count == 2 ? 10 : 100, hi = count == 1 ? 10 : count == 2 ? 100 : 1000;
    number_image out;
    out.value = lo + int(g.below(std::size_t(hi - lo)));
    int digit_of[3], gap[3] = {0, 0, 0}, dy[3];
    for (std::size_t k = 0, v = std::size_t(out.value); k < count; ++k, v /= 10) digit_of[count - 1 - k] = int(v % 10);
    int total = 28 * int(count);
    for (std::size_t k = 0; k < count; ++k) {
      if (k > 0) total += gap[k] = int(g.below(9)) - 4;
      dy[k] = int(g.below(7)) - 3;
    }
    out.pixels.assign(rows * width_, 0);
    int x = (int(width_) - total) / 2;
    for (std::size_t k = 0; k < count; ++k) {
      x += gap[k];
      const auto& pool = by_digit_[std::size_t(digit_of[k])];
      const auto img = digits_->images.image(pool[g.below(pool.size())]);
      for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) {
          const int y = r + dy[k], xx = x + c;
          if (y < 0 || y >= int(rows) || xx < 0 || xx >= int(width_)) continue;
          auto& p = out.pixels[std::size_t(y) * width_ + std::size_t(xx)];
          p = std::max(p, img[std::size_t(r * 28 + c)]);
        }
      x += 28;
    }
    return out;
  }

private:
  const labeled_images* digits_;
  std::uint64_t seed_;
  std::size_t width_;
  std::array<std::vector<std::size_t>, 10> by_digit_;
};

}  // namespace purevlm

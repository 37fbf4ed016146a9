// The numbers task's data: the spelling of 0..999, the grammar check, and the number images.
#include "common.hpp"

#include <set>

#include <purevlm/vlm.hpp>

using namespace purevlm;

TEST_CASE("number_words: the spelling rules, by example") {
  CHECK(number_words(0) == "zero");
  CHECK(number_words(7) == "seven");
  CHECK(number_words(13) == "thirteen");
  CHECK(number_words(40) == "forty");
  CHECK(number_words(42) == "forty-two");
  CHECK(number_words(100) == "one hundred");
  CHECK(number_words(110) == "one hundred ten");
  CHECK(number_words(300) == "three hundred");
  CHECK(number_words(705) == "seven hundred five");
  CHECK(number_words(999) == "nine hundred ninety-nine");
  CHECK_THROWS_WITH(number_words(1000), doctest::Contains("1000 is not in 0..999"));
  CHECK_THROWS(number_words(-1));
}

TEST_CASE("every number 0..999 has exactly one spelling, and the grammar check reads it back") {
  std::set<std::string> seen;
  for (int n = 0; n < 1000; ++n) {
    const std::string w = number_words(n);
    CAPTURE(w);
    CHECK(seen.insert(w).second);
    REQUIRE(number_from_words(w).has_value());
    CHECK(*number_from_words(w) == n);
  }
  for (const char* bad : {"", " ", "forty two", "one hundred and five", "zero hundred", "twenty-zero", "hundred",
                          "one hundred ", "ten-one", "eleven hundred", "one hundred zero", "Seven", "seven ", "forty-",
                          "-two", "one  hundred", "one hundred hundred", "thousand", "one thousand", "nine hundred ninety-ten"}) {
    CAPTURE(bad);
    CHECK_FALSE(number_from_words(bad).has_value());
  }
}

TEST_CASE("the grammar check and the spelling agree on strings near the right ones") {
  // every string one edit away from a spelling (a letter dropped, doubled, or a space and hyphen
  // swapped) is either no number at all or the exact spelling of the number it is read as
  rng g(5);
  int accepted = 0, refused = 0;
  for (int n = 0; n < 1000; ++n) {
    const std::string w = number_words(n);
    for (int e = 0; e < 4; ++e) {
      std::string s = w;
      const std::size_t at = g.below(s.size());
      if (e == 0) s.erase(at, 1);
      else if (e == 1) s.insert(at, 1, s[at]);
      else if (e == 2) { for (char& c : s) if (c == ' ') { c = '-'; break; } else if (c == '-') { c = ' '; break; } }
      else s.erase(at);
      const auto v = number_from_words(s);
      CAPTURE(s);
      if (v) { CHECK(number_words(*v) == s); ++accepted; }
      else ++refused;
    }
  }
  CHECK(refused > 3000);  // nearly every edit breaks the spelling
  CHECK(accepted > 0);    // and some land on another number ("forty-two" → "forty")
}

TEST_CASE("the numbers vocabulary: letters, space and hyphen; class k is the number k") {
  const vocabulary v(number_class_names());
  CHECK(v.class_names().size() == 1000);
  std::size_t longest = 0;
  for (int n = 0; n < 1000; ++n) longest = std::max(longest, number_words(n).size());
  CHECK(longest == std::string("seven hundred seventy-seven").size());
  CHECK(v.max_text_len() == longest + 2);
  CHECK(v.class_of("forty-two") == 42);
  CHECK(v.class_of("forty two") < 0);
  CHECK(v.decode(v.encode("nine hundred ninety-nine")) == "nine hundred ninety-nine");
}

TEST_CASE("number images: made of the right digits from the given split, the same for the same index") {
  // ten 28x28 "digits", digit d drawn as a block of value 20·(d + 1): the composed image shows
  // which digit images went in
  labeled_images digits;
  digits.images.count = 20; digits.images.rows = 28; digits.images.cols = 28;
  digits.images.pixels.assign(20 * 784, 0);
  for (std::size_t i = 0; i < 20; ++i) {
    digits.labels.push_back(std::uint8_t(i % 10));
    for (std::size_t r = 8; r < 20; ++r)
      for (std::size_t c = 10; c < 18; ++c) digits.images.pixels[i * 784 + r * 28 + c] = std::uint8_t(20 * (i % 10 + 1));
  }
  const number_images make(digits, 7);
  CHECK(make.width() == 84);
  std::array<int, 4> by_count{};
  for (std::uint64_t i = 0; i < 600; ++i) {
    const number_image a = make(i), b = make(i);
    CHECK(a.pixels == b.pixels);
    CHECK(a.value == b.value);
    REQUIRE(a.pixels.size() == 28 * 84);
    REQUIRE((a.value >= 0 && a.value < 1000));
    const std::string w = std::to_string(a.value);
    by_count[w.size()]++;
    // the blocks of its digits, and nothing else
    std::set<int> want{0}, got;
    for (char c : w) want.insert(20 * (c - '0' + 1));
    for (auto p : a.pixels) got.insert(p);
    for (int v : got) CHECK(want.count(v) == 1);
    CHECK(got.size() >= 2);
  }
  for (std::size_t k = 1; k <= 3; ++k) CHECK(by_count[k] > 150);  // one, two, three digits about equally
  CHECK(make(0).pixels != make(1).pixels);
  CHECK(number_images(digits, 8)(0).pixels != make(0).pixels);  // the seed matters
  labeled_images no_five = digits;
  for (auto& l : no_five.labels) if (l == 5) l = 4;
  CHECK_THROWS_WITH(number_images(no_five, 1), doctest::Contains("no image of the digit 5"));
}

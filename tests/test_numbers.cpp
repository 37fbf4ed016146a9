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

TEST_CASE("a trainer on made samples (the numbers stream): learns, and is bit-identical whatever the thread count") {
  // the synthetic digits again (a block of value 20·(d+1)), made into numbers on a 28x84 canvas
  labeled_images digits;
  digits.images.count = 10; digits.images.rows = 28; digits.images.cols = 28;
  digits.images.pixels.assign(10 * 784, 0);
  for (std::size_t d = 0; d < 10; ++d) {
    digits.labels.push_back(std::uint8_t(d));
    for (std::size_t r = 4; r < 24; ++r) digits.images.pixels[d * 784 + r * 28 + 4 + 2 * d] = 255;  // a bar per digit
  }
  const number_images make(digits, 3);
  const sample_maker maker = [&](std::uint64_t g) {
    number_image im = make(g);
    return made_sample{std::move(im.pixels), std::size_t(im.value % 10)};  // the last digit's name, small and quick
  };
  vlm_config c = vlm_config::numbers();
  c.train.batch = 4;
  c.train.lr.warmup = 5;
  auto run = [&](std::size_t threads, int steps, double* first = nullptr, double* last = nullptr) {
    vlm m(c, vocabulary(mnist_class_names()), 5);
    trainer tr(m, maker, 28, 84, 9, threads);
    for (int i = 0; i < steps; ++i) {
      const auto s = tr.step();
      REQUIRE(s.finite);
      if (first && i < 10) *first += s.loss / 10;
      if (last && i >= steps - 10) *last += s.loss / 10;
    }
    return std::vector<float>(m.parameters().values().begin(), m.parameters().values().end());
  };
  CHECK(run(1, 6) == run(2, 6));
  double first = 0, last = 0;
  run(2, 150, &first, &last);
  CHECK(last < 0.5 * first);
  // a made sample of the wrong size is refused, naming it
  const sample_maker bad = [](std::uint64_t) { return made_sample{std::vector<std::uint8_t>(10), 1}; };
  vlm m(c, vocabulary(mnist_class_names()), 5);
  trainer tr(m, bad, 28, 84, 9, 1);
  CHECK_THROWS_WITH(tr.step(), doctest::Contains("sample 0 was made with 10 pixels"));
}

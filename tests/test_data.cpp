// Data: SPEC.md's preparation against the fixture, IDX/PGM readers and every bad input they refuse.
#include "common.hpp"
#include "fixture.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <purevlm/vlm.hpp>

using namespace purevlm;
using purevlm::test::error_of;
using purevlm::test::has;
namespace fs = std::filesystem;

namespace {
std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}
std::string idx_images_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::size_t payload) {
  return be32(2051) + be32(count) + be32(rows) + be32(cols) + std::string(payload, '\x07');
}
std::string idx_labels_bytes(std::uint32_t count, std::size_t payload, char value = 3) {
  return be32(2049) + be32(count) + std::string(payload, value);
}
struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("purevlm_test_" + std::to_string(::getpid()) + "_" + std::to_string(rand()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return (path / name).string();
  }
};
}  // namespace

TEST_CASE("prepare() reproduces the fixture's x from its raw image (pool, scale, L2) to 1e-15") {
  auto fx = test::read_fixture(std::string(PUREVLM_TEST_DATA) + "/golden_seed_model.txt");
  std::vector<std::uint8_t> img;
  for (double v : fx.at("image_u8").values) img.push_back(std::uint8_t(v));
  std::vector<double> x(196);
  prepare<double>(x, img);
  const auto& want = fx.at("x").values;
  for (std::size_t i = 0; i < 196; ++i) REQUIRE(std::abs(x[i] - want[i]) <= 1e-15);
}

TEST_CASE("IDX: reads what it is given, from a stream") {
  std::istringstream in(idx_images_bytes(3, 2, 2, 12));
  auto d = read_idx_images(in, "mem");
  CHECK(d.count == 3);
  CHECK(d.pixels.size() == 12);
  CHECK(d.image(2)[3] == 7);
  std::istringstream labels(idx_labels_bytes(4, 4));
  CHECK(read_idx_labels(labels, "mem").size() == 4);
}

TEST_CASE("IDX: bad files are refused with the name and offset") {
  auto images = [](std::string bytes) {
    return error_of([&] { std::istringstream in(bytes); (void)read_idx_images(in, "f.idx"); });
  };
  CHECK(has(images(""), "empty"));
  CHECK(has(images(be32(2051) + be32(3)), "truncated header"));
  CHECK(has(images(idx_labels_bytes(4, 4)), "label file"));
  CHECK(has(images("GIF89a, not an idx file at all"), "magic"));
  CHECK(has(images(idx_images_bytes(3, 2, 2, 11)), "truncated"));         // one byte short
  CHECK(has(images(idx_images_bytes(3, 2, 2, 11)), "offset 16"));
  CHECK(has(images(idx_images_bytes(3, 2, 2, 13)), "extra bytes at offset 28"));  // header disagrees the other way
  CHECK(has(images(idx_images_bytes(3, 0, 28, 0)), "absurd image size"));
  CHECK(has(images(idx_images_bytes(3, 100000, 28, 0)), "absurd image size"));
  // a header asking for 4e9 images of 28x28 is refused before any allocation
  CHECK(has(images(idx_images_bytes(4000000000u, 28, 28, 0)), "limit"));
  auto labels = [](std::string bytes) {
    return error_of([&] { std::istringstream in(bytes); (void)read_idx_labels(in, "l.idx"); });
  };
  CHECK(has(labels(idx_images_bytes(1, 1, 1, 1)), "image file"));
  CHECK(has(labels(idx_labels_bytes(10, 9)), "truncated"));
}

TEST_CASE("IDX splits: counts must agree, labels must be classes, files must exist") {
  temp_dir d;
  d.write("train-images-idx3-ubyte", idx_images_bytes(3, 28, 28, 3 * 784));
  d.write("train-labels-idx1-ubyte", idx_labels_bytes(4, 4));
  CHECK(has(error_of([&] { (void)read_idx_split(d.path.string(), "train"); }), "holds 3 images but"));
  d.write("train-labels-idx1-ubyte", idx_labels_bytes(3, 3, 12));
  CHECK(has(error_of([&] { (void)read_idx_split(d.path.string(), "train"); }), "label 12 at offset 8"));
  d.write("train-labels-idx1-ubyte", idx_labels_bytes(3, 3, 9));
  CHECK(read_idx_split(d.path.string(), "train").size() == 3);
  CHECK(has(error_of([&] { (void)read_idx_split(d.path.string(), "t10k"); }), "cannot open"));
}

#if defined(PUREVLM_HAS_ZLIB)
TEST_CASE("IDX: gzip files are inflated, and a cut gzip stream is reported") {
  temp_dir d;
  const std::string raw = idx_labels_bytes(5, 5, 2), path = (d.path / "l.gz").string();
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  gzwrite(gz, raw.data(), unsigned(raw.size()));
  gzclose(gz);
  CHECK(read_idx_labels(path).size() == 5);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = d.write("cut.gz", bytes.substr(0, 12));
  CHECK_THROWS_AS((void)read_idx_labels(cut), purevlm::error);
}
#endif

TEST_CASE("PGM: P2 and P5 read; malformed files are refused") {
  std::istringstream p2("P2\n# a comment\n3 2\n15\n0 15 7\n1 2 3\n");
  auto a = read_pgm(p2, "a.pgm");
  CHECK(a.width == 3);
  CHECK(a.pixels[1] == 255);
  CHECK(a.pixels[2] == 119);  // 7/15 of 255, rounded
  std::istringstream p5(std::string("P5 2 2 255\n") + std::string("\x00\x10\x20\xff", 4));
  auto b = read_pgm(p5, "b.pgm");
  CHECK(b.pixels[3] == 255);
  auto bad = [](std::string bytes) {
    return error_of([&] { std::istringstream in(bytes); (void)read_pgm(in, "bad.pgm"); });
  };
  CHECK(has(bad("P6 1 1 255\n\x01"), "expected P2 or P5"));
  CHECK(has(bad("P2 3\n"), "expected a height"));
  CHECK(has(bad("P2 2 1 255\n1 300"), "above the maximum"));
  CHECK(has(bad("P5 4 4 255\nxx"), "truncated"));
  CHECK(has(bad("P2 99999999 2 255\n"), "absurd"));
  CHECK(has(bad("P2 1 1 0\n0"), "maximum value"));
}

TEST_CASE("mnist_style: a dark-on-light picture becomes a centred, 20-pixel, light-on-dark digit") {
  gray_image img{.width = 60, .height = 90, .pixels = std::vector<std::uint8_t>(60 * 90, 250)};
  for (std::size_t y = 10; y < 50; ++y)  // a dark bar, off centre: 40 tall, 10 wide
    for (std::size_t x = 5; x < 15; ++x) img.pixels[y * 60 + x] = 10;
  auto out = mnist_style(img);
  std::size_t y0 = 28, y1 = 0, x0 = 28, x1 = 0;
  double mass = 0, cx = 0, cy = 0;
  for (std::size_t y = 0; y < 28; ++y)
    for (std::size_t x = 0; x < 28; ++x)
      if (out[y * 28 + x] > 128) {
        y0 = std::min(y0, y); y1 = std::max(y1, y); x0 = std::min(x0, x); x1 = std::max(x1, x);
        mass += out[y * 28 + x]; cx += double(x) * out[y * 28 + x]; cy += double(y) * out[y * 28 + x];
      }
  CHECK(y1 - y0 + 1 == 20);  // longer side scaled to 20
  CHECK(x1 - x0 + 1 == 5);   // aspect kept
  CHECK(std::abs(cx / mass - 13.5) <= 1.0);
  CHECK(std::abs(cy / mass - 13.5) <= 1.0);
  CHECK(out[0] == 0);        // inverted background
}

TEST_CASE("vocabulary: SPEC.md's 17 tokens for digits; Fashion-MNIST's names work the same way") {
  vocabulary digits(mnist_class_names());
  CHECK(digits.size() == 17);
  CHECK(digits.characters() == "efghinorstuvwxz");
  CHECK(digits.bos() == 15);
  CHECK(digits.encode("five") == std::vector<std::int32_t>{15, 1, 4, 11, 0, 16});
  CHECK(digits.decode(digits.encode("seven")) == "seven");
  CHECK(digits.class_of("nine") == 9);
  CHECK(digits.class_of("nein") == -1);
  vocabulary fashion(fashion_mnist_class_names());
  CHECK(fashion.decode(fashion.encode("ankle boot")) == "ankle boot");
  CHECK(fashion.max_text_len() == 13);
  CHECK(has(error_of([&] { (void)digits.encode("boot"); }), "'b'"));
}

TEST_CASE("prepare() at full size: /255 and L2-normalised, no pooling, when asked for rows·cols values") {
  std::vector<std::uint8_t> img(784, 0);
  img[0] = 255;
  img[29] = 255;  // (1, 1): the same 2x2 pool cell as (0, 0) at half size
  std::vector<float> full(784), half(196);
  prepare<float>(full, img);
  prepare<float>(half, img);
  CHECK(full[0] == doctest::Approx(1 / std::sqrt(2.0)));
  CHECK(full[29] == doctest::Approx(1 / std::sqrt(2.0)));
  CHECK(full[1] == 0.0f);
  CHECK(half[0] == doctest::Approx(1.0));  // both in one cell: 0.5, then normalised
  CHECK(has(error_of([&] { std::vector<float> odd(100); prepare<float>(odd, img); }), "into 100 values"));
}

TEST_CASE("test_shift: P pixels in one of 8 directions, fixed per image, all 8 used about equally") {
  std::map<std::pair<int, int>, int> seen;
  for (std::size_t i = 0; i < 8000; ++i) {
    const auto [dx, dy] = test_shift(i, 2);
    REQUIRE(test_shift(i, 2) == std::pair(dx, dy));          // the same every time
    REQUIRE(std::max(std::abs(dx), std::abs(dy)) == 2);      // moved by exactly P on the larger axis
    REQUIRE((dx % 2 == 0 && dy % 2 == 0));
    seen[{dx, dy}]++;
  }
  CHECK(seen.size() == 8);
  for (const auto& [d, n] : seen) CHECK((n > 800 && n < 1200));
  CHECK(test_shift(5, 3).first == 3 * test_shift(5, 1).first);
}

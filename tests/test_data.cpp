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
using purevlm::test::temp_dir;
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

namespace {
// This process's peak resident memory so far (Linux: VmHWM), or 0 where it cannot be read.
std::size_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}
// Runs f, which must throw a purevlm::error containing `part`; the process's peak memory may
// grow by at most 64 MB meanwhile (the reproducers used to allocate 0.7-1 GiB before failing).
template <class F>
void refused_cheaply(F&& f, const std::string& part) {
  const std::size_t before = peak_rss_bytes();
  const std::string msg = error_of(f);
  CAPTURE(msg);
  CHECK(has(msg, part));
  if (before == 0) { MESSAGE("peak memory not checked: no /proc/self/status"); return; }
  CHECK(peak_rss_bytes() < before + (std::size_t(64) << 20));
}
}  // namespace

TEST_CASE("a few bytes cannot make a reader allocate gigabytes: memory follows the bytes that exist") {
  // 16 bytes: 16,384 images of 256x256 (1 GiB) promised, none there
  std::istringstream imgs(be32(2051) + be32(16384) + be32(256) + be32(256));
  refused_cheaply([&] { (void)read_idx_images(imgs, "big.idx"); }, "truncated");
  // 8 bytes: 2^30 labels promised
  std::istringstream labs(be32(2049) + be32(0x40000000));
  refused_cheaply([&] { (void)read_idx_labels(labs, "big-labels.idx"); }, "truncated");
  // 21 bytes: a 16384x16384 16-bit PGM
  std::istringstream pgm("P5\n16384 16384\n65535\n");
  refused_cheaply([&] { (void)read_pgm(pgm, "big.pgm"); }, "truncated PGM");
  std::istringstream plain("P2\n16384 16384\n255\n1 2 3\n");
  refused_cheaply([&] { (void)read_pgm(plain, "big2.pgm"); }, "expected a pixel value");
#if defined(PUREVLM_HAS_ZLIB)
  temp_dir d;  // the same 16-byte header through gzip
  const std::string path = (d.path / "big.gz").string(), header = be32(2051) + be32(16384) + be32(256) + be32(256);
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  gzwrite(gz, header.data(), unsigned(header.size()));
  gzclose(gz);
  refused_cheaply([&] { (void)read_idx_images(path); }, "truncated");
#endif
}

TEST_CASE("IDX: images that are not square keep rows and columns apart") {
  std::string payload;
  for (int i = 0; i < 2 * 3 * 5; ++i) payload += char(i);
  std::istringstream in(be32(2051) + be32(2) + be32(3) + be32(5) + payload);  // 2 images of 3 rows x 5 columns
  const idx_images im = read_idx_images(in, "wide.idx");
  CHECK(im.rows == 3);
  CHECK(im.cols == 5);
  CHECK(im.image(1)[1 * 5 + 4] == 15 + 5 + 4);  // image 1, row 1, column 4
}

TEST_CASE("PGM: values are rescaled to 0..255 by rounding; the magic must be followed by white space") {
  std::istringstream in("P2 2 1 10\n3 10\n");
  const gray_image img = read_pgm(in, "ten.pgm");
  CHECK(int(img.pixels[0]) == 77);  // 3·255/10 = 76.5 rounds to 77
  CHECK(int(img.pixels[1]) == 255);
  std::istringstream glued("P52 1 255\n\x01\x02");
  CHECK(has(error_of([&] { (void)read_pgm(glued, "glued.pgm"); }), "no white space after the magic P5"));
}

TEST_CASE("read_image: PNG of every colour type and bit depth reads as the same picture as the PGM") {
  const std::string dir = std::string(PUREVLM_TEST_DATA) + "/png/", pgm = std::string(PUREVLM_TEST_DATA) + "/digits/dkg-hand_7_0.pgm";
  const gray_image want = read_image(pgm);  // a PGM goes through read_pgm
  CHECK(want.pixels == read_pgm(pgm).pixels);
  const auto want_digit = mnist_style(want);
  for (const std::string name : {"gray8.png", "gray16.png", "gray_alpha.png", "gray16_alpha.png", "rgb.png", "rgba_transparent.png", "palette.png"}) {
    CAPTURE(name);
#if defined(PUREVLM_HAS_PNG)
    const gray_image got = read_image(dir + name);
    REQUIRE(got.width == want.width);
    REQUIRE(got.height == want.height);
    int worst = 0;  // 16-bit and alpha compositing round differently by a level or two
    for (std::size_t i = 0; i < got.pixels.size(); ++i) worst = std::max(worst, std::abs(int(got.pixels[i]) - int(want.pixels[i])));
    CHECK(worst <= 3);
    int worst_digit = 0;
    const auto digit = mnist_style(got);
    for (std::size_t i = 0; i < digit.size(); ++i) worst_digit = std::max(worst_digit, std::abs(int(digit[i]) - int(want_digit[i])));
    CHECK(worst_digit <= 3);
#else
    CHECK(has(error_of([&] { (void)read_image(dir + name); }), "built without libpng. HINT: convert it to PGM"));
#endif
  }
#if defined(PUREVLM_HAS_PNG)
  temp_dir d;  // a cut PNG is refused with the file's name
  std::ifstream in(dir + "rgb.png", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  CHECK(has(error_of([&] { (void)read_image(d.write("cut.png", bytes.substr(0, 60))); }), "cut.png"));
#endif
}

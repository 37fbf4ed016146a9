// The patch tokenizer: hand-computed patches, pooling and channel norm; gradient checks of each
// kernel and of a whole patch VLM; backward accumulates; convolution moves with the image.
#include "common.hpp"

#include <purevlm/vlm.hpp>

using namespace purevlm;
using purevlm::test::error_of;
using purevlm::test::gradcheck;
using purevlm::test::has;
using purevlm::test::readout;
using purevlm::test::store;

TEST_CASE("patches: hand-computed windows of a 3x3 image, with and without padding") {
  const std::vector<double> img{1, 2, 3, 4, 5, 6, 7, 8, 9};  // [9, 1]
  std::vector<double> out(4 * 4);
  patches_forward<double>(out, img, 3, 3, 1, 2, 0);  // 2x2 windows: 2x2 positions
  CHECK(out == std::vector<double>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  std::vector<double> padded(9 * 9);
  patches_forward<double>(padded, img, 3, 3, 1, 3, 1);  // 3x3 windows, pad 1: 3x3 positions
  CHECK(std::vector<double>(padded.begin(), padded.begin() + 9) == std::vector<double>{0, 0, 0, 0, 1, 2, 0, 4, 5});
  CHECK(std::vector<double>(padded.begin() + 36, padded.begin() + 45) == img);  // the centre window is the image
  // two channels stay interleaved per pixel: (ky, kx, c)
  const std::vector<double> two{1, 10, 2, 20, 3, 30, 4, 40};  // 2x2 pixels x 2 channels
  std::vector<double> one(8);
  patches_forward<double>(one, two, 2, 2, 2, 2, 0);
  CHECK(one == two);
}

TEST_CASE("avgpool and channel_rmsnorm: hand-computed") {
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8, 9};  // 3x3, one channel
  std::vector<double> s1(4), s2(1);
  avgpool_forward<double>(s1, x, 3, 3, 1, 2, 1);  // overlapping 2x2 windows
  CHECK(s1 == std::vector<double>{3, 4, 6, 7});
  avgpool_forward<double>(s2, x, 3, 3, 1, 2, 2);  // stride 2: one window, the last row and column unused
  CHECK(s2[0] == doctest::Approx(3.0));
  const std::vector<double> y{3, 1, 4, -1};  // [2 positions, 2 channels]
  std::vector<double> out(4), rstd(2);
  channel_rmsnorm_forward<double>(out, rstd, y, 2, 2, 0.0);
  CHECK(rstd[0] == doctest::Approx(1 / std::sqrt(12.5)));  // channel 0: 3, 4
  CHECK(rstd[1] == doctest::Approx(1.0));                  // channel 1: 1, −1
  CHECK(out[2] == doctest::Approx(4 / std::sqrt(12.5)));
  CHECK(out[3] == doctest::Approx(-1.0));
}

TEST_CASE("patch kernels pass the gradient check, and their backward adds to what is there") {
  auto ps = store({{"x", 36, 2}, {"l", 3, 18}, {"r", 3, 18}});
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [](auto& t, auto& ps) {
    var cols = patches(t, t.parameter(ps, 0), 6, 6, 3, 1);  // [36, 18]
    const var w[2] = {t.parameter(ps, 1), t.parameter(ps, 2)}, in[2] = {cols, cols};
    var h = avgpool(t, product_of_projections<double>(t, w, in), 6, 6, 2, 2);  // [9, 3]
    return readout(t, channel_rmsnorm(t, h, 1e-12));
  }), 1e-6);

  // Each backward kernel adds: with its gradient slot pre-filled it gives pre-fill + fresh result.
  rng g(4);
  std::vector<double> x(36 * 2), dy(36 * 18), y(36 * 18);
  for (auto* v : {&x, &dy}) for (double& e : *v) e = g.normal();
  auto check_adds = [&](auto&& backward, std::size_t n) {
    std::vector<double> fresh(n, 0.0), filled(n, 0.5);
    backward(fresh);
    backward(filled);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(filled[i] == doctest::Approx(fresh[i] + 0.5));
    double mag = 0;
    for (double v : fresh) mag += std::abs(v);
    REQUIRE(mag > 1.0);  // a real gradient, not zeros
  };
  check_adds([&](auto& dx) { patches_backward<double>(dx, dy, 6, 6, 2, 3, 1); }, x.size());
  check_adds([&](auto& dx) { avgpool_backward<double>(dx, std::span(dy).first(9 * 2), 6, 6, 2, 2, 2); }, x.size());
  std::vector<double> rstd(2), m(2);
  channel_rmsnorm_forward<double>(y, rstd, x, 36, 2, 1e-12);
  check_adds([&](auto& dx) { channel_rmsnorm_backward<double>(dx, m, std::span(dy).first(72), std::span(y).first(72), rstd, 36, 2); }, x.size());
}

TEST_CASE("a bilinear convolution moves with the image: shifting the input shifts the feature map") {
  // 10x10 image with content away from the border, moved one pixel right and one down
  std::vector<double> a(100, 0.0), b(100, 0.0);
  rng g(8);
  for (std::size_t y = 2; y < 7; ++y)
    for (std::size_t x = 2; x < 7; ++x) a[y * 10 + x] = b[(y + 1) * 10 + x + 1] = g.normal();
  auto ps = store({{"l", 4, 9}, {"r", 4, 9}}, 3);
  basic_tape<double> t;
  auto features = [&](const std::vector<double>& img) {
    var cols = patches(t, t.input(img, 100, 1), 10, 10, 3, 1);
    const var w[2] = {t.parameter(ps, 0), t.parameter(ps, 1)}, in[2] = {cols, cols};
    return product_of_projections<double>(t, w, in);  // [100, 4]
  };
  var fa = features(a), fb = features(b);
  double mag = 0;
  for (std::size_t y = 0; y < 9; ++y)
    for (std::size_t x = 0; x < 9; ++x)
      for (std::size_t c = 0; c < 4; ++c) {
        const double va = t.value(fa)[(y * 10 + x) * 4 + c], vb = t.value(fb)[((y + 1) * 10 + x + 1) * 4 + c];
        REQUIRE(vb == doctest::Approx(va).epsilon(1e-12));
        mag += std::abs(va);
      }
  CHECK(mag > 1.0);
}

TEST_CASE("the default preset is a patch model within the seed's budget; a small patch VLM passes the gradient check") {
  vlm m(vlm_config::default_preset(), vocabulary(mnist_class_names()));
  const auto& c = m.config();
  CHECK(c.vision == vision_mode::patches);
  CHECK(c.vision_positions == 16);  // a 4x4 grid of regions
  CHECK(c.patches.tokens() == 16);
  CHECK(m.parameter_count() <= 32240);
  CHECK(m.parameter_count() == c.patches.parameter_count() + c.gpt.parameter_count());

  vlm_config small = vlm_config::default_preset();
  small.patches = {.side = 8, .layers = {{.kernel = 3, .channels = 3, .pad = 1, .pool = 2, .stride = 2},
                                         {.kernel = 2, .channels = 8, .pad = 0, .pool = 2, .stride = 1}}};
  small.gpt.n_embd = 8;
  small.gpt.n_head = 2;
  small.gpt.mlp_hidden = 8;
  basic_vlm<double> model(small, vocabulary(mnist_class_names()), 3);
  CHECK(model.config().vision_positions == 4);  // 8 → 4 → 3 → 2: a 2x2 grid
  auto& ps = model.parameters();
  std::vector<double> img(64);
  rng g(6);
  for (double& v : img) v = std::abs(g.normal());
  const auto text = model.vocab().encode("seven");
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(ps, [&](auto& t, auto&) {
    return model.forward(t, img, text).loss;
  }, 60), 1e-6);
}

TEST_CASE("a wide image (numbers): a rectangular token grid, gradients checked, and its config saved and read back") {
  vlm_config wide = vlm_config::default_preset();
  wide.preset = "wide";
  wide.patches = {.side = 8, .cols = 20, .layers = {{.kernel = 3, .channels = 3, .pad = 1, .pool = 2, .stride = 2},
                                                    {.kernel = 2, .channels = 8, .pad = 0, .pool = 2, .stride = 1}}};
  wide.gpt.n_embd = 8;
  wide.gpt.n_head = 2;
  wide.gpt.mlp_hidden = 8;
  CHECK(wide.patches.grid_rows() == 2);  // 8 → 4 → 3 → 2
  CHECK(wide.patches.grid_cols() == 8);  // 20 → 10 → 9 → 8
  CHECK(wide.pixels() == 160);
  basic_vlm<double> model(wide, vocabulary(mnist_class_names()), 3);
  CHECK(model.config().vision_positions == 16);
  std::vector<double> img(160);
  rng g(7);
  for (double& v : img) v = std::abs(g.normal());
  const auto text = model.vocab().encode("two");
  PUREVLM_REQUIRE_GRADCHECK(gradcheck(model.parameters(), [&](auto& t, auto&) { return model.forward(t, img, text).loss; }, 60),
                            1e-6);
  basic_tape<double> t;
  CHECK(has(error_of([&] { (void)model.forward(t, std::span<const double>(img).first(64), text); }), "8x20"));

  test::temp_dir d;
  vlm saved(wide, vocabulary(mnist_class_names()), 4);
  save_model(d.at("wide.ckpt"), saved);
  const vlm back = load_model(d.at("wide.ckpt"));
  CHECK(back.config().patches.cols == 20);
  CHECK(std::ranges::equal(back.parameters().values(), saved.parameters().values()));
}

TEST_CASE("a version 2 checkpoint (square patch images, no column count) still loads") {
  // tests/data/checkpoint_v2_patches.ckpt: written by purevlm 0.3.0 with save_model() for this
  // config and seed 11, before version 3 added the column count
  const checkpoint c = read_checkpoint(std::string(PUREVLM_TEST_DATA) + "/checkpoint_v2_patches.ckpt");
  CHECK(c.version == 2);
  CHECK(c.config.preset == "tiny-patches");
  CHECK(c.config.patches.side == 8);
  CHECK(c.config.patches.cols == 0);
  CHECK(c.config.patches.image_cols() == 8);
  vlm_config want;
  want.preset = "tiny-patches";
  want.vision = vision_mode::patches;
  want.patches = {.side = 8, .layers = {{.kernel = 3, .channels = 4, .pad = 1, .pool = 2, .stride = 2}}};
  want.vision_positions = 16;
  want.gpt = {.n_embd = 4, .n_head = 2, .mlp_hidden = 8};
  const vlm fresh(want, vocabulary(mnist_class_names()), 11);
  const vlm back = load_model(std::string(PUREVLM_TEST_DATA) + "/checkpoint_v2_patches.ckpt");
  CHECK(std::ranges::equal(back.parameters().values(), fresh.parameters().values()));
}

TEST_CASE("patch configs that do not fit are refused with the sizes") {
  patch_config c{.side = 6, .layers = {{.kernel = 7, .channels = 4}}};
  CHECK(has(error_of([&] { c.validate(); }), "7x7 patches"));
  vlm_config v = vlm_config::default_preset();
  v.patches.layers.back().channels = 24;
  CHECK(has(error_of([&] { vlm m(v, vocabulary(mnist_class_names())); }), "must equal gpt.n_embd (32)"));
  basic_tape<double> t;
  std::vector<double> x(10, 1.0);
  CHECK(has(error_of([&] { patches(t, t.input(x, 10, 1), 3, 3, 2, 0); }), "3x3 grid"));
}

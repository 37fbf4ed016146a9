// The whole model, seed and default presets: tokenizer kernels, a full training step (forward +
// backward + Adam) in samples/s for batch sizes and thread counts, inference in µs per image, and
// this core's FP32 peak (fma_peak) to state the kernels' GFLOP/s against.
// Synthetic images (random strokes) stand in for MNIST where speed does not depend on the data
// (training); inference on a trained model reads real MNIST (see inference).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>

#include <purevlm/vlm.hpp>

using namespace purevlm;

namespace {
labeled_images synthetic(std::size_t n) {
  labeled_images d;
  d.images.count = n; d.images.rows = 28; d.images.cols = 28;
  d.images.pixels.assign(n * 784, 0);
  rng g(7);
  for (std::size_t i = 0; i < n; ++i) {
    d.labels.push_back(std::uint8_t(g.below(10)));
    for (int s = 0; s < 120; ++s) d.images.pixels[i * 784 + 140 + g.below(500)] = std::uint8_t(128 + g.below(128));
  }
  return d;
}
const labeled_images& data() {
  static const labeled_images d = synthetic(2048);
  return d;
}
vlm_config preset(long which) { return which == 0 ? vlm_config::seed() : vlm_config::default_preset(); }

// args: preset (0 seed, 1 default), batch, threads
void train_step(benchmark::State& state) {
  vlm_config c = preset(state.range(0));
  c.train.batch = std::size_t(state.range(1));
  c.train.steps = 1000000;
  vlm model(c, vocabulary(mnist_class_names()), 1);
  trainer tr(model, data(), 1, std::size_t(state.range(2)));
  for (auto _ : state) benchmark::DoNotOptimize(tr.step());
  state.counters["samples/s"] = benchmark::Counter(double(c.train.batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(train_step)
    ->ArgNames({"preset", "batch", "threads"})
    ->Args({0, 1, 1})->Args({0, 16, 1})->Args({0, 64, 1})->Args({0, 16, 2})->Args({0, 64, 2})
    ->Args({1, 32, 1})->Args({1, 32, 2})
    ->UseRealTime();

// Inference time is mostly decoding, one step per letter, so it depends on what the model writes.
// trained 0: fresh weights, on the synthetic images (the seed's write all 8 letters allowed, the
// worst case). trained 1: the preset's recipe, its first 3,000 steps (seed) or 400 (default), on real
// MNIST (found as the real-data tests find it: $PUREVLM_DATA, ../shared/data/mnist, data/mnist),
// then the first 1,000 test images read in turn: the words a trained model writes (letters/image
// counts them; the seed's full run averages 3.98 over the test set). Skipped without MNIST (or
// without zlib to read its .gz files).
std::optional<labeled_images> mnist(const char* split) {
  for (std::string d : {std::string(std::getenv("PUREVLM_DATA") ? std::getenv("PUREVLM_DATA") : ""),
                        std::string(PUREVLM_SOURCE_DIR) + "/../shared/data/mnist", std::string(PUREVLM_SOURCE_DIR) + "/data/mnist"}) {
    if (d.empty() || !std::ifstream(d + "/t10k-labels-idx1-ubyte.gz")) continue;
    try {
      return read_idx_split(d, split);
    } catch (const error&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}
void inference(benchmark::State& state) {
  vlm_config c = preset(state.range(0));
  const bool trained = state.range(1) != 0;
  static std::optional<labeled_images> train, test;  // read once, and only for the trained case
  if (trained && !train) { train = mnist("train"); test = mnist("t10k"); }
  if (trained && !(train && test)) return state.SkipWithError("no readable MNIST ($PUREVLM_DATA, ../shared/data/mnist, data/mnist; .gz needs zlib)");
  const labeled_images& images = trained ? *test : data();
  static std::map<long, vlm> models;  // each (preset, trained) built once: repetitions reuse it
  auto [it, fresh] = models.try_emplace(state.range(0) * 2 + trained, c, vocabulary(mnist_class_names()), 1);
  vlm& model = it->second;
  if (trained && fresh) {
    trainer tr(model, *train, 1, 1);
    for (std::int64_t s = 0, steps = c.train.batch == 1 ? 3000 : 400; s < steps; ++s) tr.step();
  }
  std::vector<std::vector<float>> xs(std::min<std::size_t>(1000, images.size()), std::vector<float>(model.config().pixels()));
  for (std::size_t i = 0; i < xs.size(); ++i) prepare<float>(xs[i], images.images.image(i));
  tape t;
  std::size_t i = 0, letters = 0;
  for (auto _ : state) letters += model.generate(t, xs[i++ % xs.size()]).size();
  state.counters["us/image"] = benchmark::Counter(1e-6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["letters/image"] = double(letters) / double(state.iterations());
}
BENCHMARK(inference)->ArgNames({"preset", "trained"})->Args({0, 0})->Args({0, 1})->Args({1, 0})->Args({1, 1});

// What 2 threads can give on this machine right now: the same fixed arithmetic (registers only,
// no memory, no sharing) on each of `threads` workers of the pool the trainer uses. On a shared
// host the second core is sometimes only part of a core; compare.py prints this ceiling beside
// training's own 2-thread speed-up, measured in the same run.
void parallel_ceiling(benchmark::State& state) {
  const std::size_t threads = std::size_t(state.range(0));
  detail::worker_pool pool(threads - 1);
  std::vector<float> out(threads * 16);
  for (auto _ : state)
    pool.run([&](std::size_t w) {
      float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      for (int i = 0; i < 200000; ++i)
        for (float& x : a) x = x * 0.9999f + 0.5f;
      std::copy(a, a + 8, &out[w * 16]);
    });
  benchmark::DoNotOptimize(out.data());
  state.counters["jobs/s"] = benchmark::Counter(double(threads), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(parallel_ceiling)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

// The seed tokenizer alone, forward + backward, one image.
void tokenizer_forward_backward(benchmark::State& state) {
  basic_parameters<float> ps;
  rng g(1);
  basic_tokenizer<float> tok(tokenizer_config{}, ps, g);
  std::vector<float> x(196);
  prepare<float>(x, data().images.image(1));
  tape t;
  for (auto _ : state) {
    t.reset();
    auto out = tok.forward(t, ps, ps.grads(), t.input(x, 1, 196));
    t.backward(add(t, sum(t, out.features), out.recon));
  }
  state.counters["samples/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(tokenizer_forward_backward);

// The default preset's patch tokenizer alone (two bilinear convolutions, pools, channel norms),
// forward + backward, one image; GFLOP/s counts the multiply-adds of its projections (forward
// 2·N·I·O per matmul, backward twice that).
void patch_tokenizer_forward_backward(benchmark::State& state) {
  const patch_config cfg = vlm_config::default_preset().patches;
  basic_parameters<float> ps;
  rng g(1);
  basic_patch_tokenizer<float> tok(cfg, ps, g);
  std::vector<float> x(cfg.side * cfg.side);
  prepare<float>(x, data().images.image(1));
  double flop = 0;
  std::size_t side = cfg.side, in = 1;
  for (std::size_t i = 0; i < cfg.layers.size(); ++i) {
    const auto& l = cfg.layers[i];
    const std::size_t so = side + 2 * l.pad - l.kernel + 1;
    flop += 3 * 2 * double(so * so) * double(l.kernel * l.kernel * in) * double(2 * l.channels);
    side = cfg.cells_after(cfg.side, i);
    in = l.channels;
  }
  tape t;
  for (auto _ : state) {
    t.reset();
    t.backward(sum(t, tok.forward(t, ps, ps.grads(), t.input(x, 1, x.size()))));
  }
  state.counters["samples/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(patch_tokenizer_forward_backward);

// One core's FP32 peak, measured: independent fused multiply-adds in registers (enough chains to
// cover the FMA latency), 8-lane (AVX) and 16-lane (AVX-512) vectors; the larger is the peak.
using f8 [[gnu::vector_size(32)]] = float;
using f16 [[gnu::vector_size(64)]] = float;
template <class V>
void fma_peak(benchmark::State& state) {
  constexpr int lanes = sizeof(V) / sizeof(float), chains = 12, n = 4096;
  V acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = V{} + float(c);
  const V a = V{} + 0.999f, b = V{} + 0.001f;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < chains; ++c) acc[c] = acc[c] * a + b;
    float s = 0;  // every chain's result is used, so none can be skipped
    for (const V& v : acc) s += v[0] + v[lanes - 1];
    benchmark::DoNotOptimize(s);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * lanes * chains * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(fma_peak<f8>)->Name("fma_peak/lanes:8");
BENCHMARK(fma_peak<f16>)->Name("fma_peak/lanes:16");
}  // namespace

BENCHMARK_MAIN();

// Attention kernels: tensor score vs dot-product score, forward and forward+backward, swept over
// T ∈ {36, 128, 512, 1024} and head dim D ∈ {8, 64} with H = 4, and one decoding step (one query
// row against Tk keys). Each tensor benchmark is named like its dot twin with "tensor" in place of
// "dot", so scripts can pair them.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>

#include <purevlm/attention.hpp>

using namespace purevlm;

namespace {
struct buffers {
  std::size_t T, D, H = 4, C;
  attention_score score;
  std::vector<float> q, k, v, out, saved, scratch, dq, dk, dv, dout;
  buffers(std::size_t T_, std::size_t D_, bool tensor) : T(T_), D(D_), C(4 * D_) {
    score = tensor ? attention_score::of(score_kind::tensor, D) : attention_score::of(score_kind::dot, D);
    rng g(1);
    for (auto* x : {&q, &k, &v, &dout}) {
      x->resize(T * C);
      for (float& e : *x) e = float(g.normal());
    }
    out.resize(T * C); dq.resize(T * C); dk.resize(T * C); dv.resize(T * C);
    saved.resize(attention_saved_size(T, H));
    scratch.resize(attention_scratch_size(T, D, score.factors));
  }
  void forward() { attention_forward<float>(out, saved, scratch, q, k, v, T, T, C, H, score); }
  void backward() { attention_backward<float>(dq, dk, dv, scratch, dout, saved, q, k, v, out, T, T, C, H, score); }
  // multiply-adds of the causal scores and the weighted sum of values, 2 FLOPs each
  double forward_flops() const { return double(H) * double(T) * double(T + 1) / 2 * 4 * double(D); }
};

void run(benchmark::State& state, bool tensor, bool with_backward) {
  buffers b(std::size_t(state.range(0)), std::size_t(state.range(1)), tensor);
  for (auto _ : state) {
    b.forward();
    if (with_backward) b.backward();
    benchmark::DoNotOptimize(b.out.data());
    benchmark::DoNotOptimize(b.dq.data());
    benchmark::ClobberMemory();
  }
  // the backward does about twice the forward's work (scores' and values' gradients)
  const double flops = b.forward_flops() * (with_backward ? 3 : 1);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void attention_dot_forward(benchmark::State& s) { run(s, false, false); }
void attention_tensor_forward(benchmark::State& s) { run(s, true, false); }
void attention_dot_forward_backward(benchmark::State& s) { run(s, false, true); }
void attention_tensor_forward_backward(benchmark::State& s) { run(s, true, true); }

// The two side by side: each iteration times one dot and one tensor forward+backward, in
// alternating order and on the very same buffers (only the score differs), so that neither a
// slow spell of a shared machine nor where the allocator put each set of arrays favours one;
// the counter is the ratio of their median times (compare.py reports this one).
void attention_tensor_over_dot(benchmark::State& state) {
  const std::size_t D = std::size_t(state.range(1));
  buffers b(std::size_t(state.range(0)), D, true);  // scratch sized for the tensor score, the larger
  const attention_score dot = attention_score::of(score_kind::dot, D), tensor = attention_score::of(score_kind::tensor, D);
  std::vector<double> td, tt;
  auto timed = [&b](attention_score score) {
    b.score = score;
    const auto t0 = std::chrono::steady_clock::now();
    b.forward();
    b.backward();
    benchmark::DoNotOptimize(b.dq.data());
    benchmark::ClobberMemory();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (auto _ : state) {
    if (td.size() % 2 == 0) { td.push_back(timed(dot)); tt.push_back(timed(tensor)); }
    else { tt.push_back(timed(tensor)); td.push_back(timed(dot)); }
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  state.counters["tensor/dot"] = median(tt) / median(td);
}

// One decoding step: a single query row (the newest position) against Tk cached keys and values,
// forward only, as inference runs it once per layer per letter (the seed's rows see 29–36 keys).
void attention_decode(benchmark::State& state, bool tensor) {
  const std::size_t Tk = std::size_t(state.range(0)), D = std::size_t(state.range(1));
  buffers b(Tk, D, tensor);
  const std::span<const float> q_last = std::span<const float>(b.q).last(b.C);
  for (auto _ : state) {
    attention_forward<float>(std::span(b.out).first(b.C), b.saved, b.scratch, q_last, b.k, b.v, 1, Tk, b.C, b.H, b.score);
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
}
void attention_dot_decode(benchmark::State& s) { attention_decode(s, false); }
void attention_tensor_decode(benchmark::State& s) { attention_decode(s, true); }

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "D"});
  for (long T : {36, 128, 512, 1024})
    for (long D : {8, 64}) b->Args({T, D});
}
}  // namespace

BENCHMARK(attention_dot_forward)->Apply(sizes);
BENCHMARK(attention_tensor_forward)->Apply(sizes);
BENCHMARK(attention_dot_forward_backward)->Apply(sizes);
BENCHMARK(attention_tensor_forward_backward)->Apply(sizes);
BENCHMARK(attention_tensor_over_dot)->Apply(sizes);
BENCHMARK(attention_dot_decode)->ArgNames({"Tk", "D"})->Args({30, 8})->Args({30, 64})->Args({128, 8});
BENCHMARK(attention_tensor_decode)->ArgNames({"Tk", "D"})->Args({30, 8})->Args({30, 64})->Args({128, 8});
BENCHMARK_MAIN();

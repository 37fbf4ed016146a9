// SPDX-License-Identifier: MIT
// optim.hpp: Adam with bias correction, learning-rate schedules, gradient-norm clipping.
// All of them act on flat spans (basic_parameters keeps every parameter in one buffer).
// Not here: SGD variants, weight-decay flavours, parameter groups with their own betas.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "ops.hpp"
#include "tensor.hpp"

namespace purevlm {

// SPEC.md's betas are the defaults.
struct adam_config {
  double beta1 = 0.85, beta2 = 0.99, eps = 1e-8;
};

template <std::floating_point T>
class basic_adam {
public:
  basic_adam(std::size_t n, adam_config cfg = {}) : cfg_(cfg), m_(n), v_(n) {}

  // One step: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², p ← p − lr · m̂ / (√v̂ + eps),
  // with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t) and t counting from 1.
  void step(std::span<T> params, std::span<const T> grads, double lr) {
    check(params, grads, 0, m_.size());  // before the count moves: a refused step leaves no trace
    begin_step();
    update(params, grads, lr, 0, m_.size());
  }
  // The same step in pieces, for threads that share the work: begin_step() once, then update()
  // over ranges [lo, hi) that cover the parameters (every element's update is independent).
  void begin_step() { ++t_; }
  void update(std::span<T> params, std::span<const T> grads, double lr, std::size_t lo, std::size_t hi) {
    check(params, grads, lo, hi);
    const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2), eps = T(cfg_.eps);
    const T c1 = T(1) / T(1 - std::pow(cfg_.beta1, double(t_))), c2 = T(1) / T(1 - std::pow(cfg_.beta2, double(t_)));
    const T a = T(lr);
    for (std::size_t i = lo; i < hi; ++i) {
      m_[i] = b1 * m_[i] + (T(1) - b1) * grads[i];
      v_[i] = b2 * v_[i] + (T(1) - b2) * grads[i] * grads[i];
      params[i] -= a * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + eps);
    }
  }
  std::int64_t steps() const { return t_; }
  // State for checkpoints: both moments and the step count.
  std::span<T> first_moment() { return m_; }
  std::span<T> second_moment() { return v_; }
  std::span<const T> first_moment() const { return m_; }
  std::span<const T> second_moment() const { return v_; }
  void set_steps(std::int64_t t) { t_ = t; }

private:
  void check(std::span<T> params, std::span<const T> grads, std::size_t lo, std::size_t hi) const {
    if (params.size() != m_.size() || grads.size() != m_.size() || lo > hi || hi > m_.size())
      throw error("adam: " + std::to_string(params.size()) + " parameters and " + std::to_string(grads.size()) +
                  " gradients (range " + std::to_string(lo) + ".." + std::to_string(hi) + ") for a state of " +
                  std::to_string(m_.size()));
  }
  adam_config cfg_;
  std::vector<T> m_, v_;
  std::int64_t t_ = 0;
};

// Learning rate at step s of a run of `total` steps (s from 0): `warmup` steps rising linearly
// from 0, then the chosen decay from `lr` to `min_lr` at the end.
struct schedule {
  enum class kind { constant, linear, cosine };
  kind decay = kind::linear;
  double lr = 0.003, min_lr = 0.0;
  std::int64_t warmup = 0, total = 1;

  double at(std::int64_t s) const {
    if (s < warmup) return lr * double(s + 1) / double(warmup);
    const double span = double(std::max<std::int64_t>(total - warmup, 1));
    const double p = std::min(1.0, double(s - warmup) / span);  // progress through the decay
    switch (decay) {
      case kind::constant: return lr;
      case kind::linear: return min_lr + (lr - min_lr) * (1.0 - p);
      case kind::cosine: return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    }
    return lr;
  }
};

// Euclidean norm, accumulated in double so long float buffers lose nothing, in eight partial
// sums so the loop vectorizes (one running sum is a chain of dependent adds: at batch 1 it was
// the optimizer's slowest line).
template <std::floating_point T>
double l2_norm(std::span<const T> g) {
  double acc[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= g.size(); i += 8)
    for (std::size_t j = 0; j < 8; ++j) acc[j] += double(g[i + j]) * double(g[i + j]);
  double s = detail::tree_sum(acc);
  for (; i < g.size(); ++i) s += double(g[i]) * double(g[i]);
  return std::sqrt(s);
}

// Scales g to norm max_norm when its norm exceeds it; returns the norm before clipping.
template <std::floating_point T>
double clip_grad_norm(std::span<T> g, double max_norm) {
  const double n = l2_norm<T>(g);
  if (n > max_norm) for (T& v : g) v = T(double(v) * (max_norm / n));
  return n;
}

}  // namespace purevlm

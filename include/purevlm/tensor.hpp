// SPDX-License-Identifier: MIT
// tensor.hpp: the smallest pieces everything else stands on: the error type, a seeded RNG whose
// stream is the same on every platform, and basic_tensor<T> (a shape plus contiguous row-major
// storage). No views, no broadcasting, no expression templates: kernels take std::span.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace purevlm {

// Every error purevlm raises. The message names the shape, path or byte offset involved.
class error : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
inline std::string shape_string(std::span<const std::size_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}
// Storage that starts on a 64-byte boundary (a cache line, one AVX-512 vector): a vector load
// across two lines costs two. The parameters and the tape's arenas use it; with malloc's 16-byte
// alignment the weight rows of a decoding step sat 16 bytes off a line, and every other 8-float
// load straddled two (a 32x128 matrix times a vector took 1.18x the time).
template <class T>
struct aligned_allocator {
  using value_type = T;
  aligned_allocator() = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const aligned_allocator<U>&) const { return true; }
};
template <class T>
using aligned_vector = std::vector<T, aligned_allocator<T>>;
}  // namespace detail

// xoshiro256** seeded through splitmix64. std::normal_distribution differs between standard
// libraries; this generator and its Box-Muller normals give the same numbers everywhere, and its
// whole state is four words, so checkpoints can store it.
class rng {
public:
  explicit rng(std::uint64_t seed = 0) { reseed(seed); }
  void reseed(std::uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)); }
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0,1]: log is finite
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  std::array<std::uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<std::uint64_t, 4>& s) { s_ = s; }

private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

// A shape and contiguous row-major storage; nothing more.
template <std::floating_point T>
class basic_tensor {
public:
  basic_tensor() = default;
  explicit basic_tensor(std::vector<std::size_t> shape) : shape_(std::move(shape)) {
    std::size_t n = 1;
    for (std::size_t d : shape_) n *= d;
    data_.assign(n, T(0));
  }
  static basic_tensor normal(std::vector<std::size_t> shape, T std, rng& g) {
    basic_tensor t(std::move(shape));
    for (T& v : t.data_) v = static_cast<T>(g.normal()) * std;
    return t;
  }

  const std::vector<std::size_t>& shape() const { return shape_; }
  std::size_t rank() const { return shape_.size(); }
  std::size_t size() const { return data_.size(); }
  std::size_t dim(std::size_t i) const { return shape_.at(i); }
  std::span<T> span() { return data_; }
  std::span<const T> span() const { return data_; }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  // Row-major 2-D access, the only multi-index purevlm needs.
  T& operator()(std::size_t r, std::size_t c) { return data_[r * shape_.back() + c]; }
  const T& operator()(std::size_t r, std::size_t c) const { return data_[r * shape_.back() + c]; }
  std::string shape_string() const { return detail::shape_string(shape_); }

private:
  std::vector<std::size_t> shape_;
  std::vector<T> data_;
};

using tensor = basic_tensor<float>;

// All of a model's parameters in one flat buffer, with a parallel flat gradient buffer and a
// table of named [rows, cols] entries. One buffer makes Adam, clipping, checkpoints and the
// reduction of per-thread gradients single loops over contiguous memory.
template <std::floating_point T>
class basic_parameters {
public:
  struct entry {
    std::string name;
    std::size_t offset = 0, rows = 0, cols = 0;
    std::size_t size() const { return rows * cols; }
  };

  // Adds a [rows, cols] parameter drawn from Normal(0, std); returns its index.
  std::size_t add(std::string name, std::size_t rows, std::size_t cols, T std, rng& g) {
    if (rows == 0 || cols == 0) throw error("parameter " + name + ": empty shape " +
                                             detail::shape_string(std::array{rows, cols}));
    if (find(name)) throw error("parameter " + name + ": name used twice");
    entries_.push_back({std::move(name), values_.size(), rows, cols});
    const auto init = basic_tensor<T>::normal({rows, cols}, std, g);
    values_.insert(values_.end(), init.span().begin(), init.span().end());
    grads_.resize(values_.size());
    return entries_.size() - 1;
  }
  const std::vector<entry>& entries() const { return entries_; }
  const entry& at(std::size_t i) const { return entries_.at(i); }
  const entry* find(const std::string& name) const {
    for (const auto& e : entries_) if (e.name == name) return &e;
    return nullptr;
  }
  std::size_t count() const { return values_.size(); }
  std::span<T> values() { return values_; }
  std::span<const T> values() const { return values_; }
  std::span<T> grads() { return grads_; }
  std::span<const T> grads() const { return grads_; }
  std::span<T> value(std::size_t i) { return std::span<T>(values_).subspan(entries_[i].offset, entries_[i].size()); }
  std::span<const T> value(std::size_t i) const {
    return std::span<const T>(values_).subspan(entries_[i].offset, entries_[i].size());
  }
  std::span<T> grad(std::size_t i) { return std::span<T>(grads_).subspan(entries_[i].offset, entries_[i].size()); }
  void zero_grads() { std::fill(grads_.begin(), grads_.end(), T(0)); }

private:
  std::vector<entry> entries_;
  detail::aligned_vector<T> values_, grads_;
};

}  // namespace purevlm

// SPDX-License-Identifier: MIT
// Small helpers shared by the tests.
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <purevlm/tape.hpp>

#include "gradcheck.hpp"

namespace purevlm::test {

// A fixed random linear read-out Σ r ⊙ y, so every output element gets its own upstream gradient.
template <std::floating_point T>
var readout(basic_tape<T>& t, var y, std::uint64_t seed = 99) {
  rng g(seed);
  std::vector<T> r(t.size(y));
  for (T& v : r) v = T(g.normal());
  return dot(t, y, t.input(r, t.rows(y), t.cols(y)));
}

// A double-precision store with one [rows, cols] entry per name, Normal(0, 1) values.
struct shaped {
  const char* name;
  std::size_t rows, cols;
};
inline basic_parameters<double> store(std::initializer_list<shaped> shapes, std::uint64_t seed = 1) {
  basic_parameters<double> ps;
  rng g(seed);
  for (const auto& s : shapes) ps.add(s.name, s.rows, s.cols, 1.0, g);
  return ps;
}

// A fresh directory for one test's files, removed with everything in it at the end.
struct temp_dir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("purevlm_test_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
  temp_dir() { std::filesystem::create_directories(path); }
  ~temp_dir() { std::filesystem::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string at(const std::string& name) const { return (path / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return at(name);
  }
};

// The message of the purevlm::error that f throws, or "no error".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const purevlm::error& e) {
    return e.what();
  }
  return "no error";
}
inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

#define PUREVLM_REQUIRE_GRADCHECK(result, tol)                              \
  do {                                                                      \
    const auto& r_ = (result);                                              \
    INFO("worst at " << r_.where << " over " << r_.checked << " checked");  \
    REQUIRE(r_.checked > 0);                                                \
    REQUIRE(r_.worst <= (tol));                                             \
  } while (0)

}  // namespace purevlm::test

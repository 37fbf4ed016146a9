// SPDX-License-Identifier: MIT
// Reads the golden fixture format (tests/data/golden_seed_model.README.md): '#' comments, then
// records of two lines, "NAME NDIM D0 D1 ..." and the values row-major.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <purevlm/tensor.hpp>

namespace purevlm::test {

struct record {
  std::vector<std::size_t> shape;
  std::vector<double> values;
};

inline std::map<std::string, record> read_fixture(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw error("fixture: cannot open " + path);
  std::map<std::string, record> out;
  std::string header, values;
  while (std::getline(in, header)) {
    if (header.empty() || header[0] == '#') continue;
    if (!std::getline(in, values)) throw error("fixture: " + path + ": record without values: " + header);
    std::istringstream h(header), v(values);
    std::string name;
    std::size_t ndim = 0, n = 1;
    h >> name >> ndim;
    record r;
    r.shape.resize(ndim);
    for (auto& d : r.shape) { h >> d; n *= d; }
    r.values.resize(n);
    for (auto& x : r.values) v >> x;
    if (!v) throw error("fixture: " + path + ": record " + name + " holds fewer than " + std::to_string(n) + " values");
    out[name] = std::move(r);
  }
  return out;
}

}  // namespace purevlm::test

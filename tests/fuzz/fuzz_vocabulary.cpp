// SPDX-License-Identifier: MIT
// libFuzzer: class names (one per line) → vocabulary; every name must encode and decode to
// itself and be found as its own class.
#include "common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> names;
  std::string line;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') { names.push_back(line); line.clear(); }
    else line += char(data[i]);
  }
  names.push_back(line);
  try {
    const purevlm::vocabulary v(names);
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto ids = v.encode(names[k]);
      fuzz::require(ids.size() == names[k].size() + 2 && ids.front() == v.bos() && ids.back() == v.eos());
      fuzz::require(v.decode(std::span(ids).subspan(1, ids.size() - 2)) == names[k]);
      const int c = v.class_of(names[k]);
      fuzz::require(c >= 0 && names[std::size_t(c)] == names[k]);
    }
  } catch (const purevlm::error&) {
  }
  return 0;
}

// SPDX-License-Identifier: MIT
// data/words.hpp: the character vocabulary built from a data set's class names. The distinct
// characters of the names, sorted, get ids 0..n-1, then BOS = n and EOS = n+1: for the digit
// names zero..nine that is SPEC.md's 15 letters + 2 = 17 tokens. Fashion-MNIST's names
// ("ankle boot", "t-shirt/top") work the same way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../tensor.hpp"

namespace purevlm {

inline std::vector<std::string> mnist_class_names() {
  return {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
}
inline std::vector<std::string> fashion_mnist_class_names() {
  return {"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"};
}

class vocabulary {
public:
  vocabulary() = default;
  explicit vocabulary(std::vector<std::string> class_names) : names_(std::move(class_names)) {
    if (names_.empty()) throw error("vocabulary: no class names");
    for (const auto& n : names_) {
      if (n.empty()) throw error("vocabulary: an empty class name");
      chars_ += n;
    }
    std::sort(chars_.begin(), chars_.end());
    chars_.erase(std::unique(chars_.begin(), chars_.end()), chars_.end());
  }
  std::size_t size() const { return chars_.size() + 2; }
  std::int32_t bos() const { return std::int32_t(chars_.size()); }
  std::int32_t eos() const { return std::int32_t(chars_.size() + 1); }
  const std::vector<std::string>& class_names() const { return names_; }
  // Longest encoded name: BOS + letters + EOS.
  std::size_t max_text_len() const {
    std::size_t m = 0;
    for (const auto& n : names_) m = std::max(m, n.size() + 2);
    return m;
  }
  // "five" → [BOS f i v e EOS]
  std::vector<std::int32_t> encode(const std::string& word) const {
    std::vector<std::int32_t> ids{bos()};
    for (char c : word) {
      const auto at = chars_.find(c);
      if (at == std::string::npos) throw error("vocabulary: character '" + std::string(1, c) + "' of \"" + word + "\" is not in it");
      ids.push_back(std::int32_t(at));
    }
    ids.push_back(eos());
    return ids;
  }
  // Letters back to text; BOS/EOS and unknown ids are dropped.
  std::string decode(std::span<const std::int32_t> ids) const {
    std::string s;
    for (std::int32_t id : ids) if (id >= 0 && std::size_t(id) < chars_.size()) s += chars_[std::size_t(id)];
    return s;
  }
  // The class whose name is `word`, or -1.
  int class_of(const std::string& word) const {
    for (std::size_t i = 0; i < names_.size(); ++i) if (names_[i] == word) return int(i);
    return -1;
  }
  const std::string& characters() const { return chars_; }

private:
  std::vector<std::string> names_;
  std::string chars_;
};

}  // namespace purevlm

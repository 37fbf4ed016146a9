// SPDX-License-Identifier: MIT
// Shared by the libFuzzer harnesses: a purevlm::error is the right answer to bad bytes; anything
// else (a crash, a sanitizer report, an allocation past -malloc_limit_mb) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <purevlm/vlm.hpp>

namespace fuzz {
inline std::istringstream stream(const std::uint8_t* data, std::size_t size) {
  return std::istringstream(std::string(reinterpret_cast<const char*>(data), size));
}
// A checkpoint-shaped property broken: stop so libFuzzer keeps the input.
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
// The small model the checkpoint corpus is saved from, so inputs stay a few kilobytes.
inline purevlm::vlm_config tiny_config() {
  purevlm::vlm_config c;
  c.preset = "tiny";
  c.tokenizer = {.pixels = 16, .bae_rank = 2, .tensor_tokens = 2, .direct = {{2, 2}}};
  c.vision_positions = 2;
  c.gpt = {.n_embd = 8, .n_head = 2, .mlp_hidden = 8};
  return c;
}
}  // namespace fuzz

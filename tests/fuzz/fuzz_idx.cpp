// SPDX-License-Identifier: MIT
// libFuzzer: the IDX readers (images and labels), raw or gzip (when built with zlib).
#include "common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto in = fuzz::stream(data, size);
    const auto im = purevlm::read_idx_images(in, "fuzz-images");
    fuzz::require(im.pixels.size() == im.count * im.rows * im.cols);
  } catch (const purevlm::error&) {
  }
  try {
    auto in = fuzz::stream(data, size);
    (void)purevlm::read_idx_labels(in, "fuzz-labels");
  } catch (const purevlm::error&) {
  }
  return 0;
}

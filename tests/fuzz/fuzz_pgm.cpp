// SPDX-License-Identifier: MIT
// libFuzzer: PGM (P2/P5) through the MNIST-style preparation a user's picture goes through.
#include "common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto in = fuzz::stream(data, size);
    const purevlm::gray_image img = purevlm::read_pgm(in, "fuzz.pgm");
    fuzz::require(img.pixels.size() == img.width * img.height);
    const auto digit = purevlm::mnist_style(img);
    fuzz::require(digit.size() == 784);
    std::vector<float> x(196);
    purevlm::prepare<float>(x, digit);
  } catch (const purevlm::error&) {
  }
  return 0;
}

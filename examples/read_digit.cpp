// SPDX-License-Identifier: MIT
// read_digit: the smallest use of purevlm. Load a trained model, read a picture, print the word.
//   read_digit MODEL.ckpt PICTURE.(pgm|png)
// (Train one with `mnist_vlm train`; PNG needs libpng at build time.)
#include <purevlm/vlm.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: read_digit MODEL.ckpt PICTURE.pgm\n");
    return 2;
  }
  try {
    const purevlm::vlm model = purevlm::load_model(argv[1]);               // any config, one call
    const purevlm::reading r = model.read(purevlm::read_image(argv[2]));  // any size, any contrast
    std::printf("%s (p = %.3f)\n", r.word.c_str(), r.probability);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "read_digit: %s\n", e.what());
    return 1;
  }
}

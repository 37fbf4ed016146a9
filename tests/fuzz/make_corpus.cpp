// SPDX-License-Identifier: MIT
// Writes the seed corpus of each fuzzer into DIR/{idx,pgm,checkpoint,vocabulary}: small valid
// inputs the fuzzers start from. Run once to refresh tests/fuzz/corpus after a format change:
//   ./build-fuzz/tests/fuzz/make_fuzz_corpus tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common.hpp"

namespace {
void write(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}
std::string be32(std::uint32_t v) { return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)}; }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) { std::fprintf(stderr, "usage: make_fuzz_corpus DIR\n"); return 2; }
  const std::filesystem::path dir = argv[1];
  std::string px;
  for (int i = 0; i < 2 * 3 * 4; ++i) px += char(i * 10);
  write(dir / "idx" / "images", be32(2051) + be32(2) + be32(3) + be32(4) + px);
  write(dir / "idx" / "labels", be32(2049) + be32(3) + std::string("\x01\x07\x09", 3));
  write(dir / "pgm" / "p2.pgm", "P2\n# a comment\n4 3\n10\n0 1 2 3\n4 5 6 7\n8 9 10 0\n");
  write(dir / "pgm" / "p5.pgm", "P5 3 2 255\n" + std::string("\x00\x80\xff\x10\x20\x30", 6));
  write(dir / "pgm" / "p5-16bit.pgm", "P5 2 1 65535\n" + std::string("\x12\x34\xff\xff", 4));
  write(dir / "vocabulary" / "digits", "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine");
  // a checkpoint of the small "tiny" model: the fuzzer is given its payload (after the header)
  purevlm::vlm m(fuzz::tiny_config(), purevlm::vocabulary(purevlm::mnist_class_names()), 1);
  purevlm::basic_adam<float> adam(m.parameter_count());
  const std::string tmp = (dir / "tiny.ckpt").string();
  purevlm::save_checkpoint(tmp, m, adam, m.init_rng(), {.step = 1, .total_steps = 2, .seed = 1, .batch = 1});
  std::ifstream in(tmp, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), {});
  write(dir / "checkpoint" / "tiny-payload", file.substr(28));
  std::filesystem::remove(tmp);
  std::printf("wrote the seed corpus into %s\n", dir.c_str());
  return 0;
}

// Compiled twice into one program (tests/CMakeLists.txt): once with PUREVLM_HAS_ZLIB and once
// without, the functions named by READERS (with_zlib / without_zlib). Neither has libpng.
#include <sstream>

#include <purevlm/data/idx.hpp>
#include <purevlm/data/image.hpp>

#define PUREVLM_ODR_JOIN(a, b) a##b
#define PUREVLM_ODR_NAME(a, b) PUREVLM_ODR_JOIN(a, b)

std::string PUREVLM_ODR_NAME(labels_, READERS)(const std::string& bytes) {
  std::istringstream in(bytes);
  try {
    return "read " + std::to_string(purevlm::read_idx_labels(in, "labels.gz").size()) + " labels";
  } catch (const purevlm::error& e) {
    return e.what();
  }
}

// a PNG is refused with a message that says how to convert it
std::string PUREVLM_ODR_NAME(png_, READERS)(const std::string& path) {
  try {
    return "read " + std::to_string(purevlm::read_image(path).width) + " columns";
  } catch (const purevlm::error& e) {
    return e.what();
  }
}

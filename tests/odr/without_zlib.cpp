// Compiled without PUREVLM_HAS_ZLIB: the same header, the same call.
#include <sstream>

#include <purevlm/data/idx.hpp>

std::string labels_without_zlib(const std::string& bytes) {
  std::istringstream in(bytes);
  try {
    return "read " + std::to_string(purevlm::read_idx_labels(in, "labels.gz").size()) + " labels";
  } catch (const purevlm::error& e) {
    return e.what();
  }
}

#include <purevlm/data/image.hpp>

// Nor libpng here: a PNG is refused with a message that says how to convert it.
std::string png_without_libpng(const std::string& path) {
  try {
    return "read " + std::to_string(purevlm::read_image(path).width) + " columns";
  } catch (const purevlm::error& e) {
    return e.what();
  }
}

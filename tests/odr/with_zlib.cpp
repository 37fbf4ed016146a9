// Compiled with PUREVLM_HAS_ZLIB: reads gzip IDX.
#include <sstream>

#include <purevlm/data/idx.hpp>

std::string labels_with_zlib(const std::string& bytes) {
  std::istringstream in(bytes);
  try {
    return "read " + std::to_string(purevlm::read_idx_labels(in, "labels.gz").size()) + " labels";
  } catch (const purevlm::error& e) {
    return e.what();
  }
}

// Two translation units of one program include the IDX reader, one with zlib and one without.
// (The second has no libpng either: a PNG is refused with a HINT.) Each must keep its own behaviour: were the reader one set of inline functions whose bodies
// differ by PUREVLM_HAS_ZLIB (an ODR violation), the linker would keep one body for both.
#include <cstdio>
#include <string>

std::string labels_with_zlib(const std::string& bytes);
std::string labels_without_zlib(const std::string& bytes);
std::string png_without_zlib(const std::string& path);  // neither translation unit has libpng

int main() {
  const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63, 0x60, 0xe0, 0x60, 0x64, 0x60, 0x60, 0x60, 0x66, 0x64, 0xe7, 0x04, 0x00, 0xd0, 0xf8, 0x1f, 0x39, 0x0b, 0x00, 0x00, 0x00};  // gzip of an IDX label file of 3 labels
  const std::string bytes(reinterpret_cast<const char*>(gz), sizeof gz);
  const std::string a = labels_with_zlib(bytes), b = labels_without_zlib(bytes);
  std::printf("with zlib: %s\nwithout zlib: %s\n", a.c_str(), b.c_str());
  const std::string png = png_without_zlib(PUREVLM_TEST_DATA "/png/gray8.png");
  std::printf("PNG without libpng: %s\n", png.c_str());
  const bool ok = a == "read 3 labels" && b.find("built without zlib") != std::string::npos &&
                  png.find("built without libpng. HINT: convert it to PGM") != std::string::npos;
  std::printf("%s\n", ok ? "each translation unit kept its own reader" : "FAILED: one reader served both");
  return ok ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// data/idx.hpp: the IDX format of MNIST and Fashion-MNIST (big-endian header: magic 2051 for
// images with count, rows, cols; 2049 for labels with count; then uint8 payload). Reads raw IDX
// from any stream or path; gzip (.gz) too when the including program defines PUREVLM_HAS_ZLIB and
// links zlib — the library itself depends on nothing. Every error names the source and the byte
// offset; no allocation is made before the header's sizes are checked, and the payload is read
// in chunks, so memory follows the bytes that exist, not the sizes a header claims.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <istream>
#include <string>
#include <vector>

#include "../tensor.hpp"
#include "optional.hpp"

#if defined(PUREVLM_HAS_ZLIB)
#include <zlib.h>
#endif

namespace purevlm {

struct idx_images {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count · rows · cols, row-major
  std::span<const std::uint8_t> image(std::size_t i) const { return {pixels.data() + i * rows * cols, rows * cols}; }
};

inline namespace PUREVLM_IO_NAMESPACE {  // with or without zlib: see optional.hpp
namespace idx_detail {  // (not "detail": that name would be ambiguous beside purevlm::detail)

// Bytes from a stream, inflated on the fly when they start with the gzip magic 1f 8b.
class idx_source {
public:
  idx_source(std::istream& in, std::string name) : in_(in), name_(std::move(name)) {
    const int a = in_.get(), b = in_.peek();
    if (a == std::char_traits<char>::eof()) throw error(name_ + ": empty file (offset 0)");
    in_.unget();
    gzip_ = a == 0x1f && b == 0x8b;
#if defined(PUREVLM_HAS_ZLIB)
    if (gzip_ && inflateInit2(&z_, 15 + 16) != Z_OK) throw error(name_ + ": cannot start gzip decoding");
#else
    if (gzip_)
      throw error(name_ + ": is gzip-compressed and this program was built without zlib. HINT: gunzip it, "
                          "or install zlib (Debian: zlib1g-dev) and rebuild");
#endif
  }
  ~idx_source() {
#if defined(PUREVLM_HAS_ZLIB)
    if (gzip_) inflateEnd(&z_);
#endif
  }
  idx_source(const idx_source&) = delete;
  idx_source& operator=(const idx_source&) = delete;

  // Reads up to n bytes into out; returns how many arrived (fewer only at the end of data).
  std::size_t read(std::uint8_t* out, std::size_t n) {
    std::size_t got = 0;
    if (!gzip_) {
      in_.read(reinterpret_cast<char*>(out), std::streamsize(n));
      got = std::size_t(in_.gcount());
    } else {
#if defined(PUREVLM_HAS_ZLIB)
      while (got < n && !done_) {
        if (z_.avail_in == 0) {
          in_.read(reinterpret_cast<char*>(buf_.data()), std::streamsize(buf_.size()));
          z_.next_in = buf_.data();
          z_.avail_in = uInt(in_.gcount());
          if (z_.avail_in == 0) break;  // the compressed stream is cut short
        }
        z_.next_out = out + got;
        z_.avail_out = uInt(n - got);
        const int rc = inflate(&z_, Z_NO_FLUSH);
        got = n - z_.avail_out;
        if (rc == Z_STREAM_END) done_ = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
          throw error(name_ + ": corrupt gzip data near decompressed offset " + std::to_string(offset_ + got));
      }
#endif
    }
    offset_ += got;
    return got;
  }
  std::uint32_t big_endian_u32(const char* what) {
    std::uint8_t b[4];
    if (read(b, 4) != 4)
      throw error(name_ + ": truncated header: no " + what + " at offset " + std::to_string(offset_));
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | b[3];
  }
  // The magic number at offset 0 must be `want`; a file of the other IDX kind is named as such.
  void expect_magic(std::uint32_t want, const char* kind) {
    const std::uint32_t magic = big_endian_u32("magic number");
    if (magic == want) return;
    std::string msg = name_ + ": not an IDX " + kind + " file: magic " + std::to_string(magic) +
                      " at offset 0, expected " + std::to_string(want);
    if (magic == 2049) msg += " (this is a label file)";
    if (magic == 2051) msg += " (this is an image file)";
    throw error(msg);
  }
  // Reads exactly n bytes of payload into out, then requires the data to end there. out grows
  // as the bytes arrive, a chunk at a time, so a header that promises more than the data holds
  // costs no more memory than the data that is really there.
  void payload(std::vector<std::uint8_t>& out, std::size_t n, const std::string& header_says) {
    constexpr std::size_t chunk = std::size_t(1) << 20;
    const std::size_t start = offset_;
    out.clear();
    while (out.size() < n) {
      const std::size_t have = out.size(), want = std::min(chunk, n - have);
      out.resize(have + want);
      if (read(out.data() + have, want) != want)
        throw error(name_ + ": truncated: the header says " + header_says + " (" + std::to_string(n) +
                    " bytes from offset " + std::to_string(start) + ") but the data ends at offset " + std::to_string(offset_));
    }
    std::uint8_t extra;
    if (read(&extra, 1) != 0)
      throw error(name_ + ": more data than the header's " + header_says + ": extra bytes at offset " +
                  std::to_string(offset_ - 1));
  }

private:
  std::istream& in_;
  std::string name_;
  bool gzip_ = false;
  std::size_t offset_ = 0;  // in the decompressed data
#if defined(PUREVLM_HAS_ZLIB)
  z_stream z_{};
  std::array<std::uint8_t, 1 << 16> buf_{};
  bool done_ = false;
#endif
};

inline std::ifstream open_binary(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  return f;
}

}  // namespace idx_detail

// Images: magic 2051. Dimensions past max_side, or a payload past max_bytes, are refused before
// anything is allocated; within the limits, memory grows only as the payload arrives.
inline idx_images read_idx_images(std::istream& in, const std::string& name, std::size_t max_side = 4096,
                                  std::size_t max_bytes = std::size_t(1) << 30) {
  idx_detail::idx_source src(in, name);
  src.expect_magic(2051, "image");
  idx_images out;
  out.count = src.big_endian_u32("image count");
  out.rows = src.big_endian_u32("row count");
  out.cols = src.big_endian_u32("column count");
  if (out.rows == 0 || out.cols == 0 || out.rows > max_side || out.cols > max_side)
    throw error(name + ": absurd image size " + std::to_string(out.rows) + "x" + std::to_string(out.cols) +
                " in the header at offset 8");
  const std::size_t bytes = out.count * out.rows * out.cols;
  if (bytes / out.rows / out.cols != out.count || bytes > max_bytes)
    throw error(name + ": the header's " + std::to_string(out.count) + " images of " + std::to_string(out.rows) + "x" +
                std::to_string(out.cols) + " exceed the " + std::to_string(max_bytes) + "-byte limit");
  src.payload(out.pixels, bytes, std::to_string(out.count) + " images");
  return out;
}
inline idx_images read_idx_images(const std::string& path) {
  auto f = idx_detail::open_binary(path);
  return read_idx_images(f, path);
}

// Labels: magic 2049.
inline std::vector<std::uint8_t> read_idx_labels(std::istream& in, const std::string& name,
                                                 std::size_t max_count = std::size_t(1) << 30) {
  idx_detail::idx_source src(in, name);
  src.expect_magic(2049, "label");
  const std::size_t count = src.big_endian_u32("label count");
  if (count > max_count) throw error(name + ": absurd label count " + std::to_string(count) + " at offset 4");
  std::vector<std::uint8_t> labels;
  src.payload(labels, count, std::to_string(count) + " labels");
  return labels;
}
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  auto f = idx_detail::open_binary(path);
  return read_idx_labels(f, path);
}

}  // inline namespace PUREVLM_IO_NAMESPACE

// A data set split: images with their labels, checked to agree.
struct labeled_images {
  idx_images images;
  std::vector<std::uint8_t> labels;
  std::size_t size() const { return labels.size(); }
};

inline namespace PUREVLM_IO_NAMESPACE {

// Reads <dir>/<split>-images-idx3-ubyte[.gz] and <dir>/<split>-labels-idx1-ubyte[.gz]
// (split: "train" or "t10k"), preferring the uncompressed files when both exist.
inline labeled_images read_idx_split(const std::string& dir, const std::string& split, std::size_t classes = 10) {
  auto pick = [&](const std::string& stem) {
    const std::string raw = dir + "/" + stem;
    return std::ifstream(raw).good() ? raw : raw + ".gz";
  };
  const std::string image_path = pick(split + "-images-idx3-ubyte"), label_path = pick(split + "-labels-idx1-ubyte");
  labeled_images d{read_idx_images(image_path), read_idx_labels(label_path)};
  if (d.images.count != d.labels.size())
    throw error(image_path + " holds " + std::to_string(d.images.count) + " images but " + label_path + " holds " +
                std::to_string(d.labels.size()) + " labels");
  for (std::size_t i = 0; i < d.labels.size(); ++i)
    if (d.labels[i] >= classes)
      throw error(label_path + ": label " + std::to_string(d.labels[i]) + " at offset " + std::to_string(8 + i) +
                  " is not one of the " + std::to_string(classes) + " classes");
  return d;
}
}  // inline namespace PUREVLM_IO_NAMESPACE

}  // namespace purevlm

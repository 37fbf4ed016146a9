// SPDX-License-Identifier: MIT
// checkpoint.hpp: a versioned binary file holding a training run: the preset and class names
// (which rebuild the architecture), the parameter table and values, Adam's moments and step, the
// init RNG, and where the run stands. A 64-bit FNV-1a checksum covers the payload. Files are
// written to a temporary name and renamed, so a crash never leaves half a checkpoint where a good
// one was. Layout (host byte order, little-endian on every machine purevlm targets):
//   "PUREVLM\x1a" | u32 version | u64 payload bytes | u64 checksum | payload
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "optim.hpp"
#include "model.hpp"

namespace purevlm {

// Where a training run stands, saved beside the weights so --resume continues it exactly.
struct run_state {
  std::int64_t step = 0, total_steps = 0;
  std::uint64_t seed = 0, batch = 1;
};

namespace detail {
inline constexpr char checkpoint_magic[8] = {'P', 'U', 'R', 'E', 'V', 'L', 'M', '\x1a'};
inline constexpr std::uint32_t checkpoint_version = 1;

inline std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) { h ^= c; h *= 0x100000001b3ull; }
  return h;
}

class byte_writer {
public:
  template <class V> void pod(const V& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) { pod(std::uint64_t(s.size())); out += s; }
  template <class V> void array(std::span<const V> a) { pod(std::uint64_t(a.size())); out.append(reinterpret_cast<const char*>(a.data()), a.size_bytes()); }
  std::string out;
};

class byte_reader {
public:
  byte_reader(const std::string& bytes, std::string name, std::size_t base) : b_(bytes), name_(std::move(name)), base_(base) {}
  template <class V> V pod() {
    V v;
    need(sizeof v, "a value");
    std::memcpy(&v, b_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string str() {
    const auto n = pod<std::uint64_t>();
    need(n, "a string");
    std::string s = b_.substr(at_, n);
    at_ += n;
    return s;
  }
  template <class V> void array_into(std::span<V> out, const char* what) {
    const auto n = pod<std::uint64_t>();
    if (n != out.size())
      throw error(name_ + ": " + what + " holds " + std::to_string(n) + " values at offset " + std::to_string(base_ + at_) +
                  ", the model has " + std::to_string(out.size()));
    need(out.size_bytes(), what);
    std::memcpy(out.data(), b_.data() + at_, out.size_bytes());
    at_ += out.size_bytes();
  }
  void need(std::size_t n, const char* what) const {
    if (n > b_.size() - at_)
      throw error(name_ + ": corrupt checkpoint: " + what + " of " + std::to_string(n) + " bytes at offset " +
                  std::to_string(base_ + at_) + " runs past the end");
  }
  bool done() const { return at_ == b_.size(); }

private:
  const std::string& b_;
  std::string name_;
  std::size_t base_, at_ = 0;
};
}  // namespace detail

// A checkpoint read and verified (magic, version, size, checksum), not yet applied to a model.
struct checkpoint {
  std::string path, preset;
  std::vector<std::string> class_names;
  std::string payload;  // the verified bytes
  std::size_t payload_offset = 0;
};

template <std::floating_point T>
void save_checkpoint(const std::string& path, const basic_vlm<T>& model, const basic_adam<T>& adam,
                     const rng& init, const run_state& run) {
  detail::byte_writer w;
  w.str(model.config().preset);
  w.pod(std::uint64_t(model.vocab().class_names().size()));
  for (const auto& n : model.vocab().class_names()) w.str(n);
  const auto& ps = model.parameters();
  w.pod(std::uint32_t(sizeof(T)));
  w.pod(std::uint64_t(ps.entries().size()));
  for (const auto& e : ps.entries()) { w.str(e.name); w.pod(std::uint64_t(e.rows)); w.pod(std::uint64_t(e.cols)); }
  w.array(ps.values());
  w.pod(adam.steps());
  w.array(adam.first_moment());
  w.array(adam.second_moment());
  for (std::uint64_t s : init.state()) w.pod(s);
  w.pod(run);

  std::string head(detail::checkpoint_magic, 8);
  detail::byte_writer h;
  h.pod(detail::checkpoint_version);
  h.pod(std::uint64_t(w.out.size()));
  h.pod(detail::fnv1a(w.out));
  head += h.out;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw error(tmp + ": cannot open for writing");
    f.write(head.data(), std::streamsize(head.size()));
    f.write(w.out.data(), std::streamsize(w.out.size()));
    f.flush();
    if (!f) { std::remove(tmp.c_str()); throw error(tmp + ": write failed (disk full?); " + path + " is unchanged"); }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw error(path + ": cannot replace it with " + tmp);
  }
}

inline checkpoint read_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  std::string head(28, '\0');
  f.read(head.data(), 28);
  const std::size_t got = std::size_t(f.gcount());
  if (got < 8 || std::memcmp(head.data(), detail::checkpoint_magic, 8) != 0)
    throw error(path + ": not a purevlm checkpoint (no PUREVLM magic at offset 0)");
  if (got < 28) throw error(path + ": truncated checkpoint: the header ends at offset " + std::to_string(got));
  std::uint32_t version;
  std::uint64_t size, sum;
  std::memcpy(&version, head.data() + 8, 4);
  std::memcpy(&size, head.data() + 12, 8);
  std::memcpy(&sum, head.data() + 20, 8);
  if (version != detail::checkpoint_version)
    throw error(path + ": checkpoint version " + std::to_string(version) + ", this purevlm reads version " +
                std::to_string(detail::checkpoint_version));
  f.seekg(0, std::ios::end);
  const std::uint64_t file_size = std::uint64_t(f.tellg());
  if (file_size - 28 < size)
    throw error(path + ": truncated checkpoint: the header promises " + std::to_string(size) + " payload bytes, the file holds " +
                std::to_string(file_size - 28));
  if (file_size - 28 > size)
    throw error(path + ": corrupt checkpoint: " + std::to_string(file_size - 28 - size) + " bytes past the end at offset " +
                std::to_string(28 + size));
  checkpoint c;
  c.path = path;
  c.payload_offset = 28;
  c.payload.resize(size);
  f.seekg(28);
  f.read(c.payload.data(), std::streamsize(size));
  if (detail::fnv1a(c.payload) != sum) throw error(path + ": corrupt checkpoint: checksum mismatch");
  detail::byte_reader r(c.payload, path, 28);
  c.preset = r.str();
  const auto n = r.pod<std::uint64_t>();
  if (n > 1000) throw error(path + ": corrupt checkpoint: " + std::to_string(n) + " class names");
  for (std::uint64_t i = 0; i < n; ++i) c.class_names.push_back(r.str());
  return c;
}

// Applies a verified checkpoint to a model built from the same preset and classes; throws if its
// architecture (the parameter table) differs. Adam's state and the run are restored when given.
template <std::floating_point T>
void restore(const checkpoint& c, basic_vlm<T>& model, std::type_identity_t<basic_adam<T>>* adam = nullptr, run_state* run = nullptr,
             rng* init = nullptr) {
  detail::byte_reader r(c.payload, c.path, c.payload_offset);
  auto wrong = [&](const std::string& what) {
    throw error(c.path + ": wrong architecture: " + what + " (checkpoint preset '" + c.preset + "', model preset '" +
                model.config().preset + "')\nHINT: a preset's architecture can change between purevlm versions (the "
                "'default' preset became a patch model in 0.2): retrain it with this version");
  };
  (void)r.str();
  for (auto n = r.pod<std::uint64_t>(); n > 0; --n) (void)r.str();
  if (c.class_names != model.vocab().class_names()) wrong("its class names differ from the model's");
  if (const auto bytes = r.pod<std::uint32_t>(); bytes != sizeof(T))
    wrong("it stores " + std::to_string(bytes * 8) + "-bit values, the model uses " + std::to_string(sizeof(T) * 8));
  auto& ps = model.parameters();
  const auto entries = r.pod<std::uint64_t>();
  if (entries != ps.entries().size())
    wrong(std::to_string(entries) + " parameter tensors, the model has " + std::to_string(ps.entries().size()));
  for (const auto& e : ps.entries()) {
    const std::string name = r.str();
    const auto rows = r.pod<std::uint64_t>(), cols = r.pod<std::uint64_t>();
    if (name != e.name || rows != e.rows || cols != e.cols)
      wrong("tensor " + name + " [" + std::to_string(rows) + "," + std::to_string(cols) + "] where the model has " + e.name +
            " [" + std::to_string(e.rows) + "," + std::to_string(e.cols) + "]");
  }
  std::vector<T> values(ps.count());
  r.array_into(std::span<T>(values), "parameters");
  const auto steps = r.pod<std::int64_t>();
  std::vector<T> m(ps.count()), v(ps.count());
  r.array_into(std::span<T>(m), "Adam first moment");
  r.array_into(std::span<T>(v), "Adam second moment");
  std::array<std::uint64_t, 4> state;
  for (auto& s : state) s = r.pod<std::uint64_t>();
  const auto saved_run = r.pod<run_state>();
  if (!r.done()) throw error(c.path + ": corrupt checkpoint: unread bytes after the run state");
  // everything parsed: only now change the model
  std::ranges::copy(values, ps.values().begin());
  if (adam) {
    std::ranges::copy(m, adam->first_moment().begin());
    std::ranges::copy(v, adam->second_moment().begin());
    adam->set_steps(steps);
  }
  if (init) init->set_state(state);
  if (run) *run = saved_run;
}

}  // namespace purevlm

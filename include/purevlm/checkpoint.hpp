// SPDX-License-Identifier: MIT
// checkpoint.hpp: a versioned binary file holding a model — the preset's name, the class names
// and the whole config (every field: a custom model rebuilds from the file alone), the parameter
// table and values — and, for a training run, Adam's moments and step, the init RNG and where the
// run stands. save_model()/load_model() are the one-call pair; save_checkpoint()/restore() the
// training run's. A 64-bit FNV-1a checksum covers the payload: it catches
// accidents, not crafted files, so every field is also checked on its own when read. Files are
// written to a fresh temporary name, flushed to disk (fsync) and renamed over the old one, and
// the directory is synced too, so neither a crash nor a power cut leaves half a checkpoint where
// a good one was. Layout (host byte order, little-endian on every machine purevlm targets):
//   "PUREVLM\x1a" | u32 version | u64 payload bytes | u64 checksum | payload
// payload (version 3): preset | class names | config | u32 value bytes | table | values |
//   u8 training | [Adam step, moments | RNG state | run state]. Version 2 (purevlm 0.2-0.3) lacked
//   the patch image's column count (its images were square); version 1 (0.1-0.2) had no config
//   (the preset's name stood for it) and no training byte (it always held the run).
#pragma once

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "optim.hpp"
#include "model.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif

namespace purevlm {

// Where a training run stands, saved beside the weights so --resume continues it exactly.
struct run_state {
  std::int64_t step = 0, total_steps = 0;
  std::uint64_t seed = 0, batch = 1;
};

namespace detail {
inline constexpr char checkpoint_magic[8] = {'P', 'U', 'R', 'E', 'V', 'L', 'M', '\x1a'};
inline constexpr std::uint32_t checkpoint_version = 3;

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
  // A string of at most max_len bytes: names are short, and a crafted length must not size anything.
  std::string str(std::size_t max_len = 256) {
    const auto n = pod<std::uint64_t>();
    if (n > max_len)
      throw error(name_ + ": corrupt checkpoint: a name of " + std::to_string(n) + " bytes at offset " +
                  std::to_string(base_ + at_ - 8) + " (at most " + std::to_string(max_len) + ")");
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
  void skip(std::size_t to) { need(to - at_, "a header"); at_ = to; }
  std::size_t offset() const { return base_ + at_; }

private:
  const std::string& b_;
  std::string name_;
  std::size_t base_, at_ = 0;
};

// Every field of a vlm_config but the preset's name, in the order checkpoints of `version` store
// them: f is called on each (and on the two lists), so one list serves writing and reading.
template <class C, class F>
void config_fields(C& c, std::uint32_t version, F&& f) {
  f(c.tokenizer.pixels); f(c.tokenizer.bae_rank); f(c.tokenizer.tensor_tokens); f(c.tokenizer.direct);
  f(c.tokenizer.reconstruction);
  f(c.patches.side);
  if (version >= 3) f(c.patches.cols);
  f(c.patches.layers);
  f(c.gpt.vocab); f(c.gpt.block_size); f(c.gpt.n_layer); f(c.gpt.n_embd); f(c.gpt.n_head); f(c.gpt.mlp_hidden);
  f(c.gpt.score); f(c.gpt.tensor_factors);
  f(c.vision); f(c.vision_positions); f(c.recon_weight);
  f(c.train.steps); f(c.train.batch); f(c.train.lr.decay); f(c.train.lr.lr); f(c.train.lr.min_lr); f(c.train.lr.warmup);
  f(c.train.lr.total); f(c.train.shuffle); f(c.train.clip_matrix); f(c.train.clip_global); f(c.train.shift);
}
inline void write_config(byte_writer& w, const vlm_config& c) {
  config_fields(c, checkpoint_version, [&](const auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<V, std::vector<direct_feature>>) {
      w.pod(std::uint64_t(v.size()));
      for (const auto& d : v) { w.pod(std::int64_t(d.degree)); w.pod(std::int64_t(d.count)); }
    } else if constexpr (std::is_same_v<V, std::vector<patch_layer>>) {
      w.pod(std::uint64_t(v.size()));
      for (const auto& l : v)
        for (std::size_t x : {l.kernel, l.channels, l.pad, l.pool, l.stride}) w.pod(std::int64_t(x));
    } else if constexpr (std::is_floating_point_v<V>) {
      w.pod(double(v));
    } else {
      w.pod(std::int64_t(v));  // integers, bools and enums
    }
  });
}
// Reads a config back, every value bounded: a crafted file must not size a model of terabytes.
inline vlm_config read_config(byte_reader& r, const std::string& name, std::uint32_t version) {
  vlm_config c;
  auto corrupt = [&](const std::string& what) { throw error(name + ": corrupt checkpoint: config " + what + " near offset " + std::to_string(r.offset())); };
  auto number = [&](std::int64_t max) {
    const auto x = r.pod<std::int64_t>();
    if (x < 0 || x > max) corrupt("value " + std::to_string(x) + " outside 0.." + std::to_string(max));
    return x;
  };
  constexpr std::int64_t dim = 1 << 16;  // any one size
  config_fields(c, version, [&](auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<V, std::vector<direct_feature>>) {
      v.resize(std::size_t(number(8)));
      for (auto& d : v) { d.degree = std::size_t(number(8)); d.count = std::size_t(number(dim)); }
    } else if constexpr (std::is_same_v<V, std::vector<patch_layer>>) {
      v.resize(std::size_t(number(16)));
      for (auto& l : v)
        for (std::size_t* x : {&l.kernel, &l.channels, &l.pad, &l.pool, &l.stride}) *x = std::size_t(number(dim));
    } else if constexpr (std::is_floating_point_v<V>) {
      v = V(r.pod<double>());
      if (!std::isfinite(v)) corrupt("value is not finite");
    } else if constexpr (std::is_same_v<V, bool>) {
      v = number(1) != 0;
    } else if constexpr (std::is_enum_v<V>) {
      v = V(number(2));
    } else {
      v = V(number(std::is_same_v<V, std::int64_t> ? (std::int64_t(1) << 40) : dim));
    }
  });
  const std::size_t F = c.tokenizer.features();
  if (c.vision != vision_mode::patches && (c.vision_positions == 0 || F % c.vision_positions != 0))
    corrupt("splits " + std::to_string(F) + " features into " + std::to_string(c.vision_positions) + " positions");
  if (c.gpt.n_layer > 64) corrupt("asks for " + std::to_string(c.gpt.n_layer) + " layers (at most 64)");
  if (c.parameter_count() > (std::size_t(1) << 22))  // purevlm's models are small by design
    corrupt("asks for " + std::to_string(c.parameter_count()) + " parameters (at most 4,194,304)");
  return c;
}

// Writes bytes to path atomically and durably: a fresh temporary name beside it (two writers
// never share one), fsync, rename over path, fsync of the directory; then removes what killed
// writers of path left (their temporaries). On failure path is unchanged.
inline void write_file_durably(const std::string& path, const std::string& bytes) {
#if defined(__unix__) || defined(__APPLE__)
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() + attempt);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && (errno != EEXIST || attempt > 100))
      throw error(tmp + ": cannot open for writing (" + std::strerror(errno) + "); " + path + " is unchanged");
  }
  auto fail = [&](const std::string& what) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw error(tmp + ": " + what + " (" + why + "); " + path + " is unchanged");
  };
  for (std::size_t at = 0; at < bytes.size();) {
    const auto n = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed (disk full?)");
    at += std::size_t(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw error(path + ": cannot replace it with " + tmp + " (" + why + ")");
  }
  if (const int d = ::open(dir.c_str(), O_RDONLY); d >= 0) {  // make the rename itself durable
    ::fsync(d);
    ::close(d);
  }
  // Temporaries of earlier writers of path that died mid-write (killed): path.tmp.PID.N whose
  // process no longer exists. A live writer's (kill(PID, 0) succeeds or is refused) stays.
  const std::string prefix = path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp.";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind(prefix, 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
#else
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw error(tmp + ": cannot open for writing");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) { std::remove(tmp.c_str()); throw error(tmp + ": write failed (disk full?); " + path + " is unchanged"); }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw error(path + ": cannot replace it with " + tmp);
  }
#endif
}
}  // namespace detail

// A checkpoint read and verified (magic, version, size, checksum, config), not yet applied to a model.
struct checkpoint {
  std::string path, preset;
  std::vector<std::string> class_names;
  vlm_config config;        // what builds the model: vlm(config, vocabulary(class_names))
  std::uint32_t version = 0;
  std::string payload;      // the verified bytes
  std::size_t payload_offset = 0, table_at = 0;  // the file offset of the payload; the table's in the payload
};

namespace detail {
// The model's part of a checkpoint: the payload up to and including the values.
template <std::floating_point T>
byte_writer model_payload(const basic_vlm<T>& model) {
  byte_writer w;
  w.str(model.config().preset);
  w.pod(std::uint64_t(model.vocab().class_names().size()));
  for (const auto& n : model.vocab().class_names()) w.str(n);
  write_config(w, model.config());
  const auto& ps = model.parameters();
  w.pod(std::uint32_t(sizeof(T)));
  w.pod(std::uint64_t(ps.entries().size()));
  for (const auto& e : ps.entries()) { w.str(e.name); w.pod(std::uint64_t(e.rows)); w.pod(std::uint64_t(e.cols)); }
  w.array(ps.values());
  return w;
}
inline void write_checkpoint_file(const std::string& path, const byte_writer& w) {
  std::string head(detail::checkpoint_magic, 8);
  detail::byte_writer h;
  h.pod(detail::checkpoint_version);
  h.pod(std::uint64_t(w.out.size()));
  h.pod(detail::fnv1a(w.out));
  head += h.out;
  write_file_durably(path, head + w.out);
}
}  // namespace detail

// A training run: the model, Adam's state, the init RNG and where the run stands.
template <std::floating_point T>
void save_checkpoint(const std::string& path, const basic_vlm<T>& model, const basic_adam<T>& adam,
                     const rng& init, const run_state& run) {
  auto w = detail::model_payload(model);
  w.pod(std::uint8_t(1));  // training state follows
  w.pod(adam.steps());
  w.array(adam.first_moment());
  w.array(adam.second_moment());
  for (std::uint64_t s : init.state()) w.pod(s);
  w.pod(run);
  detail::write_checkpoint_file(path, w);
}
// The model alone (its config, class names and weights): load_model() gives it back.
template <std::floating_point T>
void save_model(const std::string& path, const basic_vlm<T>& model) {
  auto w = detail::model_payload(model);
  w.pod(std::uint8_t(0));  // no training state
  detail::write_checkpoint_file(path, w);
}

// Reads and verifies a checkpoint from a seekable stream; `path` names it in errors.
inline checkpoint read_checkpoint(std::istream& f, const std::string& path) {
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
  if (version < 1 || version > detail::checkpoint_version)
    throw error(path + ": checkpoint version " + std::to_string(version) + ", this purevlm reads versions 1 to " +
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
  c.version = version;
  c.payload_offset = 28;
  c.payload.resize(size);
  f.seekg(28);
  f.read(c.payload.data(), std::streamsize(size));
  if (detail::fnv1a(c.payload) != sum) throw error(path + ": corrupt checkpoint: checksum mismatch");
  detail::byte_reader r(c.payload, path, 28);
  c.preset = r.str(64);
  const auto n = r.pod<std::uint64_t>();
  if (n == 0 || n > 1000) throw error(path + ": corrupt checkpoint: " + std::to_string(n) + " class names (1..1000)");
  // class names size the model (vocabulary, block): keep them to names, not megabytes
  for (std::uint64_t i = 0; i < n; ++i) c.class_names.push_back(r.str(64));
  c.config = version == 1 ? vlm_config::named(c.preset) : detail::read_config(r, path, version);  // 1: presets only
  c.config.preset = c.preset;
  c.table_at = r.offset() - c.payload_offset;
  return c;
}
inline checkpoint read_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw error(path + ": cannot open for reading");
  return read_checkpoint(f, path);
}

// Applies a verified checkpoint to a model built from the same config and classes; throws if its
// architecture (the parameter table) differs. Adam's state and the run are restored when given
// (a model-only file has none to give).
template <std::floating_point T>
void restore(const checkpoint& c, basic_vlm<T>& model, std::type_identity_t<basic_adam<T>>* adam = nullptr, run_state* run = nullptr,
             rng* init = nullptr) {
  detail::byte_reader r(c.payload, c.path, c.payload_offset);
  auto wrong = [&](const std::string& what) {
    throw error(c.path + ": wrong architecture: " + what + " (checkpoint preset '" + c.preset + "', model preset '" +
                model.config().preset + "')\nHINT: a preset's architecture can change between purevlm versions (the "
                "'default' preset became a patch model in 0.2): retrain it with this version");
  };
  if (c.class_names != model.vocab().class_names()) wrong("its class names differ from the model's");
  r.skip(c.table_at);  // preset, class names and config: read by read_checkpoint
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
  auto corrupt = [&](const std::string& what) { throw error(c.path + ": corrupt checkpoint: " + what); };
  const auto training = c.version == 1 ? std::uint8_t(1) : r.pod<std::uint8_t>();
  if (training > 1) corrupt("training byte " + std::to_string(training) + " at offset " + std::to_string(r.offset() - 1));
  std::int64_t steps = 0;
  std::vector<T> m, v;
  std::array<std::uint64_t, 4> state{1, 0, 0, 0};
  std::size_t run_at = 0;
  run_state saved_run{.batch = 1};
  if (training) {
    steps = r.pod<std::int64_t>();
    m.resize(ps.count());
    v.resize(ps.count());
    r.array_into(std::span<T>(m), "Adam first moment");
    r.array_into(std::span<T>(v), "Adam second moment");
    for (auto& s : state) s = r.pod<std::uint64_t>();
    run_at = r.offset();
    saved_run = r.pod<run_state>();
  } else if (adam || run) {
    throw error(c.path + ": holds a model only (save_model), no training run to resume");
  }
  if (!r.done()) throw error(c.path + ": corrupt checkpoint: unread bytes after the run state");
  // each field on its own: the checksum does not stop a crafted file
  auto first_bad = [](const std::vector<T>& a, bool non_negative) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!std::isfinite(a[i]) || (non_negative && a[i] < T(0))) return i;
    return a.size();
  };
  if (const auto i = first_bad(values, false); i < values.size())
    corrupt("parameter " + std::to_string(i) + " is " + std::to_string(values[i]) + ", not a finite number");
  if (const auto i = first_bad(m, false); i < m.size()) corrupt("Adam's first moment " + std::to_string(i) + " is not finite");
  if (const auto i = first_bad(v, true); i < v.size())
    corrupt("Adam's second moment " + std::to_string(i) + " is " + std::to_string(v[i]) + ", not a finite number ≥ 0");
  if (steps < 0) corrupt("Adam's step count is " + std::to_string(steps));
  if (state == std::array<std::uint64_t, 4>{}) corrupt("the RNG state is all zeros (it would give zeros forever)");
  if (saved_run.step < 0 || saved_run.total_steps < 0 || saved_run.batch == 0)
    corrupt("run state at offset " + std::to_string(run_at) + ": step " + std::to_string(saved_run.step) + " of " +
            std::to_string(saved_run.total_steps) + ", batch " + std::to_string(saved_run.batch));
  if (adam && (adam->first_moment().size() != ps.count() || adam->second_moment().size() != ps.count()))
    throw error(c.path + ": the Adam given to restore() holds " + std::to_string(adam->first_moment().size()) +
                " moments for a model of " + std::to_string(ps.count()) + " parameters");
  // everything parsed: only now change the model
  std::ranges::copy(values, ps.values().begin());
  if (adam) {
    std::ranges::copy(m, adam->first_moment().begin());
    std::ranges::copy(v, adam->second_moment().begin());
    adam->set_steps(steps);
  }
  if (init && training) init->set_state(state);
  if (run) *run = saved_run;
}

// The model a file holds, built from its own config and class names: one call, any config.
template <std::floating_point T = float>
basic_vlm<T> load_model(const std::string& path) {
  const checkpoint c = read_checkpoint(path);
  basic_vlm<T> model(c.config, vocabulary(c.class_names));
  restore(c, model);
  return model;
}

}  // namespace purevlm

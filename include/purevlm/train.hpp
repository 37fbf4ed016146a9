// SPDX-License-Identifier: MIT
// train.hpp: the training loop as a small class. Each step takes `batch` samples (file order or
// a fresh permutation per epoch, optionally shifted for augmentation) in a fixed number of
// chunks; `threads` workers, each with its own tape, take chunks as they finish them. A chunk
// sums its samples' gradients in order into its own buffer, and the buffers are added in chunk
// order, so a seed gives bit-identical runs whatever the thread count, and a core slowed by
// other work takes fewer chunks instead of holding up the step. Then clipping and one Adam step,
// the sum and Adam split over the workers by parameter range. Which sample a step sees depends
// only on (seed, step): resuming is exact.
#pragma once

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "data/idx.hpp"
#include "data/image.hpp"
#include "model.hpp"

namespace purevlm {

namespace detail {
// Helper threads that live as long as their owner: run(job) calls job(0) on the calling thread
// and job(1..n) on the helpers, and returns when all are done. Between jobs a helper spins for a
// short while before it sleeps, because training steps follow each other within microseconds
// and waking a sleeping thread costs about as much as a small batch's work.
class worker_pool {
public:
  explicit worker_pool(std::size_t helpers) {
    for (std::size_t i = 0; i < helpers; ++i) threads_.emplace_back([this, i] { loop(i + 1); });
  }
  ~worker_pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // An exception from any worker (this thread's share included) is rethrown here, the first one
  // only, and only after every helper has finished the job: none still touches its buffers.
  template <class Job>
  void run(Job&& job) {
    std::function<void(std::size_t)> f(std::ref(job));  // a reference: no allocation
    job_ = &f;
    pending_.store(threads_.size(), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);  // publishes job_ and pending_
    { std::lock_guard lock(mutex_); }                       // a helper about to sleep sees it
    wake_.notify_all();
    try {
      job(0);
    } catch (...) {
      keep(std::current_exception());
    }
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
  }

private:
  void loop(std::size_t index) {
    std::uint64_t seen = 0;
    for (;;) {
      for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
        std::this_thread::yield();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
        if (stop_) return;
      }
      seen = generation_.load(std::memory_order_acquire);
      try {
        (*job_)(index);
      } catch (...) {  // carried to run(): an exception leaving a thread would end the program
        keep(std::current_exception());
      }
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  void keep(std::exception_ptr e) {
    std::lock_guard lock(mutex_);
    if (!failed_) failed_ = std::move(e);
  }
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;            // guarded by mutex_
  std::exception_ptr failed_;    // the first exception of the current job; guarded by mutex_
};
}  // namespace detail

struct step_stats {
  double loss = 0, text_loss = 0, recon = 0;  // means over the batch
  double grad_norm = 0;                       // global norm before the global clip
  double lr = 0;
  bool finite = true;                         // false: a loss, gradient or parameter became NaN/Inf
};

// A made-up training sample: its image (light ink on black, rows × cols bytes) and class.
struct made_sample {
  std::vector<std::uint8_t> pixels;
  std::size_t label = 0;
};
// Makes sample g of a run (g = 0, 1, 2, …), the same for the same g, from any thread.
using sample_maker = std::function<made_sample(std::uint64_t)>;

template <std::floating_point T>
class basic_trainer {
public:
  // Trains on a data set, epoch after epoch (shuffled per epoch when the config says so).
  basic_trainer(basic_vlm<T>& model, const labeled_images& data, std::uint64_t seed, std::size_t threads = 1)
      : basic_trainer(model, &data, {}, data.images.rows, data.images.cols, seed, threads) {
    if (data_->size() == 0) throw error("trainer: no training images");
    for (std::size_t i = 0; i < data_->size(); ++i)
      if (data_->labels[i] >= texts_.size())
        throw error("trainer: image " + std::to_string(i) + " has label " + std::to_string(data_->labels[i]) +
                    ", the model knows " + std::to_string(texts_.size()) + " class names");
    if (data_->images.count != data_->size())
      throw error("trainer: " + std::to_string(data_->images.count) + " images for " + std::to_string(data_->size()) + " labels");
  }
  // Trains on an endless stream of rows × cols images that `make` draws (the numbers task).
  basic_trainer(basic_vlm<T>& model, sample_maker make, std::size_t rows, std::size_t cols, std::uint64_t seed,
                std::size_t threads = 1)
      : basic_trainer(model, nullptr, std::move(make), rows, cols, seed, threads) {}

  // The trainer keeps references to both: a temporary data set would dangle.
  basic_trainer(basic_vlm<T>&, labeled_images&&, std::uint64_t, std::size_t = 1) = delete;

  step_stats step() {
    const auto& tc = model_.config().train;
    const std::size_t B = tc.batch, K = chunks_.size(), W = workers_.size();
    plan_.resize(B);
    for (std::size_t j = 0; j < B; ++j) plan_[j] = sample_for(std::uint64_t(step_) * B + j);
    auto& ps = model_.parameters();
    auto grads = ps.grads();
    const std::size_t P = grads.size();
    auto range = [&](std::size_t w) { return std::pair{w * P / W, (w + 1) * P / W}; };

    next_chunk_.store(0, std::memory_order_relaxed);
    pool_.run([&](std::size_t w) {  // forward + backward: worker 0 on this thread, the others on helpers
      for (std::size_t c; (c = next_chunk_.fetch_add(1, std::memory_order_relaxed)) < K;)
        run_chunk(workers_[w], chunks_[c], c == 0 ? grads : std::span<T>(chunks_[c].grads), c * B / K, (c + 1) * B / K);
    });
    pool_.run([&](std::size_t w) {  // the chunks' sum in chunk order, averaged; by parameter range
      const auto [lo, hi] = range(w);
      for (std::size_t c = 1; c < K; ++c) detail::axpy(grads.data() + lo, T(1), chunks_[c].grads.data() + lo, hi - lo);
      if (B > 1)
        for (std::size_t i = lo; i < hi; ++i) grads[i] *= T(1) / T(B);
    });
    step_stats s;
    for (const auto& c : chunks_) { s.loss += c.loss; s.text_loss += c.text; s.recon += c.recon; }
    s.loss /= double(B); s.text_loss /= double(B); s.recon /= double(B);
    if (tc.clip_matrix > 0)
      for (std::size_t i = 0; i < ps.entries().size(); ++i)
        if (model_.is_tokenizer_parameter(i)) clip_grad_norm<T>(ps.grad(i), tc.clip_matrix);
    s.grad_norm = tc.clip_global > 0 ? clip_grad_norm<T>(grads, tc.clip_global) : l2_norm<T>(grads);
    schedule sched = tc.lr;
    sched.total = tc.steps;
    s.lr = sched.at(step_);
    s.finite = std::isfinite(s.loss) && std::isfinite(s.grad_norm);
    if (s.finite) {  // a non-finite gradient never reaches the parameters
      adam_.begin_step();
      pool_.run([&](std::size_t w) {
        const auto [lo, hi] = range(w);
        adam_.update(ps.values(), grads, s.lr, lo, hi);
        workers_[w].norm = l2_norm<T>(ps.values().subspan(lo, hi - lo));
      });
      for (const auto& w : workers_) s.finite = s.finite && std::isfinite(w.norm);  // finite iff every parameter is
    }
    ++step_;
    return s;
  }
  std::int64_t steps_done() const { return step_; }
  void set_steps_done(std::int64_t s) { step_ = s; }
  std::uint64_t seed() const { return seed_; }
  basic_adam<T>& adam() { return adam_; }
  std::size_t threads() const { return workers_.size(); }

private:
  basic_trainer(basic_vlm<T>& model, const labeled_images* data, sample_maker make, std::size_t rows, std::size_t cols,
                std::uint64_t seed, std::size_t threads)
      : model_(model), data_(data), make_(std::move(make)), rows_(rows), cols_(cols), seed_(seed),
        adam_(model.parameter_count()), workers_(std::max<std::size_t>(1, std::min(threads, model.config().train.batch))),
        chunks_(std::min<std::size_t>(max_chunks, std::max<std::size_t>(1, model.config().train.batch))) {
    const std::size_t px = model.config().pixels(), n = rows * cols;
    if (n != px && !(rows % 2 == 0 && cols % 2 == 0 && n / 4 == px))
      throw error("trainer: images of " + std::to_string(rows) + "x" + std::to_string(cols) + " do not pool to the model's " +
                  std::to_string(px) + " pixels");
    for (const auto& name : model.vocab().class_names()) texts_.push_back(model.vocab().encode(name));
    for (auto& w : workers_) {
      w.x.resize(px);
      w.moved.resize(n);
    }
    for (std::size_t c = 1; c < chunks_.size(); ++c) chunks_[c].grads.resize(model.parameter_count());  // chunk 0: the model's own
  }
  struct planned {
    std::size_t index;  // into the data set; for a stream, the sample number g
    int dx, dy;
  };
  static constexpr std::size_t max_chunks = 8;  // a step's samples split into at most this many
  struct alignas(64) worker {  // own cache lines: workers write these while others run
    basic_tape<T> tape;
    std::vector<T> x;
    std::vector<std::uint8_t> moved;
    made_sample made;
    double norm = 0;  // of its range of parameters after the update
  };
  struct alignas(64) chunk {
    std::vector<T> grads;  // unused by chunk 0, which writes the model's own gradient buffer
    double loss = 0, text = 0, recon = 0;
  };
  // Global sample number g → which image, and how it is shifted; a function of (seed, g) only.
  planned sample_for(std::uint64_t g) {
    const auto& tc = model_.config().train;
    const std::size_t N = data_ ? data_->size() : 0;
    std::size_t index = data_ ? std::size_t(g % N) : std::size_t(g);
    if (data_ && tc.shuffle) {
      const std::uint64_t epoch = g / N;
      if (perm_epoch_ != epoch || perm_.size() != N) {
        perm_.resize(N);
        std::iota(perm_.begin(), perm_.end(), std::size_t(0));
        rng r(seed_ ^ (0x9e3779b97f4a7c15ull * (epoch + 1)));
        for (std::size_t i = N - 1; i > 0; --i) std::swap(perm_[i], perm_[r.below(i + 1)]);  // Fisher-Yates
        perm_epoch_ = epoch;
      }
      index = perm_[index];
    }
    planned p{index, 0, 0};
    if (tc.shift > 0) {
      rng r(seed_ * 0xd1b54a32d192ed03ull + g);
      p.dx = int(r.below(std::size_t(2 * tc.shift + 1))) - tc.shift;
      p.dy = int(r.below(std::size_t(2 * tc.shift + 1))) - tc.shift;
    }
    return p;
  }

  void run_chunk(worker& w, chunk& c, std::span<T> grads, std::size_t begin, std::size_t end) {
    std::fill(grads.begin(), grads.end(), T(0));
    c.loss = c.text = c.recon = 0;
    const std::size_t rows = rows_, cols = cols_;
    for (std::size_t j = begin; j < end; ++j) {
      const planned& p = plan_[j];
      std::span<const std::uint8_t> img;
      std::size_t label;
      if (data_) {
        img = data_->images.image(p.index);
        label = data_->labels[p.index];
      } else {
        w.made = make_(p.index);
        if (w.made.pixels.size() != rows * cols || w.made.label >= texts_.size())
          throw error("trainer: sample " + std::to_string(p.index) + " was made with " + std::to_string(w.made.pixels.size()) +
                      " pixels and class " + std::to_string(w.made.label) + " (want " + std::to_string(rows * cols) +
                      " and < " + std::to_string(texts_.size()) + ")");
        img = w.made.pixels;
        label = w.made.label;
      }
      if (p.dx != 0 || p.dy != 0) {
        shift_image(w.moved, img, p.dx, p.dy, rows, cols);
        img = w.moved;
      }
      prepare<T>(w.x, img, rows, cols);
      w.tape.reset();
      auto r = model_.forward(w.tape, w.x, texts_[label], grads);
      w.tape.backward(r.loss);
      c.loss += double(w.tape.value(r.loss)[0]);
      c.text += double(w.tape.value(r.text_loss)[0]);
      c.recon += double(w.tape.value(r.recon)[0]);
    }
  }

  basic_vlm<T>& model_;
  const labeled_images* data_;  // or null: samples come from make_
  sample_maker make_;
  std::size_t rows_, cols_;
  std::uint64_t seed_;
  basic_adam<T> adam_;
  std::vector<worker> workers_;
  std::vector<chunk> chunks_;
  std::atomic<std::size_t> next_chunk_{0};
  detail::worker_pool pool_{workers_.size() - 1};
  std::vector<std::vector<std::int32_t>> texts_;  // encoded name per class
  std::vector<planned> plan_;
  std::vector<std::size_t> perm_;
  std::uint64_t perm_epoch_ = ~0ull;
  std::int64_t step_ = 0;
};

using trainer = basic_trainer<float>;

}  // namespace purevlm

// SPDX-License-Identifier: MIT
// patch.hpp: the patch tokenizer — the BAE kernels of bae.hpp applied with shared weights to every
// k×k patch of the image. One layer is a bilinear convolution (L * x) ⊙ (R * x): a BAE on each patch,
// degree 2 in the pixels; a second layer over the first one's channels is BAE × BAE, degree 4.
// Each layer: patches (im2col) → product of two projections (one matmul each) → average pool →
// each channel divided by its RMS over the grid. The last grid's cells are the vision tokens, one
// per image region. Feature maps are [positions, channels], positions row-major over the grid, so a
// patch is a row. Not here: strides in the convolution, ReLU stacks. Derivations: docs/bae.md.
// Letters: H, W grid height and width, C channels, K patch side, S pool stride, P positions (H·W).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bae.hpp"

namespace purevlm {

// ---- patches (im2col): out[Ho·Wo, K·K·C], row (y, x) = the K×K window whose corner is at
// (y − pad, x − pad) of in[H·W, C], in (ky, kx, c) order, zeros outside; Ho = H + 2·pad − K + 1 ----
namespace detail {
// The window row (y, x, ky) reads pixels [kx0, kx1) of input row iy, x + kx − pad for each kx:
// one contiguous run of (kx1 − kx0)·C values; everything else in the window row is padding.
struct window_row {
  std::size_t kx0 = 0, kx1 = 0, first = 0;  // valid kx range; index of its first input pixel
};
inline window_row window_row_at(std::size_t y, std::size_t x, std::size_t ky, std::size_t H, std::size_t W,
                                std::size_t K, std::size_t pad) {
  const std::size_t iy = y + ky - pad;  // wraps past H when above the grid
  if (iy >= H) return {};
  const std::size_t kx0 = x < pad ? pad - x : 0, kx1 = std::min(K, W + pad - x);
  return {kx0, kx1, iy * W + x + kx0 - pad};
}
}  // namespace detail

template <std::floating_point T>
void patches_forward(std::span<T> out, std::span<const T> in, std::size_t H, std::size_t W, std::size_t C,
                     std::size_t K, std::size_t pad) {
  const std::size_t Ho = H + 2 * pad - K + 1, Wo = W + 2 * pad - K + 1, KC = K * C;
  T* o = out.data();
  for (std::size_t y = 0; y < Ho; ++y)
    for (std::size_t x = 0; x < Wo; ++x)
      for (std::size_t ky = 0; ky < K; ++ky, o += KC) {
        const auto r = detail::window_row_at(y, x, ky, H, W, K, pad);
        const std::size_t a = r.kx0 * C, b = r.kx1 * C;
        const T* src = &in[r.first * C] - a;
        for (std::size_t i = 0; i < a; ++i) o[i] = T(0);
        for (std::size_t i = a; i < b; ++i) o[i] = src[i];
        for (std::size_t i = b < a ? a : b; i < KC; ++i) o[i] = T(0);
      }
}
// din[H·W, C] += each window's gradient at the pixels it read (col2im)
template <std::floating_point T>
void patches_backward(std::span<T> din, std::span<const T> dout, std::size_t H, std::size_t W, std::size_t C,
                      std::size_t K, std::size_t pad) {
  const std::size_t Ho = H + 2 * pad - K + 1, Wo = W + 2 * pad - K + 1, KC = K * C;
  const T* g = dout.data();
  for (std::size_t y = 0; y < Ho; ++y)
    for (std::size_t x = 0; x < Wo; ++x)
      for (std::size_t ky = 0; ky < K; ++ky, g += KC) {
        const auto r = detail::window_row_at(y, x, ky, H, W, K, pad);
        if (r.kx1 > r.kx0) detail::axpy(&din[r.first * C], T(1), g + r.kx0 * C, (r.kx1 - r.kx0) * C);
      }
}

// ---- average pool: out[Ho·Wo, C] = mean of in's K×K window at (y·S, x·S); Ho = (H − K)/S + 1 ----
template <std::floating_point T>
void avgpool_forward(std::span<T> out, std::span<const T> in, std::size_t H, std::size_t W, std::size_t C,
                     std::size_t K, std::size_t S) {
  const std::size_t Ho = (H - K) / S + 1, Wo = (W - K) / S + 1;
  const T w = T(1) / T(K * K);
  std::fill(out.begin(), out.end(), T(0));
  for (std::size_t y = 0; y < Ho; ++y)
    for (std::size_t x = 0; x < Wo; ++x)
      for (std::size_t ky = 0; ky < K; ++ky)
        for (std::size_t kx = 0; kx < K; ++kx)
          detail::axpy(&out[(y * Wo + x) * C], w, &in[((y * S + ky) * W + x * S + kx) * C], C);
}
template <std::floating_point T>
void avgpool_backward(std::span<T> din, std::span<const T> dout, std::size_t H, std::size_t W, std::size_t C,
                      std::size_t K, std::size_t S) {
  const std::size_t Ho = (H - K) / S + 1, Wo = (W - K) / S + 1;
  const T w = T(1) / T(K * K);  // ∂out/∂in = 1/K² for every pixel of the window
  for (std::size_t y = 0; y < Ho; ++y)
    for (std::size_t x = 0; x < Wo; ++x)
      for (std::size_t ky = 0; ky < K; ++ky)
        for (std::size_t kx = 0; kx < K; ++kx)
          detail::axpy(&din[((y * S + ky) * W + x * S + kx) * C], w, &dout[(y * Wo + x) * C], C);
}

// ---- channel RMS norm: out[p,c] = x[p,c]·rstd[c], rstd[c] = 1/sqrt(mean_p x[p,c]² + eps) ----
// Each channel is scaled by one number for the whole image, so the picture's contrast and the
// weights' scale drop out while where a channel fires, relative to elsewhere, is kept.
// saves rstd[C]; backward uses m[C] as scratch.
template <std::floating_point T>
void channel_rmsnorm_forward(std::span<T> out, std::span<T> rstd, std::span<const T> x, std::size_t P, std::size_t C,
                             T eps) {
  std::fill(rstd.begin(), rstd.end(), T(0));
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t c = 0; c < C; ++c) rstd[c] += x[p * C + c] * x[p * C + c];
  for (std::size_t c = 0; c < C; ++c) rstd[c] = T(1) / std::sqrt(rstd[c] / T(P) + eps);
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t c = 0; c < C; ++c) out[p * C + c] = x[p * C + c] * rstd[c];
}
template <std::floating_point T>
void channel_rmsnorm_backward(std::span<T> dx, std::span<T> m, std::span<const T> dout, std::span<const T> out,
                              std::span<const T> rstd, std::size_t P, std::size_t C) {
  // as rmsnorm over a column: dx = rstd · (dy − y · mean_p(dy ⊙ y))
  std::fill(m.begin(), m.end(), T(0));
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t c = 0; c < C; ++c) m[c] += dout[p * C + c] * out[p * C + c];
  for (std::size_t c = 0; c < C; ++c) m[c] /= T(P);
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t c = 0; c < C; ++c) dx[p * C + c] += rstd[c] * (dout[p * C + c] - out[p * C + c] * m[c]);
}

// ---- tape ops ----

// The K×K patches of x[H·W, C], zero-padded by `pad`: [Ho·Wo, K·K·C]
template <std::floating_point T>
var patches(basic_tape<T>& t, var x, std::size_t H, std::size_t W, std::size_t K, std::size_t pad) {
  if (H * W != t.rows(x) || K == 0 || pad >= K || K > H + 2 * pad || K > W + 2 * pad)
    throw error("patches: " + std::to_string(K) + "x" + std::to_string(K) + " windows, pad " + std::to_string(pad) +
                ", over a " + std::to_string(H) + "x" + std::to_string(W) + " grid of " + t.shape_of(x));
  const std::size_t C = t.cols(x);
  struct window { std::size_t H, W, K, pad; };
  var y = t.make((H + 2 * pad - K + 1) * (W + 2 * pad - K + 1), K * K * C, {x}, [](basic_tape<T>& t, const auto& n) {
    var x = t.input_of(n, 0);
    const auto [H, W, K, pad] = args_of<window>(n);
    patches_backward<T>(t.grad(x), t.grad(n), H, W, t.cols(x), K, pad);
  });
  t.set_args(y, window{H, W, K, pad});
  patches_forward<T>(t.value(y), t.value(x), H, W, C, K, pad);
  return y;
}

// K×K average pool with stride S over x[H·W, C]: [Ho·Wo, C]
template <std::floating_point T>
var avgpool(basic_tape<T>& t, var x, std::size_t H, std::size_t W, std::size_t K, std::size_t S) {
  if (H * W != t.rows(x) || K == 0 || S == 0 || K > H || K > W)
    throw error("avgpool: " + std::to_string(K) + "x" + std::to_string(K) + " windows, stride " + std::to_string(S) +
                ", over a " + std::to_string(H) + "x" + std::to_string(W) + " grid of " + t.shape_of(x));
  const std::size_t C = t.cols(x);
  struct window { std::size_t H, W, K, stride; };
  var y = t.make(((H - K) / S + 1) * ((W - K) / S + 1), C, {x}, [](basic_tape<T>& t, const auto& n) {
    const auto [H, W, K, S] = args_of<window>(n);
    avgpool_backward<T>(t.grad(t.input_of(n, 0)), t.grad(n), H, W, n.cols, K, S);
  });
  t.set_args(y, window{H, W, K, S});
  avgpool_forward<T>(t.value(y), t.value(x), H, W, C, K, S);
  return y;
}

// Each column of x[P, C] divided by its RMS over the P rows
template <std::floating_point T>
var channel_rmsnorm(basic_tape<T>& t, var x, T eps) {
  var y = t.make(t.rows(x), t.cols(x), {x}, [](basic_tape<T>& t, const auto& n) {
    channel_rmsnorm_backward<T>(t.grad(t.input_of(n, 0)), t.scratch(n.cols), t.grad(n), t.value(n), t.saved(n, n.cols),
                                n.rows, n.cols);
  });
  channel_rmsnorm_forward<T>(t.value(y), t.save(y, t.cols(x)), t.value(x), t.rows(x), t.cols(x), eps);
  return y;
}

// ---- the patch tokenizer ----

struct patch_layer {
  std::size_t kernel = 5;    // K: the patch side
  std::size_t channels = 16; // C: BAE features per patch
  std::size_t pad = 0;       // zeros around the grid (K/2 keeps its size)
  std::size_t pool = 2;      // average-pool window after the product (1: none)
  std::size_t stride = 2;    // and its stride
};

struct patch_config {
  std::size_t side = 14;             // the input image's rows, one channel
  std::size_t cols = 0;              // and its columns; 0: side, a square image
  std::vector<patch_layer> layers;   // applied in order; the last grid's cells are the tokens

  std::size_t image_cols() const { return cols ? cols : side; }
  // A grid of n cells along one direction after layer `layer` (the same in both directions).
  std::size_t cells_after(std::size_t n, std::size_t layer) const {
    for (std::size_t i = 0; i <= layer; ++i) {
      const auto& l = layers[i];
      n = (n + 2 * l.pad - l.kernel + 1 - l.pool) / l.stride + 1;
    }
    return n;
  }
  // The token grid: rows × columns of the last layer's grid.
  std::size_t grid_rows() const { return layers.empty() ? 0 : cells_after(side, layers.size() - 1); }
  std::size_t grid_cols() const { return layers.empty() ? 0 : cells_after(image_cols(), layers.size() - 1); }
  std::size_t tokens() const { return grid_rows() * grid_cols(); }
  // Where the tokens look in the input image (for pictures): token (row, col) of the last grid sees
  // the input pixels centred at first + step·(row, col), a square `extent` pixels wide.
  struct footprint {
    double first = 0, step = 1;
    std::size_t extent = 1;
  };
  footprint token_footprint() const {
    footprint f;  // walked back from the last grid: a unit of a layer's output covers a pool
    for (std::size_t i = layers.size(); i-- > 0;) {  // window of conv outputs, each a kernel of inputs
      const auto& l = layers[i];
      f.first = f.first * double(l.stride) + double(l.pool - 1) / 2 - double(l.pad) + double(l.kernel - 1) / 2;
      f.step *= double(l.stride);
      f.extent = (f.extent - 1) * l.stride + l.pool + l.kernel - 1;
    }
    return f;
  }
  std::size_t width() const { return layers.empty() ? 0 : layers.back().channels; }
  std::size_t parameter_count() const {
    std::size_t n = 0, in = 1;
    for (const auto& l : layers) { n += 2 * l.channels * l.kernel * l.kernel * in; in = l.channels; }
    return n;
  }
  void validate() const {
    std::size_t r = side, c = image_cols();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      const std::string at = "patch_config.layers[" + std::to_string(i) + "]: ";
      if (l.kernel == 0 || l.channels == 0 || l.pool == 0 || l.stride == 0)
        throw error(at + "kernel, channels, pool and stride must be at least 1");
      if (l.pad >= l.kernel) throw error(at + "pad " + std::to_string(l.pad) + " must be less than the kernel " + std::to_string(l.kernel));
      for (std::size_t s : {r, c})
        if (l.kernel > s + 2 * l.pad || s + 2 * l.pad - l.kernel + 1 < l.pool)
          throw error(at + std::to_string(l.kernel) + "x" + std::to_string(l.kernel) + " patches (pad " + std::to_string(l.pad) +
                      ") then pool " + std::to_string(l.pool) + " do not fit a " + std::to_string(r) + "x" + std::to_string(c) + " grid");
      r = cells_after(side, i);
      c = cells_after(image_cols(), i);
    }
  }
};

template <std::floating_point T>
class basic_patch_tokenizer {
public:
  // Registers patch<i>_l, patch<i>_r [C, K·K·Cin] per layer, Normal(0, 1/sqrt(K·K·Cin)): a
  // projection of a patch starts at about the size of the patch.
  basic_patch_tokenizer(const patch_config& cfg, basic_parameters<T>& ps, rng& g) : cfg_(cfg) {
    cfg_.validate();
    std::size_t in = 1;
    for (std::size_t i = 0; i < cfg_.layers.size(); ++i) {
      const auto& l = cfg_.layers[i];
      const std::size_t fan_in = l.kernel * l.kernel * in;
      const T std = T(1) / std::sqrt(T(fan_in));
      std::string name = "patch";  // appended: g++ 12 warns falsely on "…" + std::string
      name += std::to_string(i);
      weights_.push_back({ps.add(name + "_l", l.channels, fan_in, std, g), ps.add(name + "_r", l.channels, fan_in, std, g)});
      in = l.channels;
    }
  }

  // x[1, side·cols] → tokens [grid rows · grid cols, C_last], one per region, row-major.
  var forward(basic_tape<T>& t, const basic_parameters<T>& ps, std::span<T> grads, var x) const {
    const std::size_t H0 = cfg_.side, W0 = cfg_.image_cols();
    if (t.size(x) != H0 * W0)
      throw error("patch tokenizer: image of " + std::to_string(t.size(x)) + " values, the config's is " +
                  std::to_string(H0) + "x" + std::to_string(W0));
    var h = reshape(t, x, t.size(x), 1);  // [P, 1]: one channel
    std::size_t H = H0, W = W0;
    for (std::size_t i = 0; i < cfg_.layers.size(); ++i) {
      const auto& l = cfg_.layers[i];
      var cols = patches(t, h, H, W, l.kernel, l.pad);
      const std::size_t Ho = H + 2 * l.pad - l.kernel + 1, Wo = W + 2 * l.pad - l.kernel + 1;
      const var w[2] = {t.parameter(ps, weights_[i].first, grads), t.parameter(ps, weights_[i].second, grads)},
                in[2] = {cols, cols};
      h = product_of_projections<T>(t, w, in);  // (L·patch) ⊙ (R·patch): a BAE on every patch
      if (l.pool > 1 || l.stride > 1) h = avgpool(t, h, Ho, Wo, l.pool, l.stride);
      h = channel_rmsnorm(t, h, T(1e-12));
      H = cfg_.cells_after(H0, i);
      W = cfg_.cells_after(W0, i);
    }
    return h;
  }
  const patch_config& config() const { return cfg_; }

private:
  patch_config cfg_;
  std::vector<std::pair<std::size_t, std::size_t>> weights_;  // parameter indices of L, R per layer
};

}  // namespace purevlm

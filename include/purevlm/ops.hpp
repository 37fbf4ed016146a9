// SPDX-License-Identifier: MIT
// ops.hpp: the primitive kernels, each a forward/backward pair over spans (the llm.c way).
// Forward writes its output; backward ACCUMULATES (+=) into the input gradients. What a forward
// saves for its backward is named in its signature. Kernels do no shape checks: the tape checks
// shapes once, where it can name them. Letters: N rows, I inputs, O outputs, C channels, V vocab.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "detail/simd.hpp"

namespace purevlm {

// ---- matmul: out[N,O] = in[N,I] · weight[O,I]ᵀ (weights act as W·x, rows are outputs) ----
// scratch: O·I values. With several rows the weight is transposed into it once and the product
// runs through the blocked gemm; a single row (the tokenizer's image) is O dot products.
inline std::size_t matmul_scratch_size(std::size_t I, std::size_t O) { return O * I; }

template <std::floating_point T>
void matmul_forward(std::span<T> out, std::span<const T> in, std::span<const T> weight,
                    std::size_t N, std::size_t I, std::size_t O, std::span<T> scratch) {
  if (N < 4) {
    for (std::size_t n = 0; n < N; ++n)
      detail::matvec(&out[n * O], weight.data(), &in[n * I], O, I);
    return;
  }
  detail::transpose(scratch.data(), weight.data(), O, I);  // weightᵀ [I, O]
  detail::gemm(out.data(), O, detail::strided<const T>{in.data(), I}, scratch.data(), O, N, I, O, detail::gemm_to::set);
}
// din += dout · weight; dweight += doutᵀ · in (either may be empty: not wanted)
template <std::floating_point T>
void matmul_backward(std::span<T> din, std::span<T> dweight, std::span<const T> dout,
                     std::span<const T> in, std::span<const T> weight,
                     std::size_t N, std::size_t I, std::size_t O) {
  if (!din.empty()) detail::gemm_accumulate(din.data(), dout.data(), weight.data(), N, O, I);
  if (!dweight.empty())  // doutᵀ read in place, as a transposed view
    detail::gemm(dweight.data(), I, detail::transposed(detail::strided<const T>{dout.data(), O}), in.data(), I, O, N, I);
}

// ---- elementwise: add, Hadamard product, scale, ReLU, clamp ----
template <std::floating_point T>
void add_forward(std::span<T> out, std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] + b[i];
}
template <std::floating_point T>
void add_backward(std::span<T> da, std::span<T> db, std::span<const T> dout) {
  for (std::size_t i = 0; i < dout.size(); ++i) { da[i] += dout[i]; db[i] += dout[i]; }
}
template <std::floating_point T>
void mul_forward(std::span<T> out, std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] * b[i];
}
template <std::floating_point T>
void mul_backward(std::span<T> da, std::span<T> db, std::span<const T> dout,
                  std::span<const T> a, std::span<const T> b) {
  for (std::size_t i = 0; i < dout.size(); ++i) {
    da[i] += dout[i] * b[i];  // ∂(ab)/∂a = b
    db[i] += dout[i] * a[i];
  }
}
template <std::floating_point T>
void scale_forward(std::span<T> out, std::span<const T> a, T c) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = c * a[i];
}
template <std::floating_point T>
void scale_backward(std::span<T> da, std::span<const T> dout, T c) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += c * dout[i];
}
template <std::floating_point T>
void relu_forward(std::span<T> out, std::span<const T> a) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] > T(0) ? a[i] : T(0);
}
template <std::floating_point T>
void relu_backward(std::span<T> da, std::span<const T> dout, std::span<const T> out) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += out[i] > T(0) ? dout[i] : T(0);
}
// Clamp to [lo, hi]; the gradient is zero where the value was clipped.
template <std::floating_point T>
void clamp_forward(std::span<T> out, std::span<const T> a, T lo, T hi) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::clamp(a[i], lo, hi);
}
template <std::floating_point T>
void clamp_backward(std::span<T> da, std::span<const T> dout, std::span<const T> a, T lo, T hi) {
  for (std::size_t i = 0; i < dout.size(); ++i) da[i] += (a[i] >= lo && a[i] <= hi) ? dout[i] : T(0);
}

// ---- reductions: out[0] = Σ a ----
template <std::floating_point T>
void sum_forward(std::span<T> out, std::span<const T> a) {
  T s = 0;
  for (T v : a) s += v;
  out[0] = s;
}
template <std::floating_point T>
void sum_backward(std::span<T> da, std::span<const T> dout) {
  for (T& v : da) v += dout[0];
}

// ---- rmsnorm over rows, no weight: out = x · rstd, rstd = 1/sqrt(mean(x²) + eps); saves rstd[N] ----
template <std::floating_point T>
void rmsnorm_forward(std::span<T> out, std::span<T> rstd, std::span<const T> x,
                     std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    const T r = T(1) / std::sqrt(detail::dot_product(xr, xr, C) / T(C) + eps);
    rstd[n] = r;
    for (std::size_t c = 0; c < C; ++c) out[n * C + c] = xr[c] * r;
  }
}
template <std::floating_point T>
void rmsnorm_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> out,
                      std::span<const T> rstd, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* y = &out[n * C];
    const T* dy = &dout[n * C];
    // dx = rstd · (dy − y · mean(dy ⊙ y)): the second term is the projection the seed dropped
    const T m = detail::dot_product(dy, y, C) / T(C);
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += rstd[n] * (dy[c] - y[c] * m);
  }
}

// ---- L2 normalisation over rows: out = x / (‖x‖ + eps); saves norm[N] ----
template <std::floating_point T>
void l2norm_forward(std::span<T> out, std::span<T> norm, std::span<const T> x,
                    std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    norm[n] = std::sqrt(detail::dot_product(xr, xr, C));
    const T inv = T(1) / (norm[n] + eps);
    for (std::size_t c = 0; c < C; ++c) out[n * C + c] = xr[c] * inv;
  }
}
template <std::floating_point T>
void l2norm_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> x,
                     std::span<const T> norm, std::size_t N, std::size_t C, T eps) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* xr = &x[n * C];
    const T* dy = &dout[n * C];
    // y = x/(r+eps), r = ‖x‖:  dx = dy/(r+eps) − x · (dy·x) / (r (r+eps)²); see docs/bae.md
    const T s = T(1) / (norm[n] + eps);
    const T proj = norm[n] > T(0) ? detail::dot_product(dy, xr, C) * s * s / norm[n] : T(0);
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += dy[c] * s - xr[c] * proj;
  }
}

// ---- softmax over rows (max-subtracted); backward uses the saved output ----
template <std::floating_point T>
void softmax_forward(std::span<T> out, std::span<const T> x, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    T* y = &out[n * C];
    std::copy(&x[n * C], &x[n * C] + C, y);
    const T s = detail::exp_sum(y, C, detail::max_of(y, C));
    for (std::size_t c = 0; c < C; ++c) y[c] /= s;
  }
}
template <std::floating_point T>
void softmax_backward(std::span<T> dx, std::span<const T> dout, std::span<const T> out,
                      std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) {
    const T* y = &out[n * C];
    const T* dy = &dout[n * C];
    const T m = detail::dot_product(dy, y, C);  // dx = y ⊙ (dy − Σ dy·y)
    for (std::size_t c = 0; c < C; ++c) dx[n * C + c] += y[c] * (dy[c] - m);
  }
}

// ---- cross-entropy on logits[N,V] with targets[N]: out[0] = mean_n −log softmax(logits_n)[target_n]
// saves probs[N,V] ----
template <std::floating_point T>
void cross_entropy_forward(std::span<T> out, std::span<T> probs, std::span<const T> logits,
                           std::span<const std::int32_t> targets, std::size_t N, std::size_t V) {
  softmax_forward(probs, logits, N, V);
  T loss = 0;
  for (std::size_t n = 0; n < N; ++n) {
    const T* l = &logits[n * V];
    const T mx = detail::max_of(l, V);
    T s = 0;  // exact log-softmax: log Σ exp(l − mx), no epsilon inside the log
    for (std::size_t v = 0; v < V; ++v) s += std::exp(l[v] - mx);
    loss += std::log(s) + mx - l[targets[n]];
  }
  out[0] = loss / T(N);
}
template <std::floating_point T>
void cross_entropy_backward(std::span<T> dlogits, std::span<const T> dout, std::span<const T> probs,
                            std::span<const std::int32_t> targets, std::size_t N, std::size_t V) {
  const T g = dout[0] / T(N);
  for (std::size_t n = 0; n < N; ++n)  // ∂/∂logit_v = (p_v − [v = target]) / N
    for (std::size_t v = 0; v < V; ++v)
      dlogits[n * V + v] += g * (probs[n * V + v] - (v == std::size_t(targets[n]) ? T(1) : T(0)));
}

// ---- embedding lookup: out[N,C] = table[ids[n], :] ----
template <std::floating_point T>
void embedding_forward(std::span<T> out, std::span<const T> table, std::span<const std::int32_t> ids,
                       std::size_t C) {
  for (std::size_t n = 0; n < ids.size(); ++n)
    std::copy_n(&table[std::size_t(ids[n]) * C], C, &out[n * C]);
}
template <std::floating_point T>
void embedding_backward(std::span<T> dtable, std::span<const T> dout,
                        std::span<const std::int32_t> ids, std::size_t C) {
  for (std::size_t n = 0; n < ids.size(); ++n)
    detail::axpy(&dtable[std::size_t(ids[n]) * C], T(1), &dout[n * C], C);
}

// ---- columns: copy in[N,Cin] into out[N,Cout] at column offset (concat), and its inverse (slice) ----
template <std::floating_point T>
void concat_forward(std::span<T> out, std::span<const T> in, std::size_t N, std::size_t Cout,
                    std::size_t Cin, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(&in[n * Cin], Cin, &out[n * Cout + offset]);
}
template <std::floating_point T>
void concat_backward(std::span<T> din, std::span<const T> dout, std::size_t N, std::size_t Cout,
                     std::size_t Cin, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(&din[n * Cin], T(1), &dout[n * Cout + offset], Cin);
}
template <std::floating_point T>
void slice_forward(std::span<T> out, std::span<const T> in, std::size_t N, std::size_t Cin,
                   std::size_t Cout, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(&in[n * Cin + offset], Cout, &out[n * Cout]);
}
template <std::floating_point T>
void slice_backward(std::span<T> din, std::span<const T> dout, std::size_t N, std::size_t Cin,
                    std::size_t Cout, std::size_t offset) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(&din[n * Cin + offset], T(1), &dout[n * Cout], Cout);
}

// ---- repeat one row N times: out[N,C] = a[C] for every row; backward sums the rows ----
template <std::floating_point T>
void repeat_forward(std::span<T> out, std::span<const T> a, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) std::copy_n(a.data(), C, &out[n * C]);
}
template <std::floating_point T>
void repeat_backward(std::span<T> da, std::span<const T> dout, std::size_t N, std::size_t C) {
  for (std::size_t n = 0; n < N; ++n) detail::axpy(da.data(), T(1), &dout[n * C], C);
}

}  // namespace purevlm

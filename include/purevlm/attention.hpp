// SPDX-License-Identifier: MIT
// attention.hpp: causal multi-head attention with a product-kernel score. Each head of width D is
// split into m equal parts and score(q, k) = scale · Π_f (q_f · k_f): m = 1 with scale 1/√D is the
// usual dot product; m = 2 with scale 1/D is the seed's "tensor attention", a degree-4 kernel
// (q1⊗q2)·(k1⊗k2) with no extra parameters. (Not Zhang et al.'s "Tensor Product Attention",
// arXiv 2501.06425, a different method.) Derivation: docs/attention.md.
// Letters: Tq query rows, Tk key rows (Tk ≥ Tq: queries are the last Tq positions), C = H·D.
#pragma once

#include <cmath>
#include <vector>

#include "tape.hpp"

namespace purevlm {

// score(q, k) = scale · Π_{f < factors} (q_f · k_f)
struct attention_score {
  std::size_t factors = 2;
  double scale = 0.125;
  static attention_score dot(std::size_t D) { return {1, 1.0 / std::sqrt(double(D))}; }
  static attention_score tensor(std::size_t D, std::size_t m = 2) { return {m, 1.0 / double(D)}; }
};

// out[Tq,C]; saves att[H,Tq,Tk] (the softmax, zero above the causal limit) and
// part[m,H,Tq,Tk] (each factor's partial score q_f·k_f, needed for the product rule).
template <std::floating_point T>
void attention_forward(std::span<T> out, std::span<T> att, std::span<T> part, std::span<const T> q,
                       std::span<const T> k, std::span<const T> v, std::size_t Tq, std::size_t Tk,
                       std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m, HQK = H * Tq * Tk;
  const T sc = T(score.scale);
  std::fill(out.begin(), out.end(), T(0));
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t last = Tk - Tq + i;  // causal: query i sees keys 0..last
      T* a = &att[(h * Tq + i) * Tk];
      const T* qi = &q[i * C + h * D];
      T mx = -INFINITY;
      for (std::size_t t = 0; t <= last; ++t) {
        const T* kt = &k[t * C + h * D];
        T s = sc;
        for (std::size_t f = 0; f < m; ++f) {
          const T pf = detail::dot(qi + f * Dm, kt + f * Dm, Dm);
          part[f * HQK + (h * Tq + i) * Tk + t] = pf;
          s *= pf;
        }
        a[t] = s;
        mx = std::max(mx, s);
      }
      T sum = 0;
      for (std::size_t t = 0; t <= last; ++t) sum += (a[t] = std::exp(a[t] - mx));
      const T inv = T(1) / sum;
      for (std::size_t t = 0; t <= last; ++t) a[t] *= inv;
      for (std::size_t t = last + 1; t < Tk; ++t) a[t] = T(0);
      T* oi = &out[i * C + h * D];
      for (std::size_t t = 0; t <= last; ++t) detail::axpy(oi, a[t], &v[t * C + h * D], D);
    }
}

// scratch[Tk] holds one row of d(score) at a time.
template <std::floating_point T>
void attention_backward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<T> scratch,
                        std::span<const T> dout, std::span<const T> att, std::span<const T> part,
                        std::span<const T> q, std::span<const T> k, std::span<const T> v, std::size_t Tq,
                        std::size_t Tk, std::size_t C, std::size_t H, attention_score score) {
  const std::size_t D = C / H, m = score.factors, Dm = D / m, HQK = H * Tq * Tk;
  const T sc = T(score.scale);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i) {
      const std::size_t last = Tk - Tq + i;
      const T* a = &att[(h * Tq + i) * Tk];
      const T* doi = &dout[i * C + h * D];
      T* datt = scratch.data();
      T s = 0;
      for (std::size_t t = 0; t <= last; ++t) {
        datt[t] = detail::dot(doi, &v[t * C + h * D], D);   // ∂out_i/∂att_t = v_t
        detail::axpy(&dv[t * C + h * D], a[t], doi, D);     // ∂out_i/∂v_t = att_t
        s += a[t] * datt[t];
      }
      for (std::size_t t = 0; t <= last; ++t) {
        const T dscore = a[t] * (datt[t] - s);  // softmax backward
        for (std::size_t f = 0; f < m; ++f) {
          // ∂score/∂(q_f·k_f) = scale · Π_{g≠f} (q_g·k_g); for m = 2: ds1 = dscore · s2 / D
          T g = dscore * sc;
          for (std::size_t o = 0; o < m; ++o)
            if (o != f) g *= part[o * HQK + (h * Tq + i) * Tk + t];
          detail::axpy(&dq[i * C + h * D + f * Dm], g, &k[t * C + h * D + f * Dm], Dm);
          detail::axpy(&dk[t * C + h * D + f * Dm], g, &q[i * C + h * D + f * Dm], Dm);
        }
      }
    }
}

// q[Tq,C] attends causally over k, v [Tk,C] (the queries are the last Tq of the Tk positions).
template <std::floating_point T>
var attention(basic_tape<T>& t, var q, var k, var v, std::size_t H, attention_score score) {
  const std::size_t Tq = t.rows(q), Tk = t.rows(k), C = t.cols(q);
  t.require(t.cols(k) == C && t.cols(v) == C && t.rows(v) == Tk && Tk >= Tq, "attention",
            "q[Tq,C], k[Tk,C], v[Tk,C] with Tk >= Tq", {q, k, v});
  if (H == 0 || C % H != 0 || score.factors == 0 || (C / H) % score.factors != 0)
    throw error("attention: " + std::to_string(C) + " channels do not split into " + std::to_string(H) +
                " heads of " + std::to_string(score.factors) + " equal parts");
  var y = t.make(Tq, C, {q, k, v}, [](basic_tape<T>& t, const auto& n) {
    var q = t.input_of(n, 0), k = t.input_of(n, 1), v = t.input_of(n, 2);
    const std::size_t Tq = n.rows, Tk = t.rows(k), H = n.p[0], m = n.p[1], HQK = H * Tq * Tk;
    auto saved = t.saved(n, HQK * (1 + m) + Tk);
    attention_backward<T>(t.grad(q), t.grad(k), t.grad(v), saved.subspan(HQK * (1 + m)), t.grad(n),
                          saved.first(HQK), saved.subspan(HQK, m * HQK), t.value(q), t.value(k), t.value(v),
                          Tq, Tk, n.cols, H, {m, double(n.c[0])});
  });
  t.at(y).p[0] = H;
  t.at(y).p[1] = score.factors;
  t.at(y).c[0] = T(score.scale);
  const std::size_t HQK = H * Tq * Tk;
  auto saved = t.save(y, HQK * (1 + score.factors) + Tk);
  attention_forward<T>(t.value(y), saved.first(HQK), saved.subspan(HQK, score.factors * HQK), t.value(q),
                       t.value(k), t.value(v), Tq, Tk, C, H, score);
  return y;
}

// Keys and values of the positions seen so far, per layer, for incremental decoding.
template <std::floating_point T>
struct basic_kv_cache {
  std::vector<std::vector<T>> k, v;  // [layer][positions · C]
  std::size_t positions = 0;
  void clear() {
    for (auto& x : k) x.clear();
    for (auto& x : v) x.clear();
    positions = 0;
  }
};

}  // namespace purevlm

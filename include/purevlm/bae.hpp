// SPDX-License-Identifier: MIT
// bae.hpp: the visual tokenizer. Every feature is a product of linear projections of the image,
// i.e. a polynomial kernel: a bilinear autoencoder (BAE, Dooms & Gauderis, arXiv 2510.16820)
// f = (L x) ⊙ (R x) has degree 2; the tensor-product tokens (Pa f1) ⊙ (Pb f2) of two BAEs have
// degree 4; a direct feature (W1 x) ⊙ … ⊙ (Wn x) has degree n. One kernel pair, product_*, serves
// all of them. The reconstruction error ‖x xᵀ − Σ f_j l_j r_jᵀ‖² is computed with the kernel trick
// (gram_quadratic_*), never forming x xᵀ. Derivations: docs/bae.md. Letters: N rows, P pixels,
// R rank, K tokens, F features.
#pragma once

#include <string>
#include <vector>

#include "tape.hpp"

namespace purevlm {

// ---- product of n factors: out[N,R] = Π_i parts[i] (parts: n blocks of [N,R], kept for backward) ----
template <std::floating_point T>
void product_forward(std::span<T> out, std::span<const T> parts, std::size_t n, std::size_t NR) {
  for (std::size_t j = 0; j < NR; ++j) {
    T p = parts[j];
    for (std::size_t i = 1; i < n; ++i) p *= parts[i * NR + j];
    out[j] = p;
  }
}
// dparts[i] += dout ⊙ Π_{k≠i} parts[k] (the product without factor i: no division, so exact zeros are fine)
template <std::floating_point T>
void product_backward(std::span<T> dparts_i, std::size_t i, std::span<const T> dout, std::span<const T> parts,
                      std::size_t n, std::size_t NR) {
  if (n == 2) {  // every BAE: the other factor alone, in a loop the compiler vectorizes
    const T* other = &parts[(1 - i) * NR];
    for (std::size_t j = 0; j < NR; ++j) dparts_i[j] += dout[j] * other[j];
    return;
  }
  for (std::size_t j = 0; j < NR; ++j) {
    T others = dout[j];
    for (std::size_t k = 0; k < n; ++k)
      if (k != i) others *= parts[k * NR + j];
    dparts_i[j] += others;
  }
}

// ---- kernel-trick quadratic term: out[0] = fᵀ (G_L ⊙ G_R) f, G_L = L Lᵀ, G_R = R Rᵀ ----
// f[R], L[R,P], Rm[R,P]; saves gl[R,R], gr[R,R]. Cost R²P/2 (the Gram matrices are symmetric:
// each pair's dot product once), never P².
template <std::floating_point T>
void gram_quadratic_forward(std::span<T> out, std::span<T> gl, std::span<T> gr, std::span<const T> f,
                            std::span<const T> L, std::span<const T> Rm, std::size_t R, std::size_t P) {
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t k = 0; k <= j; ++k) {
      gl[j * R + k] = gl[k * R + j] = detail::dot_product(&L[j * P], &L[k * P], P);
      gr[j * R + k] = gr[k * R + j] = detail::dot_product(&Rm[j * P], &Rm[k * P], P);
    }
  T q = 0;
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t k = 0; k < R; ++k) q += f[j] * f[k] * gl[j * R + k] * gr[j * R + k];
  out[0] = q;
}
// ∂q/∂f_j = 2 Σ_k G_jk f_k; ∂q/∂l_j = 2 Σ_k f_j f_k (G_R)_jk l_k, i.e. dL += C_L · L with
// C_L[j,k] = 2 f_j f_k (G_R)_jk (one gemm); the same for R with L ↔ R. cl, cr: R·R scratch each.
template <std::floating_point T>
void gram_quadratic_backward(std::span<T> df, std::span<T> dL, std::span<T> dR, std::span<T> cl, std::span<T> cr,
                             std::span<const T> dout, std::span<const T> gl, std::span<const T> gr,
                             std::span<const T> f, std::span<const T> L, std::span<const T> Rm, std::size_t R,
                             std::size_t P) {
  const T d = dout[0];
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t k = 0; k < R; ++k) {
      const T g = gl[j * R + k] * gr[j * R + k];
      df[j] += T(2) * d * g * f[k];
      cl[j * R + k] = T(2) * d * f[j] * f[k] * gr[j * R + k];
      cr[j * R + k] = T(2) * d * f[j] * f[k] * gl[j * R + k];
    }
  detail::gemm_accumulate(dL.data(), cl.data(), L.data(), R, R, P);
  detail::gemm_accumulate(dR.data(), cr.data(), Rm.data(), R, R, P);
}

// ---- tape ops ----

// Elementwise product of n same-shaped factors.
template <std::floating_point T>
var product(basic_tape<T>& t, std::span<const var> factors) {
  if (factors.empty()) throw error("product: needs at least one factor");
  for (var f : factors)
    t.require(t.rows(f) == t.rows(factors[0]) && t.cols(f) == t.cols(factors[0]), "product",
              "factors must have one shape", {factors[0], f});
  const std::size_t n = factors.size(), NR = t.size(factors[0]);
  var y = t.make(t.rows(factors[0]), t.cols(factors[0]), factors, [](basic_tape<T>& t, const auto& nd) {
    const std::size_t n = nd.n_inputs, NR = nd.rows * nd.cols;
    auto parts = t.saved(nd, n * NR);
    for (std::size_t i = 0; i < n; ++i)
      if (t.needs_grad(t.input_of(nd, i))) product_backward<T>(t.grad(t.input_of(nd, i)), i, t.grad(nd), parts, n, NR);
  });
  auto parts = t.save(y, n * NR);  // the factors side by side, so the kernel walks one buffer
  for (std::size_t i = 0; i < n; ++i) std::ranges::copy(t.value(factors[i]), parts.begin() + std::ptrdiff_t(i * NR));
  product_forward<T>(t.value(y), parts, n, NR);
  return y;
}

// Π_i (x_i · W_iᵀ): the polynomial feature of degree n = weights.size(). A BAE is
// {L, R} on {x, x}; tensor-product tokens are {Pa, Pb} on {f1, f2}; a degree-3 feature is
// {W0, W1, W2} on {x, x, x}.
template <std::floating_point T>
var product_of_projections(basic_tape<T>& t, std::span<const var> weights, std::span<const var> inputs) {
  if (weights.size() != inputs.size() || weights.size() > 8)
    throw error("product_of_projections: " + std::to_string(weights.size()) + " weights for " +
                std::to_string(inputs.size()) + " inputs (at most 8 factors)");
  var proj[8];
  for (std::size_t i = 0; i < weights.size(); ++i) proj[i] = matmul(t, inputs[i], weights[i]);
  return product(t, std::span<const var>(proj, weights.size()));
}

// fᵀ((L Lᵀ) ⊙ (R Rᵀ)) f for f[1,R] and L, R [R,P]
template <std::floating_point T>
var gram_quadratic(basic_tape<T>& t, var f, var L, var R) {
  const std::size_t r = t.rows(L), P = t.cols(L);
  t.require(t.size(f) == r && t.rows(R) == r && t.cols(R) == P, "gram_quadratic",
            "f has one value per row of L and R, and L, R have one shape", {f, L, R});
  var y = t.make(1, 1, {f, L, R}, [](basic_tape<T>& t, const auto& n) {
    var f = t.input_of(n, 0), L = t.input_of(n, 1), R = t.input_of(n, 2);
    const std::size_t r = t.rows(L), P = t.cols(L);
    auto g = t.saved(n, 2 * r * r), c = t.scratch(2 * r * r);
    gram_quadratic_backward<T>(t.grad(f), t.grad(L), t.grad(R), c.first(r * r), c.subspan(r * r), t.grad(n),
                               g.first(r * r), g.subspan(r * r), t.value(f), t.value(L), t.value(R), r, P);
  });
  auto g = t.save(y, 2 * r * r);
  gram_quadratic_forward<T>(t.value(y), g.first(r * r), g.subspan(r * r), t.value(f), t.value(L), t.value(R), r, P);
  return y;
}

// The exact reconstruction error ‖x xᵀ − Σ_j f_j l_j r_jᵀ‖²_F of x[1,P] by the rank-R code f[1,R],
// by the kernel trick: (x·x)² − 2 Σ_j f_j (l_j·x)(r_j·x) + fᵀ((L Lᵀ)⊙(R Rᵀ))f.
template <std::floating_point T>
var reconstruction_error(basic_tape<T>& t, var f, var L, var R, var x) {
  const var weights[2] = {L, R}, inputs[2] = {x, x};
  var xx = dot(t, x, x);
  var cross = dot(t, f, product_of_projections<T>(t, weights, inputs));  // Σ f_j (l_j·x)(r_j·x)
  return add(t, add(t, mul(t, xx, xx), scale(t, cross, T(-2))), gram_quadratic(t, f, L, R));
}

// The seed's normalised variant (SPEC.md §Visual tokenizer 5): with f̂ = f/‖f‖, L̂, R̂ the rows of
// L, R normalised: clamp(f̂ᵀ((L̂L̂ᵀ)⊙(R̂R̂ᵀ))f̂ − 2 f̂ᵀf̂ + xᵀx, 0, 10). Unlike the seed, its gradient flows.
template <std::floating_point T>
var seed_reconstruction_error(basic_tape<T>& t, var f, var L, var R, var x) {
  var fn = l2norm(t, f);
  var q = gram_quadratic(t, fn, l2norm(t, L), l2norm(t, R));
  var e = add(t, add(t, q, scale(t, dot(t, fn, fn), T(-2))), dot(t, x, x));
  return clamp(t, e, T(0), T(10));
}

// ---- the tokenizer ----

struct direct_feature {
  std::size_t degree = 2;  // number of projections multiplied
  std::size_t count = 8;   // features of that degree
};

// SPEC.md's seed configuration is the default value.
struct tokenizer_config {
  std::size_t pixels = 196;          // P: length of the (pooled, normalised) image vector
  std::size_t bae_rank = 10;         // R: features of each of the two BAEs
  std::size_t tensor_tokens = 12;    // K: BAE×BAE tokens (0: no BAE branch at all)
  std::vector<direct_feature> direct = {{2, 8}, {3, 8}};
  bool reconstruction = true;        // the seed's recon loss on the first degree-2 direct feature

  std::size_t features() const {
    std::size_t f = tensor_tokens;
    for (const auto& d : direct) f += d.count;
    return f;
  }
  void validate() const {
    auto fail = [](const std::string& m) { throw error("tokenizer_config." + m); };
    if (pixels == 0) fail("pixels must be at least 1");
    if (direct.size() > 8) fail("direct may list at most 8 features, got " + std::to_string(direct.size()));
    if (tensor_tokens > 0 && bae_rank == 0) fail("bae_rank must be at least 1 when tensor_tokens > 0");
    for (std::size_t i = 0; i < direct.size(); ++i) {
      if (direct[i].degree == 0 || direct[i].degree > 8)
        fail("direct[" + std::to_string(i) + "].degree must be 1..8, got " + std::to_string(direct[i].degree));
      if (direct[i].count == 0) fail("direct[" + std::to_string(i) + "].count must be at least 1");
    }
    if (features() == 0) fail("tensor_tokens and direct give no features");
    if (reconstruction && recon_index() == direct.size())
      fail("reconstruction needs a direct feature of degree 2");
  }
  // Parameters a tokenizer of this config registers.
  std::size_t parameter_count() const {
    std::size_t n = tensor_tokens > 0 ? 4 * bae_rank * pixels + 2 * tensor_tokens * bae_rank : 0;
    for (const auto& d : direct) n += d.degree * d.count * pixels;
    return n;
  }
  std::size_t recon_index() const {
    for (std::size_t i = 0; i < direct.size(); ++i) if (direct[i].degree == 2) return i;
    return direct.size();
  }
};

template <std::floating_point T>
class basic_tokenizer {
public:
  struct output {
    var features;  // [1, F], L2-normalised
    var recon;     // [1, 1] seed reconstruction error, or the features var when disabled
    bool has_recon = false;
  };

  // Registers the parameters in `ps` under the seed's names; as in SPEC.md, Normal(0, 0.05) for
  // the BAE matrices (L, R of both BAEs, every direct feature's projections) and 0.08 for the
  // tensor-product projections Pa, Pb, like everything else in the model.
  basic_tokenizer(const tokenizer_config& cfg, basic_parameters<T>& ps, rng& g) : cfg_(cfg) {
    cfg_.validate();
    const T std = T(0.05), tp_std = T(0.08);
    const std::size_t P = cfg_.pixels, R = cfg_.bae_rank, K = cfg_.tensor_tokens;
    if (K > 0) {
      for (const char* n : {"bae1_l", "bae1_r", "bae2_l", "bae2_r"}) bae_.push_back(ps.add(n, R, P, std, g));
      tp_a_ = ps.add("tp_proj_a", K, R, tp_std, g);
      tp_b_ = ps.add("tp_proj_b", K, R, tp_std, g);
    }
    for (const auto& d : cfg_.direct) {
      std::vector<std::size_t> ws;
      for (std::size_t i = 0; i < d.degree; ++i)
        ws.push_back(ps.add(name_for(d.degree, i, ps), d.count, P, std, g));
      direct_.push_back(std::move(ws));
    }
  }

  // with_recon = false skips the reconstruction error (generation does not need it).
  output forward(basic_tape<T>& t, const basic_parameters<T>& ps, std::span<T> grads, var x, bool with_recon = true) const {
    if (t.size(x) != cfg_.pixels)
      throw error("tokenizer: image of " + std::to_string(t.size(x)) + " values, config.pixels is " +
                  std::to_string(cfg_.pixels));
    auto p = [&](std::size_t i) { return t.parameter(ps, i, grads); };
    var parts[9];  // the BAE×BAE tokens and up to 8 direct features: no allocation per step
    std::size_t n_parts = 0;
    output out;
    if (cfg_.tensor_tokens > 0) {
      const var w1[2] = {p(bae_[0]), p(bae_[1])}, w2[2] = {p(bae_[2]), p(bae_[3])}, xx[2] = {x, x};
      var f1 = l2norm(t, product_of_projections<T>(t, w1, xx));                  // BAE1, degree 2
      var f2 = l2norm(t, product_of_projections<T>(t, w2, xx));                  // BAE2, degree 2
      const var wt[2] = {p(tp_a_), p(tp_b_)}, ft[2] = {f1, f2};
      parts[n_parts++] = product_of_projections<T>(t, wt, ft);                     // tokens, degree 4
    }
    for (std::size_t k = 0; k < direct_.size(); ++k) {
      var ws[8], xs[8];
      for (std::size_t i = 0; i < direct_[k].size(); ++i) { ws[i] = p(direct_[k][i]); xs[i] = x; }
      var d = product_of_projections<T>(t, std::span<const var>(ws, direct_[k].size()),
                                        std::span<const var>(xs, direct_[k].size()));  // degree n
      if (with_recon && cfg_.reconstruction && k == cfg_.recon_index()) {
        out.recon = seed_reconstruction_error(t, d, ws[0], ws[1], x);
        out.has_recon = true;
      }
      parts[n_parts++] = d;
    }
    var all = parts[0];
    for (std::size_t i = 1; i < n_parts; ++i) all = concat(t, all, parts[i]);
    out.features = l2norm(t, all);
    if (!out.has_recon) out.recon = out.features;
    return out;
  }

  const tokenizer_config& config() const { return cfg_; }
  // Parameters this tokenizer registered.
  std::size_t parameter_count() const { return cfg_.parameter_count(); }

private:
  static std::string name_for(std::size_t degree, std::size_t i, const basic_parameters<T>& ps) {
    // bae_deg2_0, bae_deg2_1, …; a second feature list of the same degree gets a letter suffix
    std::string base = "bae_deg" + std::to_string(degree);
    std::string name = base + "_" + std::to_string(i);
    for (char c = 'b'; ps.find(name); ++c) name = base + c + "_" + std::to_string(i);
    return name;
  }

  tokenizer_config cfg_;
  std::vector<std::size_t> bae_;
  std::size_t tp_a_ = 0, tp_b_ = 0;
  std::vector<std::vector<std::size_t>> direct_;
};

}  // namespace purevlm

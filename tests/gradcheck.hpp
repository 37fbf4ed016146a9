// SPDX-License-Identifier: MIT
// The one finite-difference gradient check every test uses (central differences, 4th order). A test puts everything it wants
// checked (weights and inputs alike) in a parameter store, and gives a function that builds a
// scalar loss on a tape. The helper compares the tape's gradient with central differences.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include <purevlm/tape.hpp>

namespace purevlm::test {

struct gradcheck_result {
  double worst = 0;     // largest relative error seen
  std::string where;    // "name[index]: analytic vs numeric"
  std::size_t checked = 0;
};

// Relative error |a − n| / max(|a|, |n|, floor): below the floor (1e-5) a gradient is compared
// absolutely, at tolerance·floor, since rounding leaves ~1e-12 of noise in any numeric estimate.
template <class Build>
gradcheck_result gradcheck(basic_parameters<double>& ps, Build&& build, std::size_t max_per_param = 400,
                           double h = 5e-4, double floor = 1e-5) {
  basic_tape<double> t;
  ps.zero_grads();
  t.backward(build(t, ps));
  const std::vector<double> analytic(ps.grads().begin(), ps.grads().end());

  auto loss_at = [&] {
    t.reset();
    return t.value(build(t, ps))[0];
  };
  gradcheck_result r;
  for (const auto& e : ps.entries()) {
    const std::size_t stride = std::max<std::size_t>(1, e.size() / max_per_param);  // sample big ones
    for (std::size_t i = 0; i < e.size(); i += stride) {
      double& p = ps.values()[e.offset + i];
      const double keep = p;
      auto at = [&](double d) { p = keep + d; return loss_at(); };
      // fourth-order central stencil: truncation O(h⁴), so h can be large enough that
      // rounding (≈ 1e-16·|loss|/h) stays far below the gradients being checked
      auto numeric_at = [&](double s) { return (at(-2 * s) - 8 * at(-s) + 8 * at(s) - at(2 * s)) / (12 * s); };
      const double a = analytic[e.offset + i];
      auto error_of = [&](double n) { return std::abs(a - n) / std::max({std::abs(a), std::abs(n), floor}); };
      double numeric = numeric_at(h), rel = error_of(numeric);
      // A stencil that straddles a kink (a ReLU or clamp switching within ±2h) is wrong there; a
      // step 16x or 256x smaller usually is not. A wrong analytic gradient disagrees with all three.
      for (double finer : {h / 16, h / 256}) {
        if (rel <= 1e-7) break;
        const double fine = numeric_at(finer);
        if (error_of(fine) < rel) { numeric = fine; rel = error_of(fine); }
      }
      p = keep;
      ++r.checked;
      if (rel > r.worst) {
        r.worst = rel;
        r.where = e.name + "[" + std::to_string(i) + "]: analytic " + std::to_string(a) + " vs numeric " +
                  std::to_string(numeric);
      }
    }
  }
  return r;
}

}  // namespace purevlm::test

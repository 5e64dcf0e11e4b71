// gradcheck: compares every analytic gradient with central finite differences.
//
// f maps the inputs to an output of any shape; the check differentiates the
// scalar L = sum(f(x) * R) for a fixed random R, so the whole vector-Jacobian
// product is exercised, not just one row of it. The engine is float32, so the
// step is moderate (eps ~ 1e-2 relative to |x|) and the tolerances are
// float-sized; keep inputs away from kinks (relu at 0, max ties, |x| at 0).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace qkv {

struct GradcheckOptions {
  double eps = 1e-2;        // step: eps * max(|x|, 1)
  double atol = 2e-3;       // pass if |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 2e-2;
  int64_t max_per_input = 64;  // elements checked per input (a seeded sample beyond)
  uint64_t seed = 0;
};

struct GradcheckResult {
  bool ok = true;
  std::string report;  // first failure: input name/index, element, both values
};

// Inputs that require a gradient are checked; the others are held fixed.
GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Var>& inputs, const GradcheckOptions& opt = {});

}  // namespace qkv

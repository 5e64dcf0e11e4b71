// Helpers shared by the gradient tests: one-line gradcheck assertions and
// random leaf Vars.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tests/test_utils.h"

namespace qkv::test {

using GradFn = std::function<Var(const std::vector<Var>&)>;

// gradcheck(f, in) must pass; the report names the input and element if not.
inline void expect_ok(const GradFn& f, const std::vector<Var>& in, const std::string& what,
                      const GradcheckOptions& opt = {}) {
  auto r = gradcheck(f, in, opt);
  INFO(what, ": ", r.report);
  CHECK(r.ok);
}

// A leaf Var with values uniform in [lo, hi).
inline Var rv(Shape s, uint64_t seed, float lo = -1.f, float hi = 1.f, bool grad = true) {
  return Var(rand_tensor(std::move(s), seed, lo, hi), grad);
}

}  // namespace qkv::test

// Helpers shared by the doctest suites: the size sweep every kernel is tested
// over, random tensors, and tolerance-scaled comparison with a readable report.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::test {

// Built with AddressSanitizer (GCC defines __SANITIZE_ADDRESS__, clang has the feature).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#else
inline constexpr bool kAsan = false;
#endif

// Sizes with SIMD tails on every width (4, 8, 16 lanes) and odd shapes.
inline const std::vector<int64_t> kSizes = {1, 3, 7, 15, 16, 17, 31, 33, 100, 257};

inline Tensor rand_tensor(Shape s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  return uniform(std::move(s), lo, hi, g);
}

struct Diff {
  double max_abs = 0, max_rel = 0;  // rel: |a-b| / max(|b|, 1)
  int64_t worst = -1;
  bool bad_nan = false;              // NaN in one but not the other
};

inline Diff diff(const float* got, const float* want, int64_t n) {
  Diff d;
  for (int64_t i = 0; i < n; ++i) {
    double a = got[i], b = want[i];
    if (std::isnan(a) || std::isnan(b)) {
      if (std::isnan(a) != std::isnan(b)) { d.bad_nan = true; d.worst = i; }
      continue;
    }
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b) { d.max_abs = d.max_rel = std::numeric_limits<double>::infinity(); d.worst = i; }
      continue;
    }
    double e = std::fabs(a - b), r = e / std::max(std::fabs(b), 1.0);
    if (r > d.max_rel) { d.max_rel = r; d.worst = i; }
    d.max_abs = std::max(d.max_abs, e);
  }
  return d;
}

// got ~ want within tol relative to max(|want|, 1); reports the worst element.
inline void expect_close(const float* got, const float* want, int64_t n, double tol,
                         const std::string& what) {
  Diff d = diff(got, want, n);
  INFO(what, ": max_rel=", d.max_rel, " max_abs=", d.max_abs, " at ", d.worst,
       d.worst >= 0 ? " got " + std::to_string(got[d.worst]) + " want " +
                          std::to_string(want[d.worst])
                    : std::string());
  CHECK(!d.bad_nan);
  CHECK(d.max_rel <= tol);
}

inline void expect_close(const Tensor& got, const Tensor& want, double tol,
                         const std::string& what) {
  INFO(what, ": shapes ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  REQUIRE(got.shape() == want.shape());
  expect_close(got.data(), want.data(), got.numel(), tol, what);
}

// Float rounding tolerance for a result accumulated over `len` terms.
inline double tol_for(int64_t len, double base = 4e-7) {
  return base * std::max<double>(4.0, std::sqrt(double(len)) * 4.0);
}

// A committed fixture file: tests/fixtures/<rel>. The folder is compiled into
// tests/fixtures_dir.cpp alone, so the other test objects do not depend on
// where the checkout lives.
const char* fixtures_dir();
inline std::string fixture_path(const std::string& rel) {
  return std::string(fixtures_dir()) + "/" + rel;
}

// The message of the qkv::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace qkv::test

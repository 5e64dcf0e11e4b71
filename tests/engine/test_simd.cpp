// The kernels' vector exp and exp2 (engine/simd.h) against double-precision
// std::exp / std::exp2: relative error over the range they serve, and their
// edges (underflow to denormals and 0, overflow to inf, -inf, +inf, NaN).
#include <cmath>
#include <limits>
#include <vector>

#include "engine/simd.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

template <class F>
std::vector<float> apply(const std::vector<float>& x, F f) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + W <= x.size(); i += W)
    f(VF::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
  return y;
}

std::vector<float> exp_of(const std::vector<float>& x) {
  return apply(x, [](VF v) { return simd::exp(v); });
}

std::vector<float> exp2_of(const std::vector<float>& x) {
  return apply(x, [](VF v) { return simd::exp2(v); });
}

TEST_SUITE("engine/simd") {
  TEST_CASE("exp: relative error <= 1.5e-7 (about 1-2 ULP) on [-87, 88.7], a dense grid") {
    std::vector<float> x;
    for (double v = -87.0; v < 88.7; v += 0.0003) x.push_back(float(v));
    while (x.size() % W) x.push_back(0.f);
    const std::vector<float> y = exp_of(x);
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(double(x[i]));
      worst = std::max(worst, std::fabs(y[i] - want) / want);
    }
    MESSAGE("max relative error ", worst);
    CHECK(worst <= 1.5e-7);
  }

  TEST_CASE("exp: denormals, 0, inf and NaN at the edges") {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    std::vector<float> x = {-kInf, -1e30f, -104.f, -103.f, -95.f, -88.f,         88.72f, 89.f,
                            100.f, kInf,   0.f,    -0.f,   1.f,   std::nanf(""), -1.f,   2.f};
    x.resize(size_t(W) * ((x.size() + W - 1) / W), 0.f);
    const std::vector<float> y = exp_of(x);
    CHECK(y[0] == 0.f);
    CHECK(y[1] == 0.f);
    CHECK(y[2] == 0.f);
    CHECK(std::fabs(y[3] - std::exp(-103.0)) <= 1.5e-45);  // denormal, within one step
    CHECK(std::fabs(y[4] - std::exp(-95.0)) <= 2e-7 * std::exp(-95.0) + 1.5e-45);
    CHECK(std::fabs(y[5] - std::exp(-88.0)) <= 2e-7 * std::exp(-88.0) + 1.5e-45);
    CHECK(std::isfinite(y[6]));  // 3.3e38 < FLT_MAX: no overflow on the way
    CHECK(y[6] == doctest::Approx(std::exp(double(88.72f))).epsilon(2e-7));
    CHECK(y[7] == kInf);
    CHECK(y[8] == kInf);
    CHECK(y[9] == kInf);
    CHECK(y[10] == 1.f);
    CHECK(y[11] == 1.f);
    CHECK(y[12] == doctest::Approx(std::exp(1.0)).epsilon(2e-7));
    CHECK(std::isnan(y[13]));
  }

  // exp2 serves softmax's t = x log2e - max log2e <= 0 (and a little above 0
  // from the rounding of max log2e); checked on both sides and to 20 (overflow).
  TEST_CASE("exp2: relative error <= 2e-7 on [-126, 20], a dense grid; every table entry") {
    std::vector<float> t;
    for (double v = -126.0; v < 20.0; v += 0.0002) t.push_back(float(v));
    for (int j = -64; j <= 64; ++j) t.push_back(float(j) / 32.f);  // f = 0 at each entry
    while (t.size() % W) t.push_back(0.f);
    const std::vector<float> y = exp2_of(t);
    double worst = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const double want = std::exp2(double(t[i]));
      worst = std::max(worst, std::fabs(y[i] - want) / want);
    }
    MESSAGE("max relative error ", worst);
    CHECK(worst <= 2e-7);
  }

  TEST_CASE("exp2: exactly 1 at 0, denormals, 0, inf and NaN at the edges") {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    std::vector<float> t = {-kInf, -1e30f, -200000.f, -150.f,        -140.f, -127.5f, 0.f,  -0.f,
                            128.f, 1e30f,  kInf,      std::nanf(""), 1.f,    -1.f,    0.5f, -3.f};
    t.resize(size_t(W) * ((t.size() + W - 1) / W), 0.f);
    const std::vector<float> y = exp2_of(t);
    CHECK(y[0] == 0.f);
    CHECK(y[1] == 0.f);
    CHECK(y[2] == 0.f);
    CHECK(y[3] == 0.f);                                     // below half the least denormal
    CHECK(std::fabs(y[4] - std::exp2(-140.0)) <= 1.5e-45);  // denormal, within one step
    CHECK(std::fabs(y[5] - std::exp2(-127.5)) <= 2e-7 * std::exp2(-127.5) + 1.5e-45);
    CHECK(y[6] == 1.f);
    CHECK(y[7] == 1.f);
    CHECK(y[8] == kInf);
    CHECK(y[9] == kInf);
    CHECK(y[10] == kInf);
    CHECK(std::isnan(y[11]));
    CHECK(y[12] == 2.f);
    CHECK(y[13] == 0.5f);
    CHECK(y[14] == doctest::Approx(std::sqrt(2.0)).epsilon(2e-7));
    CHECK(y[15] == 0.125f);
  }
}

}  // namespace
}  // namespace qkv

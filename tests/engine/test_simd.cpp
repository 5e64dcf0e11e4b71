// The kernels' vector exp (engine/simd.h) against double-precision std::exp:
// relative error over the whole float range it covers, and its edges
// (underflow to denormals and 0, overflow to inf, -inf, +inf, NaN).
#include <cmath>
#include <limits>
#include <vector>

#include "engine/simd.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using simd::VF;
using simd::W;

std::vector<float> exp_of(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + W <= x.size(); i += W)
    simd::exp(VF::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
  return y;
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
}

}  // namespace
}  // namespace qkv

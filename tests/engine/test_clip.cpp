// The gradient-clipping kernels against their scalar references over sizes
// with tails: partial norms (p = 1, 2 and a general p), max |x| with NaN
// winning, and the in-place scale and clamp (exact).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "engine/kernels/clip.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::rand_tensor;

TEST_SUITE("engine/clip") {
  TEST_CASE("power sums and max |x| equal the references") {
    uint64_t seed = 1;
    std::vector<int64_t> sizes = test::kSizes;
    sizes.insert(sizes.end(), {0, 255, 256, 257, 1000});
    for (int64_t n : sizes) {
      Tensor x = rand_tensor({std::max<int64_t>(n, 1)}, ++seed, -3.f, 3.f);
      for (double p : {1.0, 2.0, 3.5}) {
        const double got = clip_power_sum(x.data(), n, p),
                     want = clip_power_sum_ref(x.data(), n, p);
        INFO("n=", n, " p=", p);
        CHECK(std::fabs(got - want) <= 1e-6 * std::max(1.0, want));
      }
      INFO("n=", n);
      CHECK(clip_max_abs(x.data(), n) == clip_max_abs_ref(x.data(), n));
      if (n >= 3) {
        x.data()[n - 2] = std::numeric_limits<float>::quiet_NaN();
        CHECK(std::isnan(clip_max_abs(x.data(), n)));
        CHECK(std::isnan(clip_max_abs_ref(x.data(), n)));
      }
    }
  }

  TEST_CASE("scale and clamp equal the references bit for bit") {
    uint64_t seed = 50;
    for (int64_t n : test::kSizes) {
      Tensor x = rand_tensor({n}, ++seed, -3.f, 3.f);
      if (n >= 2) x.data()[1] = std::numeric_limits<float>::quiet_NaN();
      Tensor a = x.clone(), b = x.clone();
      clip_scale(a.data(), n, 0.37f);
      clip_scale_ref(b.data(), n, 0.37f);
      INFO("n=", n);
      CHECK(std::memcmp(a.data(), b.data(), size_t(n) * sizeof(float)) == 0);
      a = x.clone(), b = x.clone();
      clip_clamp(a.data(), n, 1.25f);
      clip_clamp_ref(b.data(), n, 1.25f);
      CHECK(std::memcmp(a.data(), b.data(), size_t(n) * sizeof(float)) == 0);
      for (int64_t i = 0; i < n; ++i)
        if (!std::isnan(a.data()[i])) CHECK(std::fabs(a.data()[i]) <= 1.25f);
    }
  }
}

}  // namespace
}  // namespace qkv

// The row reductions (sum, dot, centred moments) against their double-
// precision references over lengths with SIMD tails, unaligned starts, the
// pairwise split of long rows, and a large mean (where E[x^2] - E[x]^2 fails).
#include <cmath>
#include <string>
#include <vector>

#include "engine/kernels/row_moments.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// |got - want| within rounding of a float sum over n terms of magnitude scale.
void expect_near(double got, double want, int64_t n, double scale, const std::string& what) {
  const double tol = 8e-7 * std::max<double>(8.0, double(n)) * scale + 1e-30;
  INFO(what << ": got " << got << ", want " << want);
  CHECK(std::fabs(got - want) <= tol);
}

TEST_SUITE("engine/row_moments") {
  TEST_CASE("sum, dot and centred moments match the references") {
    uint64_t seed = 7;
    std::vector<int64_t> sizes(test::kSizes.begin(), test::kSizes.end());
    sizes.insert(sizes.end(), {2047, 2048, 2049, 5000, 9001});  // around the pairwise split
    for (int64_t n : sizes)
      for (int64_t offset : {0, 1, 3}) {  // unaligned starts
        const std::string what = "n" + std::to_string(n) + " offset" + std::to_string(offset);
        const Tensor a = test::rand_tensor({n + offset}, seed++);
        const Tensor b = test::rand_tensor({n + offset}, seed++);
        const float* pa = a.data() + offset;
        const float* pb = b.data() + offset;
        expect_near(rows::sum(pa, n), rows::sum_ref(pa, n), n, 1.0, what + " sum");
        expect_near(rows::dot(pa, pb, n), rows::dot_ref(pa, pb, n), n, 1.0, what + " dot");
        const rows::Moments m = rows::centred(pa, n, pb);
        const rows::MomentsRef r = rows::centred_ref(pa, n);
        expect_near(m.mean0, r.mean0, 1, 1.0, what + " mean0");
        expect_near(m.sum_d, r.sum_d, n, 1.0, what + " sum_d");
        expect_near(m.sum_d2, r.sum_d2, n, 1.0, what + " sum_d2");
      }
  }

  TEST_CASE("centred moments hold for a mean far larger than the spread") {
    // x = 1e4 + u, u in [-1, 1): the one-pass form would lose every digit.
    for (int64_t n : {5, 64, 1000, 4099}) {
      Tensor x = test::rand_tensor({n}, 100 + uint64_t(n));
      for (float& v : x) v += 1e4f;
      const rows::Moments m = rows::centred(x.data(), n);
      const rows::MomentsRef r = rows::centred_ref(x.data(), n);
      const double var = (m.sum_d2 - m.sum_d * m.sum_d / double(n)) / double(n);
      const double var_ref = r.sum_d2 / double(n);
      INFO("n " << n << ": var " << var << ", want " << var_ref);
      CHECK(std::fabs(var - var_ref) <= 1e-3 * var_ref);
    }
  }
}

}  // namespace
}  // namespace qkv

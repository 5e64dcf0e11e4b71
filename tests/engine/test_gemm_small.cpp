// gemm_small() against gemm_ref(): both layouts of A, every column panel
// width (1-4 vectors and a scalar tail), row remainders of every tile height,
// K = 0, alpha/beta cases, and leading dimensions wider than the rows.
#include <vector>

#include "engine/kernels/gemm.h"
#include "engine/kernels/gemm_small.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

void check_small(bool ta, int64_t M, int64_t N, int64_t K, float alpha, float beta, int64_t pad,
                 uint64_t seed) {
  const int64_t lda = (ta ? M : K) + pad + (ta ? 0 : K == 0), ldb = N + pad, ldc = N + pad;
  Tensor A = test::rand_tensor({std::max<int64_t>(ta ? K : M, 1), std::max<int64_t>(lda, 1)}, seed);
  Tensor B = test::rand_tensor({std::max<int64_t>(K, 1), ldb}, seed + 1);
  Tensor C0 = test::rand_tensor({std::max<int64_t>(M, 1), ldc}, seed + 2);
  Tensor C = C0.clone(), R = C0.clone();
  gemm_small(ta, M, N, K, alpha, A.data(), std::max<int64_t>(lda, 1), B.data(), ldb, beta,
             C.data(), ldc);
  gemm_ref(ta, false, M, N, K, alpha, A.data(), std::max<int64_t>(lda, 1), B.data(), ldb, beta,
           R.data(), ldc);
  std::string what = "gemm_small ta=" + std::to_string(ta) + " M=" + std::to_string(M) +
                     " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                     " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta) +
                     " pad=" + std::to_string(pad);
  test::expect_close(C.data(), R.data(), C.numel(), test::tol_for(K, 6e-7) * 2.5, what);
}

TEST_SUITE("engine/gemm_small") {
  TEST_CASE("sizes: row remainders, panel widths and column tails") {
    uint64_t seed = 1;
    for (bool ta : {false, true})
      for (int64_t m : test::kSizes)
        for (int64_t n : {1, 7, 16, 17, 32, 33, 48, 64, 65, 100, 128, 130})
          for (int64_t k : {1, 17, 32, 128}) check_small(ta, m, n, k, 1.f, 0.f, 0, seed++);
  }

  TEST_CASE("alpha, beta, K = 0 and padded leading dimensions") {
    uint64_t seed = 1000;
    for (bool ta : {false, true})
      for (auto [alpha, beta] : std::vector<std::pair<float, float>>{
               {1.f, 1.f}, {0.25f, 0.f}, {-0.5f, 0.75f}, {2.f, -1.f}})
        for (int64_t k : {0, 5, 64})
          for (int64_t pad : {0, 3}) {
            check_small(ta, 13, 32, k, alpha, beta, pad, seed++);
            check_small(ta, 64, 75, k, alpha, beta, pad, seed++);
          }
  }

  TEST_CASE("beta = 0 never reads C") {
    Tensor A = test::rand_tensor({20, 8}, 1), B = test::rand_tensor({8, 40}, 2);
    Tensor C = full({20, 40}, std::nanf(""));
    gemm_small(false, 20, 40, 8, 1.f, A.data(), 8, B.data(), 40, 0.f, C.data(), 40);
    for (int64_t i = 0; i < C.numel(); ++i) REQUIRE(!std::isnan(C.data()[i]));
  }

  TEST_CASE("bad sizes are refused") {
    float x = 0;
    CHECK_THROWS_WITH_AS(gemm_small(false, 2, 4, 3, 1.f, &x, 2, &x, 4, 0.f, &x, 4),
                         doctest::Contains("gemm_small"), Error);
  }
}

}  // namespace
}  // namespace qkv

// gemm() against gemm_ref(): every transpose combination, alpha/beta cases,
// leading dimensions larger than the row, edge tiles in M, N and K, the small
// (few rows / few columns) paths, the blocked path across KC/MC/NC boundaries,
// and both thread counts.
#include <array>
#include <cmath>
#include <vector>

#include "engine/kernels/gemm.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

struct Gemm {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad = 0;  // extra columns in every leading dimension
  bool row_bias = false, col_bias = false, relu = false, gate = false;  // the epilogue
  bool add = false;       // its addend
  bool row_sums = false;  // and the side output
};

// Runs gemm and gemm_ref on the same random operands and compares.
void check_gemm(const Gemm& g, uint64_t seed) {
  const int64_t lda = (g.ta ? g.M : g.K) + g.pad, ldb = (g.tb ? g.K : g.N) + g.pad,
                ldc = g.N + g.pad;
  const int64_t a_rows = g.ta ? g.K : g.M, b_rows = g.tb ? g.N : g.K;
  Tensor A = test::rand_tensor({std::max<int64_t>(a_rows, 1), lda}, seed);
  Tensor B = test::rand_tensor({std::max<int64_t>(b_rows, 1), ldb}, seed + 1);
  Tensor C0 = test::rand_tensor({std::max<int64_t>(g.M, 1), ldc}, seed + 2);
  Tensor C = C0.clone(), R = C0.clone();
  Tensor rb = test::rand_tensor({std::max<int64_t>(g.M, 1)}, seed + 3);
  Tensor cb = test::rand_tensor({std::max<int64_t>(g.N, 1)}, seed + 4);
  // the gate: about half its entries <= 0 (a few exactly 0, which close the gate too)
  Tensor gt = test::rand_tensor({std::max<int64_t>(g.M, 1), ldc}, seed + 5);
  for (int64_t i = 0; i < gt.numel(); i += 11) gt.data()[i] = 0.f;
  // the addend: rows ldc + 5 apart (its own stride), padding NaN, which must not leak
  const int64_t ld_add = g.N + 5;
  Tensor ad = test::rand_tensor({std::max<int64_t>(g.M, 1), ld_add}, seed + 6);
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = g.N; j < ld_add; ++j) ad.data()[i * ld_add + j] = std::nanf("");
  GemmEpilogue ep;
  if (g.add) ep.add = ad.data(), ep.ld_add = ld_add;
  if (g.row_bias) ep.row_bias = rb.data();
  if (g.col_bias) ep.col_bias = cb.data();
  ep.relu = g.relu;
  if (g.gate) ep.gate = gt.data(), ep.ldg = ldc;
  Tensor sums = full({std::max<int64_t>(g.M, 1)}, std::nanf("")), sums_ref = sums.clone();
  if (g.row_sums) ep.row_sums = sums.data();
  gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.data(), lda, B.data(), ldb, g.beta, C.data(), ldc,
       ep);
  if (g.row_sums) ep.row_sums = sums_ref.data();
  gemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.data(), lda, B.data(), ldb, g.beta, R.data(),
           ldc, ep);
  // Entries are sums of K products of numbers in [-1,1]: error ~ sqrt(K) eps.
  const double tol = test::tol_for(g.K, 6e-7) * std::max(1.f, std::fabs(g.alpha));
  std::string what = "gemm ta=" + std::to_string(g.ta) + " tb=" + std::to_string(g.tb) +
                     " M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) +
                     " K=" + std::to_string(g.K) + " alpha=" + std::to_string(g.alpha) +
                     " beta=" + std::to_string(g.beta) + " pad=" + std::to_string(g.pad) +
                     " epilogue=" + std::to_string(g.row_bias) + std::to_string(g.col_bias) +
                     std::to_string(g.relu) + std::to_string(g.gate) + std::to_string(g.add) +
                     " row_sums=" + std::to_string(g.row_sums);
  test::expect_close(C.data(), R.data(), C.numel(), tol, what);  // padding columns included:
  // they must be untouched, which comparing whole buffers also checks.
  if (g.row_sums && g.M > 0) test::expect_close(sums.data(), sums_ref.data(), g.M, tol, what + " sums");
}

TEST_SUITE("engine/gemm") {
  TEST_CASE("all transposes over the size sweep (small and blocked paths)") {
    uint64_t seed = 1;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t m : test::kSizes)
          for (int64_t n : {int64_t(1), int64_t(7), int64_t(16), int64_t(33), int64_t(100)})
            for (int64_t k : {int64_t(1), int64_t(17), int64_t(257)})
              check_gemm({ta, tb, m, n, k, 1.f, 0.f}, seed++);
  }

  TEST_CASE("alpha and beta") {
    uint64_t seed = 100;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto [alpha, beta] : std::vector<std::pair<float, float>>{
                 {1.f, 1.f}, {2.5f, 0.f}, {-0.5f, 0.75f}, {1.f, -1.f}, {0.f, 0.5f}, {0.f, 0.f}})
          for (int64_t m : {3, 31, 100})
            for (int64_t n : {3, 33, 257}) check_gemm({ta, tb, m, n, 65, alpha, beta}, seed++);
  }

  TEST_CASE("leading dimensions wider than the rows") {
    uint64_t seed = 200;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t pad : {1, 5, 16}) check_gemm({ta, tb, 37, 45, 29, 1.f, 0.5f, pad}, seed++);
  }

  TEST_CASE("blocked path across KC, MC and NC boundaries") {
    // K > 256 (two pc blocks: the second accumulates with beta = 1), M > 192
    // (several ic blocks), N > 4096 (two jc blocks), at 1 and 2 threads.
    const int saved = num_threads();
    for (int nt : {1, 2}) {
      set_num_threads(nt);
      uint64_t seed = 300 + nt;
      check_gemm({false, false, 397, 131, 600, 1.f, 0.f}, seed++);
      check_gemm({true, false, 200, 300, 513, 0.5f, 2.f}, seed++);
      check_gemm({false, true, 250, 70, 300, 1.f, 1.f}, seed++);
      check_gemm({true, true, 13, 4100, 20, 1.f, 0.f}, seed++);
      check_gemm({false, false, 5000, 40, 8, 1.f, 0.f}, seed++);  // thin: A read in place
    }
    set_num_threads(saved);
  }

  TEST_CASE("epilogue on every path: biases, the addend, relu, the gate and row sums") {
    // Blocked with A read in place or packed (ta): edge tiles, several K
    // blocks (biases once, relu and the gate only at the end; row sums over
    // all), several ic blocks, two and three column blocks, panels split over
    // threads when M is small; few rows, few columns, K = 0 and alpha = 0;
    // at 1 and 2 threads.
    const int saved = num_threads();
    uint64_t seed = 400;
    for (int nt : {1, 2}) {
      set_num_threads(nt);
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{
                   {37, 70, 29}, {200, 131, 600}, {13, 900, 40}, {9, 450, 77}, {2, 45, 33},
                   {40, 5, 17}, {9, 20, 0}})
            for (int e = 1; e < 32; ++e) {
              const float beta = e == 3 || e == 8 || e == 17 ? 0.5f : 0.f;
              Gemm g{ta, tb, m, n, k, k == 77 ? 0.f : 1.5f, beta};
              g.row_bias = e & 1, g.col_bias = e & 2, g.relu = e & 4, g.gate = e & 8;
              g.add = e & 16;
              g.row_sums = e % 3 != 0;
              g.pad = k == 0;  // a leading dimension of at least 1
              check_gemm(g, seed++);
            }
    }
    set_num_threads(saved);
  }

  TEST_CASE("a prepacked B gives gemm()'s results, reused over several A") {
    // Across NC (384) and KC (512) blocks, ragged last panels, both layouts
    // of B, the blocked path and the small ones it hands back to gemm(),
    // an epilogue (with and without the addend), 1 and 2 threads; one PackedB
    // serves three products.
    const int saved = num_threads();
    uint64_t seed = 700;
    for (int nt : {1, 2}) {
      set_num_threads(nt);
      for (bool tb : {false, true})
        for (auto [n, k] : std::vector<std::array<int64_t, 2>>{
                 {70, 29}, {900, 600}, {2048, 40}, {5, 17}, {33, 0}}) {
          const int64_t ldb = (tb ? k : n) + 3;
          const Tensor B = test::rand_tensor({std::max<int64_t>(tb ? n : k, 1), ldb}, seed++);
          const PackedB pb(tb, k, n, B.data(), ldb);
          for (int64_t m : {int64_t(37), int64_t(2), int64_t(200)}) {
            const std::string what = std::string("packed tb=") + std::to_string(tb) + " M=" +
                                     std::to_string(m) + " N=" + std::to_string(n) +
                                     " K=" + std::to_string(k) + " threads " + std::to_string(nt);
            const Tensor A = test::rand_tensor({m, std::max<int64_t>(k, 1)}, seed++);
            const Tensor cb = test::rand_tensor({n}, seed++);
            const Tensor C0 = test::rand_tensor({m, n}, seed++);
            Tensor C = C0.clone(), R = C0.clone();
            const Tensor X = test::rand_tensor({m, n}, seed++);
            GemmEpilogue ep;
            ep.col_bias = cb.data(), ep.relu = m == 37;
            if (m != 37) ep.add = X.data(), ep.ld_add = n;  // the decoders' pre-activations
            const float beta = m == 200 ? 0.5f : 0.f;
            gemm(m, 1.25f, A.data(), std::max<int64_t>(k, 1), pb, beta, C.data(), n, ep);
            gemm_ref(false, tb, m, n, k, 1.25f, A.data(), std::max<int64_t>(k, 1), B.data(), ldb,
                     beta, R.data(), n, ep);
            test::expect_close(C, R, test::tol_for(k, 6e-7) * 1.25, what);
          }
        }
    }
    set_num_threads(saved);
  }

  TEST_CASE("beta = 0 never reads C: NaN in C does not leak") {
    const int64_t M = 40, N = 50, K = 30;
    Tensor A = test::rand_tensor({M, K}, 1), B = test::rand_tensor({K, N}, 2);
    for (int64_t m : {int64_t(2), M}) {  // few-rows path and blocked path
      Tensor C = full({M, N}, std::nanf(""));
      gemm(false, false, m, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N);
      for (int64_t i = 0; i < m * N; ++i) REQUIRE(!std::isnan(C.data()[i]));
    }
  }

  TEST_CASE("empty sizes") {
    Tensor C = full({4, 4}, 3.f);
    float dummy = 1.f;
    gemm(false, false, 0, 4, 4, 1.f, &dummy, 4, &dummy, 4, 0.f, C.data(), 4);  // no-op
    gemm(false, false, 4, 0, 4, 1.f, &dummy, 4, &dummy, 1, 0.f, C.data(), 4);  // no-op
    CHECK(C.data()[0] == 3.f);
    gemm(false, false, 4, 4, 0, 1.f, &dummy, 1, &dummy, 4, 2.f, C.data(), 4);  // C = 2C
    for (float v : C) CHECK(v == 6.f);
  }

  TEST_CASE("bad leading dimensions throw, naming gemm") {
    float x[64] = {};
    CHECK_THROWS_WITH_AS(gemm(false, false, 4, 4, 8, 1.f, x, 4, x, 4, 0.f, x, 4),
                         doctest::Contains("gemm: lda=4 too small"), Error);
    CHECK_THROWS_WITH_AS(gemm(false, true, 4, 4, 8, 1.f, x, 8, x, 4, 0.f, x, 4),
                         doctest::Contains("gemm: ldb=4 too small"), Error);
    CHECK_THROWS_WITH_AS(gemm(false, false, 4, 4, 4, 1.f, x, 4, x, 4, 0.f, x, 3),
                         doctest::Contains("gemm: ldc=3"), Error);
    float y[64] = {};
    GemmEpilogue ep;
    ep.add = y, ep.ld_add = 3;
    CHECK_THROWS_WITH_AS(gemm(false, false, 4, 4, 4, 1.f, x, 4, x, 4, 0.f, x, 4, ep),
                         doctest::Contains("gemm: ld_add=3 too small for the addend [4,4]"), Error);
  }

  TEST_CASE("deterministic for a fixed thread count") {
    const int64_t M = 300, N = 200, K = 700;
    Tensor A = test::rand_tensor({M, K}, 5), B = test::rand_tensor({K, N}, 6);
    Tensor C1 = zeros({M, N}), C2 = zeros({M, N});
    gemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C1.data(), N);
    gemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C2.data(), N);
    CHECK(std::memcmp(C1.data(), C2.data(), M * N * sizeof(float)) == 0);
  }
}

}  // namespace
}  // namespace qkv

// matmul(): batched products over broadcast leading dimensions, transposed
// operands, shared rank-2 weights, and shape errors, against matmul_ref.
#include "engine/kernels/matmul.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

void check_matmul(const Shape& sa, const Shape& sb, bool ta, bool tb, uint64_t seed) {
  Tensor a = test::rand_tensor(sa, seed), b = test::rand_tensor(sb, seed + 1);
  Tensor got = matmul(a, b, ta, tb), want = matmul_ref(a, b, ta, tb);
  const int64_t K = ta ? sa.end()[-2] : sa.back();
  test::expect_close(got, want, test::tol_for(K, 6e-7),
                     "matmul " + shape_str(sa) + (ta ? "^T" : "") + " x " + shape_str(sb) +
                         (tb ? "^T" : ""));
}

TEST_SUITE("engine/matmul") {
  TEST_CASE("plain, transposed and batched products") {
    uint64_t seed = 1;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        auto A = [&](int64_t m, int64_t k) { return ta ? Shape{k, m} : Shape{m, k}; };
        auto B = [&](int64_t k, int64_t n) { return tb ? Shape{n, k} : Shape{k, n}; };
        for (int64_t m : {1, 7, 33})
          for (int64_t n : {1, 16, 31}) check_matmul(A(m, 17), B(17, n), ta, tb, seed++);
        // batch [4,3] x shared weight
        Shape a = A(5, 9);
        a.insert(a.begin(), {4, 3});
        check_matmul(a, B(9, 6), ta, tb, seed++);
        // broadcast batch: [2,1,..] x [3,..] -> [2,3,..]
        Shape a2 = A(7, 8), b2 = B(8, 5);
        a2.insert(a2.begin(), {2, 1});
        b2.insert(b2.begin(), 3);
        check_matmul(a2, b2, ta, tb, seed++);
      }
  }

  TEST_CASE("many small products thread over the batch; same result at 1 and 2 threads") {
    Tensor a = test::rand_tensor({32, 8, 20, 16}, 3), b = test::rand_tensor({32, 8, 20, 16}, 4);
    const int saved = num_threads();
    set_num_threads(1);
    Tensor one = matmul(a, b, false, true);  // [B,NH,T,HD] x [B,NH,S,HD]^T -> [B,NH,T,S]
    set_num_threads(2);
    Tensor two = matmul(a, b, false, true);
    set_num_threads(saved);
    CHECK(one.shape() == Shape{32, 8, 20, 20});
    CHECK(one.to_vector() == two.to_vector());
    test::expect_close(one, matmul_ref(a, b, false, true), test::tol_for(16), "attention scores");
  }

  TEST_CASE("empty dimensions") {
    CHECK(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
    Tensor z = matmul(ones({2, 0}), ones({0, 3}));
    CHECK(z.shape() == Shape{2, 3});
    for (float v : z) CHECK(v == 0.f);
  }

  TEST_CASE("shape errors name matmul and both shapes") {
    CHECK(test::error_of([] { matmul(zeros({32, 64}), zeros({65, 16})); }) ==
          "matmul: inner dimensions differ: [32,64] x [65,16]");
    CHECK(test::error_of([] { matmul(zeros({4}), zeros({4, 2})); })
              .find("matmul: expected operands of rank >= 2") == 0);
    CHECK(test::error_of([] { matmul(zeros({2, 3, 4}), zeros({5, 4, 2})); })
              .find("matmul: shapes [2] and [5] do not broadcast") == 0);
  }
}

}  // namespace
}  // namespace qkv

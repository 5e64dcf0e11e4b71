// matmul gradients: every transpose combination, batched, broadcast batches,
// and a rank-2 weight shared by a batch (the Linear layer case).
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

void check_grad(Shape sa, Shape sb, bool ta, bool tb, uint64_t seed) {
  Var a(test::rand_tensor(sa, seed), true), b(test::rand_tensor(sb, seed + 1), true);
  auto r = gradcheck(
      [ta, tb](const std::vector<Var>& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
  INFO(shape_str(sa), ta ? "^T" : "", " x ", shape_str(sb), tb ? "^T" : "", ": ", r.report);
  CHECK(r.ok);
}

TEST_SUITE("autograd/matmul") {
  TEST_CASE("transposes, batches, shared weights") {
    uint64_t seed = 1;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        auto A = [&](Shape batch, int64_t m, int64_t k) {
          batch.push_back(ta ? k : m);
          batch.push_back(ta ? m : k);
          return batch;
        };
        auto B = [&](Shape batch, int64_t k, int64_t n) {
          batch.push_back(tb ? n : k);
          batch.push_back(tb ? k : n);
          return batch;
        };
        check_grad(A({}, 3, 5), B({}, 5, 4), ta, tb, seed++);
        check_grad(A({2}, 3, 5), B({2}, 5, 4), ta, tb, seed++);
        check_grad(A({2, 3}, 4, 3), B({}, 3, 2), ta, tb, seed++);   // shared weight
        check_grad(A({}, 4, 3), B({2}, 3, 2), ta, tb, seed++);      // shared left operand
        check_grad(A({2, 1}, 2, 3), B({3}, 3, 2), ta, tb, seed++);  // broadcast batch
      }
  }

  TEST_CASE("non-contiguous-origin inputs (after permute)") {
    Var x(test::rand_tensor({4, 2, 3}, 9), true), w(test::rand_tensor({3, 5}, 10), true);
    auto r = gradcheck(
        [](const std::vector<Var>& in) { return matmul(permute(in[0], {1, 0, 2}), in[1]); },
        {x, w});
    INFO(r.report);
    CHECK(r.ok);
  }
}

}  // namespace
}  // namespace qkv

// Layout op gradients: reshape, permute, transpose, slice, concat, stack and
// index_select with a padding id and repeated ids.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/threads.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;

TEST_SUITE("autograd/layout") {
  TEST_CASE("reshape, permute, transpose") {
    Var x = rv({2, 3, 4}, 1);
    expect_ok([](auto& in) { return reshape(in[0], {4, -1}); }, {x}, "reshape");
    expect_ok([](auto& in) { return permute(in[0], {2, 0, 1}); }, {x}, "permute");
    expect_ok([](auto& in) { return permute(in[0], {-1, 1, 0}); }, {x}, "permute negative");
    expect_ok([](auto& in) { return transpose(in[0], 0, -1); }, {x}, "transpose");
  }

  TEST_CASE("slice on every axis, negative bounds; chains through permute") {
    Var x = rv({3, 4, 5}, 2);
    for (int ax = 0; ax < 3; ++ax)
      expect_ok([ax](auto& in) { return slice(in[0], ax, 1, -1); }, {x},
                "slice axis " + std::to_string(ax));
    expect_ok([](auto& in) { return slice(permute(in[0], {2, 1, 0}), 0, 2, 4); }, {x},
              "slice of permute");
    Var y = slice(x, 1, 1, 3);
    backward(y, ones(y.shape()));
    CHECK(x.grad().at({0, 0, 0}) == 0.f);
    CHECK(x.grad().at({0, 1, 0}) == 1.f);
    CHECK(x.grad().at({2, 3, 4}) == 0.f);
  }

  TEST_CASE("concat and stack") {
    Var a = rv({2, 3}, 3), b = rv({2, 2}, 4), c = rv({2, 3}, 5);
    expect_ok([](auto& in) { return concat({in[0], in[1], in[2]}, -1); }, {a, b, c}, "concat");
    expect_ok([](auto& in) { return stack({in[0], in[1]}, 1); }, {a, c}, "stack");
    Var k(test::rand_tensor({2, 3}, 6), false);
    backward(concat({a, k}, 0), ones({4, 3}));
    CHECK_FALSE(k.has_grad());
  }

  TEST_CASE("index_select: repeated ids accumulate, the padding row gets nothing") {
    Var table = rv({5, 3}, 7);
    IntTensor ids = IntTensor::from({2, 3}, {1, 0, 1, 4, 1, 0});
    expect_ok([ids](auto& in) { return index_select(in[0], ids); }, {table}, "gather");
    table.zero_grad();
    Var e = index_select(table, ids, /*padding_idx=*/0);
    backward(e, ones(e.shape()));
    CHECK(table.grad().at({1, 2}) == 3.f);  // id 1 appears 3 times
    CHECK(table.grad().at({0, 0}) == 0.f);  // padding
    CHECK(table.grad().at({4, 1}) == 1.f);
    CHECK(table.grad().at({2, 0}) == 0.f);  // never used
    CHECK_THROWS_WITH_AS(index_select(table, IntTensor::from({1}, {5})),
                         doctest::Contains("index_select: id 5"), Error);
  }

  TEST_CASE("index_select gradient is independent of the thread count") {
    Var table = rv({50, 300}, 8);
    Generator g(1);
    IntTensor ids({4000});
    for (int32_t& v : ids) v = int32_t(g.next_below(50));
    Tensor up = test::rand_tensor({4000, 300}, 9);
    std::vector<float> grads[2];
    const int saved = num_threads();
    for (int t = 1; t <= 2; ++t) {
      set_num_threads(t);
      table.zero_grad();
      backward(index_select(table, ids), up);
      grads[t - 1] = table.grad().to_vector();
    }
    set_num_threads(saved);
    CHECK(grads[0] == grads[1]);
  }
}

}  // namespace
}  // namespace qkv

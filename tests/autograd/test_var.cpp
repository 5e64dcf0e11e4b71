// The tape: recording, backward, accumulation, no-grad scopes, detach, and
// the errors of misuse.
#include "autograd/ops.h"
#include "autograd/var.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

Var leaf(Shape s, uint64_t seed, bool rg = true) { return Var(test::rand_tensor(s, seed), rg); }

TEST_SUITE("autograd/var") {
  TEST_CASE("backward of a scalar reaches the leaves; constants get nothing") {
    Var x = leaf({1, 3}, 1), w = leaf({3, 1}, 2), c = leaf({3, 1}, 3, false);
    Var y = matmul(x, w);  // [1,1]
    CHECK(y.requires_grad());
    CHECK_FALSE(y.is_leaf());
    CHECK(tape_size() == 1);
    backward(y);
    CHECK(tape_size() == 0);
    // dy/dw = x^T, dy/dx = w^T
    for (int i = 0; i < 3; ++i) {
      CHECK(w.grad().data()[i] == x.value().data()[i]);
      CHECK(x.grad().data()[i] == w.value().data()[i]);
    }
    Var z = matmul(x.detach(), c);
    CHECK_FALSE(z.requires_grad());
    CHECK_FALSE(c.has_grad());
  }

  TEST_CASE("gradients accumulate until zero_grad") {
    Var x = leaf({2, 2}, 1), w = leaf({2, 2}, 2);
    backward(matmul(x, w), ones({2, 2}));
    Tensor g1 = w.grad().clone();
    backward(matmul(x, w), ones({2, 2}));
    for (int64_t i = 0; i < 4; ++i) CHECK(w.grad().data()[i] == doctest::Approx(2 * g1.data()[i]));
    w.zero_grad();
    CHECK_FALSE(w.has_grad());
  }

  TEST_CASE("a Var used twice sums both paths; leaf grads own their buffers") {
    Var x = leaf({2, 3}, 1);
    Var a = reshape(x, {3, 2}), b = reshape(x, {6});
    backward(concat({reshape(a, {6}), b}, 0), ones({12}));
    for (float v : x.grad()) CHECK(v == 2.f);
    CHECK_FALSE(x.grad().shares_storage(a.value()));
  }

  TEST_CASE("leaf gradients never alias each other or the upstream") {
    // add's backward hands its upstream to both inputs, and backward adopts
    // the upstream without copying: the leaves must still get buffers of
    // their own, and scaling one in place must leave the rest untouched.
    Var x = leaf({2, 3}, 1), y = leaf({2, 3}, 2);
    const Tensor up = full({2, 3}, 3.f);
    backward(x + y, up);
    CHECK_FALSE(x.grad().shares_storage(y.grad()));
    CHECK_FALSE(x.grad().shares_storage(up));
    CHECK_FALSE(y.grad().shares_storage(up));
    Tensor gx = x.grad();  // a handle: shares the buffer
    gx.fill(7.f);
    for (float v : y.grad()) CHECK(v == 3.f);
    for (float v : up) CHECK(v == 3.f);
    // a leaf as the root of backward
    Var z = leaf({2, 3}, 3);
    backward(z, up);
    CHECK_FALSE(z.grad().shares_storage(up));
    // a gradient only its leaf holds is kept as it is, not copied
    Var w = leaf({2, 3}, 4);
    backward(w * 2.f, up);
    CHECK(w.grad().sole_owner());
    for (float v : w.grad()) CHECK(v == 6.f);
  }

  TEST_CASE("no-grad scope records nothing") {
    Var x = leaf({2, 2}, 1), w = leaf({2, 2}, 2);
    {
      NoGrad ng;
      CHECK_FALSE(grad_enabled());
      Var y = matmul(x, w);
      CHECK_FALSE(y.requires_grad());
      CHECK(tape_size() == 0);
    }
    CHECK(grad_enabled());
  }

  TEST_CASE("errors: non-scalar without upstream, wrong upstream shape, no gradient, reused graph") {
    Var x = leaf({2, 3}, 1), w = leaf({3, 4}, 2);
    Var y = matmul(x, w);
    CHECK(test::error_of([&] { backward(y); }) ==
          "backward: the output has shape [2,4]; a non-scalar output needs an explicit upstream "
          "gradient of that shape");
    CHECK(test::error_of([&] { backward(y, ones({4, 2})); }) ==
          "backward: upstream gradient has shape [4,2], expected [2,4]");
    Var c = leaf({2, 2}, 3, false);
    c.set_name("c");
    CHECK(test::error_of([&] { backward(c, ones({2, 2})); }) ==
          "backward: the Var 'c' does not require a gradient (no input of the ops that made it "
          "requires one)");
    backward(y, ones({2, 4}));
    CHECK(test::error_of([&] { backward(y, ones({2, 4})); }).find("already used by a backward") !=
          std::string::npos);
    CHECK(test::error_of([&] { matmul(y, w); }) ==
          "matmul: inner dimensions differ: [2,4] x [3,4]");
    tape_clear();
  }

  TEST_CASE("a wrong gradient shape from a backward closure is reported with the op") {
    Var x = leaf({3}, 1);
    Var y = record("broken_op", x.value().clone(), {x}, [](const Tensor&, const std::vector<bool>&) {
      return std::vector<Tensor>{zeros({4})};
    });
    CHECK(test::error_of([&] { backward(y, ones({3})); }) ==
          "backward of broken_op: gradient for input 0 has shape [4], expected [3]");
    tape_clear();
  }

  TEST_CASE("multi-output ops get one upstream per output, undefined where none flowed") {
    Var x = leaf({3}, 1);
    int calls = 0;
    bool second_defined = true;
    auto outs = record_multi("split2", {x.value().clone(), x.value().clone()}, {x},
                             [&](const std::vector<Tensor>& d, const std::vector<bool>&) {
                               ++calls;
                               second_defined = d[1].defined();
                               Tensor g = d[0].clone();
                               if (d[1].defined()) binary_inplace(BinaryOp::add, g, d[1]);
                               return std::vector<Tensor>{g};
                             });
    REQUIRE(outs.size() == 2);
    backward(sum(outs[0]) * 3.f);
    CHECK(calls == 1);
    CHECK_FALSE(second_defined);
    for (float v : x.grad()) CHECK(v == 3.f);
    x.zero_grad();
    auto both = record_multi("split2", {x.value().clone(), x.value().clone()}, {x},
                             [](const std::vector<Tensor>& d, const std::vector<bool>&) {
                               return std::vector<Tensor>{qkv::add(d[0], d[1])};
                             });
    backward(sum(both[0]) + sum(both[1]) * 2.f);
    for (float v : x.grad()) CHECK(v == 3.f);
  }

  TEST_CASE("set_requires_grad only on leaves; detach shares the value") {
    Var x = leaf({2, 2}, 1);
    Var y = matmul(x, x);
    CHECK_THROWS_AS(y.set_requires_grad(false), Error);
    Var d = y.detach();
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.value().shares_storage(y.value()));
    tape_clear();
  }
}

}  // namespace
}  // namespace qkv

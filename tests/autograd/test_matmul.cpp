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

  TEST_CASE("linear_relu: equals relu(matmul + bias) (values, all gradients) and passes gradcheck") {
    for (Shape xs : {Shape{2, 3, 5}, Shape{4, 5}}) {
      Var x(test::rand_tensor(xs, 30), true), w(test::rand_tensor({7, 5}, 31), true),
          b(test::rand_tensor({7}, 32), true);
      Tensor up = test::rand_tensor(matmul(x, w, false, true).shape(), 33);
      Var y1 = linear_relu(x, w, b);
      backward(y1, up);
      Tensor dx = x.grad(), dw = w.grad(), db = b.grad();
      x.zero_grad(), w.zero_grad(), b.zero_grad();
      Var y2 = relu(matmul(x, w, false, true) + b);
      backward(y2, up);
      int zeros = 0;  // both signs occur, so the mask is exercised
      for (float v : y2.value()) zeros += v == 0.f;
      CHECK(zeros > 0);
      CHECK(zeros < y2.numel());
      test::expect_close(y1.value(), y2.value(), 1e-6, "linear_relu y");
      test::expect_close(dx, x.grad(), 1e-6, "linear_relu dx");
      test::expect_close(dw, w.grad(), 1e-6, "linear_relu dw");
      test::expect_close(db, b.grad(), 1e-6, "linear_relu db");
      auto r = gradcheck([](const std::vector<Var>& in) { return linear_relu(in[0], in[1], in[2]); },
                         {x, w, b});
      INFO(shape_str(xs), ": ", r.report);
      CHECK(r.ok);
    }
  }

  TEST_CASE("feed_forward_relu: equals linear(linear_relu), values and all gradients; gradcheck") {
    // 3-D and 2-D inputs; one row and two rows take the GEMM's few-rows path
    for (Shape xs : {Shape{2, 3, 5}, Shape{4, 5}, Shape{1, 5}, Shape{2, 1, 5}}) {
      Var x(test::rand_tensor(xs, 40), true), w1(test::rand_tensor({9, 5}, 41), true),
          b1(test::rand_tensor({9}, 42), true), w2(test::rand_tensor({6, 9}, 43), true),
          b2(test::rand_tensor({6}, 44), true);
      const std::vector<Var> in{x, w1, b1, w2, b2};
      Var y1 = feed_forward_relu(x, w1, b1, w2, b2);
      Tensor up = test::rand_tensor(y1.shape(), 45);
      backward(y1, up);
      std::vector<Tensor> g1;
      for (const Var& v : in) g1.push_back(v.grad());
      for (Var v : in) v.zero_grad();
      Var h = linear_relu(x, w1, b1);
      int zeros = 0;  // both signs occur, so the gate is exercised
      for (float v : h.value()) zeros += v == 0.f;
      CHECK(zeros > 0);
      CHECK(zeros < h.numel());
      Var y2 = linear(h, w2, b2);
      backward(y2, up);
      test::expect_close(y1.value(), y2.value(), 1e-6, "feed_forward_relu y");
      const char* names[] = {"dx", "dw1", "db1", "dw2", "db2"};
      for (size_t i = 0; i < in.size(); ++i)
        test::expect_close(g1[i], in[i].grad(), 1e-6, std::string("feed_forward_relu ") + names[i]);
      auto r = gradcheck(
          [](const std::vector<Var>& v) { return feed_forward_relu(v[0], v[1], v[2], v[3], v[4]); },
          in);
      INFO(shape_str(xs), ": ", r.report);
      CHECK(r.ok);
    }
    const Var x(Tensor::zeros({2, 5})), w1(Tensor::zeros({9, 5})), b1(Tensor::zeros({9}));
    CHECK(test::error_of([&] {
            feed_forward_relu(x, w1, b1, Var(Tensor::zeros({6, 8})), Var(Tensor::zeros({6})));
          }).find("feed_forward_relu: expected w1 [F, K], b1 [F], w2 [N, F]") != std::string::npos);
    CHECK(test::error_of([&] {
            feed_forward_relu(x, w1, b1, Var(Tensor::zeros({6, 9})), Var());
          }).find("feed_forward_relu") != std::string::npos);
  }

  TEST_CASE("linear: equals matmul + bias (values, all gradients) and passes gradcheck") {
    for (Shape xs : {Shape{2, 3, 5}, Shape{4, 5}, Shape{1, 1, 5}}) {
      Var x(test::rand_tensor(xs, 20), true), w(test::rand_tensor({7, 5}, 21), true),
          b(test::rand_tensor({7}, 22), true);
      Tensor up = test::rand_tensor(matmul(x, w, false, true).shape(), 23);
      Var y1 = linear(x, w, b);
      backward(y1, up);
      Tensor dx = x.grad(), dw = w.grad(), db = b.grad();
      x.zero_grad(), w.zero_grad(), b.zero_grad();
      Var y2 = matmul(x, w, false, true) + b;
      backward(y2, up);
      test::expect_close(y1.value(), y2.value(), 1e-6, "linear y");
      test::expect_close(dx, x.grad(), 1e-6, "linear dx");
      test::expect_close(dw, w.grad(), 1e-6, "linear dw");
      test::expect_close(db, b.grad(), 1e-6, "linear db");
      auto r = gradcheck([](const std::vector<Var>& in) { return linear(in[0], in[1], in[2]); },
                         {x, w, b});
      INFO(shape_str(xs), ": ", r.report);
      CHECK(r.ok);
      r = gradcheck([](const std::vector<Var>& in) { return linear(in[0], in[1], Var()); }, {x, w});
      INFO(shape_str(xs), " no bias: ", r.report);
      CHECK(r.ok);
    }
    CHECK(test::error_of([] { linear(Var(Tensor::zeros({2, 5})), Var(Tensor::zeros({7, 4})), Var()); })
              .find("linear") != std::string::npos);
    CHECK(test::error_of([] {
            linear(Var(Tensor::zeros({2, 5})), Var(Tensor::zeros({7, 5})), Var(Tensor::zeros({6})));
          }).find("bias") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

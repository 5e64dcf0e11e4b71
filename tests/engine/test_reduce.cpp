// Reductions (sum, mean, max, var, argmax, sum_all) against their scalar *_ref
// oracles over the size sweep on every axis, plus the edge cases torch defines:
// NaN propagation, first-index ties, empty axes, rank 0, var's correction.
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "engine/kernels/reduce.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::kSizes;
using test::rand_tensor;
using test::tol_for;

constexpr ReduceOp kOps[] = {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::var};
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sets the thread count for one scope and restores it.
struct ThreadScope {
  int old = num_threads();
  explicit ThreadScope(int n) { set_num_threads(n); }
  ~ThreadScope() { set_num_threads(old); }
};


// Every op and argmax on (x, axis, keepdim) against the reference.
void check_all(const Tensor& x, int64_t axis, bool keepdim, const std::string& what) {
  const int64_t len = x.dim() ? x.size(axis) : 1;
  for (ReduceOp op : kOps) {
    const std::string w = what + " " + reduce_name(op);
    expect_close(reduce(op, x, axis, keepdim), reduce_ref(op, x, axis, keepdim), tol_for(len), w);
  }
  IntTensor got = argmax(x, axis, keepdim), want = argmax_ref(x, axis, keepdim);
  INFO(what, " argmax");
  CHECK(got.shape() == want.shape());
  CHECK(got.to_vector() == want.to_vector());
}

}  // namespace

TEST_SUITE("engine/reduce") {
  TEST_CASE("last axis (contiguous rows) matches the reference over kSizes x kSizes") {
    for (int64_t outer : kSizes)
      for (int64_t n : kSizes) {
        Tensor x = rand_tensor({outer, n}, uint64_t(outer * 1000 + n));
        check_all(x, 1, false, shape_str({outer, n}) + " axis 1");
        check_all(x, -1, true, shape_str({outer, n}) + " axis -1");
      }
  }

  TEST_CASE("middle and first axes (columns) match the reference over kSizes x kSizes") {
    for (int64_t n : kSizes)
      for (int64_t inner : kSizes) {
        const std::string s = std::to_string(n) + "," + std::to_string(inner);
        Tensor x3 = rand_tensor({2, n, inner}, uint64_t(n * 977 + inner));
        check_all(x3, 1, false, "[2," + s + "] axis 1");
        Tensor x2 = rand_tensor({n, inner}, uint64_t(n * 31 + inner));
        check_all(x2, 0, true, shape_str(x2.shape()) + " axis 0");
      }
    // inner > one 512-column block, with a ragged last block and a long axis.
    check_all(rand_tensor({3, 5, 1100}, 5), 1, false, "[3,5,1100] axis 1");
    check_all(rand_tensor({300, 1033}, 6), 0, false, "[300,1033] axis 0");
    check_all(rand_tensor({5000, 3}, 7), 0, false, "[5000,3] axis 0");
  }

  TEST_CASE("odd shape [3,5,7]: every axis, negative axes, keepdim shapes") {
    Tensor x = rand_tensor({3, 5, 7}, 11);
    const Shape drop[3] = {{5, 7}, {3, 7}, {3, 5}}, keep[3] = {{1, 5, 7}, {3, 1, 7}, {3, 5, 1}};
    for (int64_t axis = -3; axis < 3; ++axis) {
      const int a = int(axis < 0 ? axis + 3 : axis);
      for (bool keepdim : {false, true}) {
        check_all(x, axis, keepdim, "[3,5,7] axis " + std::to_string(axis));
        for (ReduceOp op : kOps)
          CHECK(reduce(op, x, axis, keepdim).shape() == (keepdim ? keep[a] : drop[a]));
        CHECK(argmax(x, axis, keepdim).shape() == (keepdim ? keep[a] : drop[a]));
      }
    }
  }

  TEST_CASE("known values") {
    Tensor x = Tensor::from({2, 4}, {1, 2, 3, 4, -1, 5, 5, 0});
    CHECK(sum(x, 1).to_vector() == std::vector<float>{10, 9});
    CHECK(mean(x, 1).to_vector() == std::vector<float>{2.5f, 2.25f});
    CHECK(max(x, 1).to_vector() == std::vector<float>{4, 5});
    CHECK(max(x, 0).to_vector() == std::vector<float>{1, 5, 5, 4});
    CHECK(var(x, 1).at({0}) == doctest::Approx(5.0 / 3.0));         // torch.var: n - 1
    CHECK(var(x, 1, false, 0).at({0}) == doctest::Approx(1.25));    // biased
    CHECK(argmax(x, 1).to_vector() == std::vector<int32_t>{3, 1});  // tie: first index
    CHECK(argmax(x, 0).to_vector() == std::vector<int32_t>{0, 1, 1, 0});
  }

  TEST_CASE("misaligned inputs (narrow_rows views)") {
    for (int64_t n : kSizes) {
      Tensor big = rand_tensor({18, n}, uint64_t(40 + n));
      Tensor x = big.narrow_rows(1, 18);  // starts n floats in: misaligned unless n % 16 == 0
      check_all(x, 1, false, "narrow [17," + std::to_string(n) + "] axis 1");
      check_all(x, 0, false, "narrow [17," + std::to_string(n) + "] axis 0");
    }
  }

  TEST_CASE("max and argmax: NaN propagates and counts as the maximum (torch)") {
    for (int64_t n : kSizes) {
      for (int64_t at : {int64_t(0), n / 2, n - 1}) {
        Tensor x = rand_tensor({2, n}, uint64_t(n + at));
        x.at({1, at}) = kNaN;
        if (at + 1 < n) x.at({1, at + 1}) = kNaN;  // argmax: the first NaN wins
        Tensor m = max(x, 1);
        INFO("n=", n, " nan at ", at);
        CHECK(!std::isnan(m.at({0})));
        CHECK(std::isnan(m.at({1})));
        CHECK(argmax(x, 1).at({1}) == at);
        CHECK(argmax_ref(x, 1).at({1}) == at);
        // Same along a column axis.
        Tensor xt = transpose(x, 0, 1);  // [n, 2]
        CHECK(std::isnan(max(xt, 0).at({1})));
        CHECK(argmax(xt, 0).at({1}) == at);
      }
    }
    // A NaN after a larger value and before a larger value still wins.
    Tensor y = Tensor::from({5}, {1, 9, kNaN, 100, kNaN});
    CHECK(std::isnan(max(y, 0).item()));
    CHECK(argmax(y, 0).item() == 2);
  }

  TEST_CASE("argmax ties give the first index, on rows and columns") {
    for (int64_t n : kSizes) {
      Tensor x = full({n, 3}, 0.5f);
      if (n > 2) {
        x.at({n - 2, 1}) = 2.f;
        x.at({n - 1, 1}) = 2.f;
      }
      IntTensor c = argmax(x, 0);
      CHECK(c.at({0}) == 0);
      CHECK(c.at({1}) == (n > 2 ? n - 2 : 0));
      Tensor r = full({2, n}, -3.f);
      r.at({1, n - 1}) = 7.f;
      CHECK(argmax(r, 1).to_vector() == std::vector<int32_t>{0, int32_t(n - 1)});
    }
  }

  TEST_CASE("var: correction, and n - correction <= 0 gives NaN or inf as torch") {
    Tensor x = rand_tensor({4, 33}, 3);
    for (int64_t c : {0, 1, 2, 5})
      expect_close(var(x, 1, false, c), reduce_ref(ReduceOp::var, x, 1, false, c), tol_for(33),
                   "var correction " + std::to_string(c));
    Tensor one = Tensor::from({1, 1}, {3.f});
    CHECK(std::isnan(var(one, 1).item()));  // 0 / 0
    CHECK(var(one, 1, false, 0).item() == 0.f);
    Tensor two = Tensor::from({2}, {1.f, 2.f});
    CHECK(std::isinf(var(two, 0, false, 2).item()));  // 0.5 / 0
    CHECK(std::isinf(var(two, 0, false, 3).item()));  // divisor clamped at 0
  }

  TEST_CASE("var is accurate when |mean| >> std (two passes, not E[x^2]-E[x]^2)") {
    for (int64_t n : {int64_t(100), int64_t(1024), int64_t(4099)}) {
      Generator g{uint64_t(n)};
      Tensor x = normal({4, n}, 1000.f, 0.01f, g);
      Tensor got = var(x, 1), want = reduce_ref(ReduceOp::var, x, 1);
      for (int64_t r = 0; r < 4; ++r)  // relative to var ~1e-4 itself, not to 1
        CHECK(std::fabs(got.at({r}) - want.at({r})) <= 1e-4 * want.at({r}));
      Tensor xt = transpose(x, 0, 1);  // column path
      Tensor gc = var(xt, 0);
      for (int64_t r = 0; r < 4; ++r)
        CHECK(std::fabs(gc.at({r}) - want.at({r})) <= 1e-4 * want.at({r}));
    }
  }

  TEST_CASE("empty reduced axis: sum 0, mean/var NaN, max/argmax throw naming the op") {
    Tensor x = Tensor::empty({3, 0, 2});
    CHECK(sum(x, 1).shape() == Shape{3, 2});
    CHECK(sum(x, 1).to_vector() == std::vector<float>(6, 0.f));
    CHECK(sum(x, 1, true).shape() == Shape{3, 1, 2});
    for (float v : mean(x, 1).to_vector()) CHECK(std::isnan(v));
    for (float v : var(x, 1).to_vector()) CHECK(std::isnan(v));
    CHECK(test::error_of([&] {
            max(x, 1);
          }).find("max: cannot reduce over the empty axis 1 of shape [3,0,2]") == 0);
    CHECK(test::error_of([&] { argmax(x, -2); }).find("argmax: cannot reduce over the empty axis") ==
          0);
    CHECK(test::error_of([&] { reduce_ref(ReduceOp::max, x, 1); }).find("max:") == 0);
    // Empty elsewhere: the result is empty, and max is fine.
    Tensor y = Tensor::empty({0, 4});
    CHECK(max(y, 1).shape() == Shape{0});
    CHECK(argmax(y, 1).shape() == Shape{0});
    CHECK(sum(y, 0).to_vector() == std::vector<float>(4, 0.f));
    CHECK(sum_all(y) == 0.f);
  }

  TEST_CASE("one element and rank 0 (a scalar is one element; axis 0 or -1)") {
    Tensor one = Tensor::from({1}, {-2.5f});
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max})
      CHECK(reduce(op, one, 0).item() == -2.5f);
    CHECK(argmax(one, 0).item() == 0);
    CHECK(reduce(ReduceOp::sum, one, 0).shape() == Shape{});
    CHECK(reduce(ReduceOp::sum, one, 0, true).shape() == Shape{1});

    Tensor s = Tensor::scalar(4.f);
    for (int64_t axis : {0, -1})
      for (bool keepdim : {false, true}) {
        CHECK(sum(s, axis, keepdim).shape() == Shape{});
        CHECK(sum(s, axis, keepdim).item() == 4.f);
        CHECK(mean(s, axis).item() == 4.f);
        CHECK(max(s, axis).item() == 4.f);
        CHECK(std::isnan(var(s, axis).item()));
        CHECK(var(s, axis, false, 0).item() == 0.f);
        CHECK(argmax(s, axis, keepdim).item() == 0);
        CHECK(reduce_ref(ReduceOp::sum, s, axis, keepdim).item() == 4.f);
      }
    CHECK(test::error_of([&] { sum(s, 1); }).find("sum: axis 1 out of range for a scalar") == 0);
    CHECK(test::error_of([&] { argmax(s, -2); }).find("argmax: axis -2") == 0);
    CHECK(sum_all(s) == 4.f);
  }

  TEST_CASE("axis errors name the op") {
    Tensor x = rand_tensor({2, 3}, 1);
    CHECK(test::error_of([&] { sum(x, 2); }) == "sum: axis 2 out of range for rank 2");
    CHECK(test::error_of([&] { mean(x, -3); }).find("mean: axis -3") == 0);
    CHECK(test::error_of([&] { max(x, 5); }).find("max: axis 5") == 0);
    CHECK(test::error_of([&] { var(x, 9); }).find("var: axis 9") == 0);
    CHECK(test::error_of([&] { argmax(x, 2); }).find("argmax: axis 2") == 0);
    CHECK(test::error_of([&] { sum(Tensor(), 0); }).find("sum: undefined tensor") == 0);
  }

  TEST_CASE("sum_all: blocked/pairwise, accurate over long inputs") {
    std::vector<int64_t> sizes(kSizes.begin(), kSizes.end());
    for (int64_t n : {int64_t(4097), int64_t(65537), int64_t(1) << 20, int64_t(3000001)})
      sizes.push_back(n);
    for (int64_t n : sizes) {
      Tensor x =
          rand_tensor({n}, uint64_t(n), 0.f, 1.f);  // all positive: no cancellation to hide errors
      double want = 0;
      for (float v : x.to_vector()) want += v;
      INFO("n=", n, " got ", sum_all(x), " want ", want);
      CHECK(std::fabs(sum_all(x) - want) <= 4e-7 * want * 4);
      CHECK(sum_all(x.view({-1, 1})) == sum_all(x));
    }
  }

  TEST_CASE("results do not depend on the thread count") {
    Tensor x = rand_tensor({256, 1031}, 21);
    Tensor xt = rand_tensor({300, 517}, 22);
    std::vector<std::vector<float>> r1, r2;
    auto run = [&](std::vector<std::vector<float>>& r) {
      for (ReduceOp op : kOps) {
        r.push_back(reduce(op, x, 1).to_vector());
        r.push_back(reduce(op, xt, 0).to_vector());
      }
      r.push_back({sum_all(x)});
      std::vector<int32_t> a = argmax(x, 1).to_vector(), b = argmax(xt, 0).to_vector();
      r.push_back(std::vector<float>(a.begin(), a.end()));
      r.push_back(std::vector<float>(b.begin(), b.end()));
    };
    {
      ThreadScope t(1);
      run(r1);
    }
    {
      ThreadScope t(2);
      run(r2);
    }
    CHECK(r1 == r2);
  }

}  // TEST_SUITE

}  // namespace qkv

// Softmax and log-softmax against their double-precision *_ref oracles over
// the size sweep, plus the properties callers rely on: rows sum to 1, masked
// (-inf) positions get weight 0, large logits do not overflow, y may alias x.
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "engine/kernels/softmax.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::kSizes;
using test::rand_tensor;
using test::tol_for;

constexpr float kInf = std::numeric_limits<float>::infinity();

std::string dims(int64_t rows, int64_t n) {
  return shape_str({rows, n});
}

// Both kernels on x against their references.
void check_both(const Tensor& x, const std::string& what) {
  const int64_t n = x.size(-1), rows = n ? x.numel() / n : 0;
  Tensor want(x.shape());
  softmax_forward_ref(x.data(), want.data(), rows, n);
  expect_close(softmax(x), want, tol_for(n), "softmax " + what);
  log_softmax_forward_ref(x.data(), want.data(), rows, n);
  expect_close(log_softmax(x), want, tol_for(n), "log_softmax " + what);
}

}  // namespace

TEST_SUITE("engine/softmax") {
  TEST_CASE("matches the reference over kSizes rows x kSizes columns") {
    for (int64_t rows : kSizes)
      for (int64_t n : kSizes)
        check_both(rand_tensor({rows, n}, uint64_t(rows * 1000 + n), -8.f, 8.f), dims(rows, n));
    check_both(rand_tensor({3, 4099}, 1, -20.f, 20.f), dims(3, 4099));
    check_both(rand_tensor({2, 3, 17}, 2), "[2,3,17]");  // rank 3: rows are the leading axes
  }

  TEST_CASE("softmax rows sum to 1 and log_softmax == log(softmax)") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({5, n}, uint64_t(n), -10.f, 10.f);
      Tensor y = softmax(x), l = log_softmax(x);
      for (int64_t r = 0; r < 5; ++r) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += y.at({r, i});
        INFO("n=", n, " row ", r, " sum ", s);
        CHECK(std::fabs(s - 1.0) <= tol_for(n));
      }
      Tensor logy(y.shape());
      for (int64_t i = 0; i < y.numel(); ++i) logy.data()[i] = std::log(y.data()[i]);
      // log() turns y's relative error into absolute error: same tolerance scale.
      expect_close(l, logy, tol_for(n), "log_softmax vs log(softmax) n=" + std::to_string(n));
    }
  }

  TEST_CASE("misaligned input and output pointers") {
    for (int64_t n : kSizes) {
      Tensor big = rand_tensor({8, n}, uint64_t(70 + n), -5.f, 5.f);
      Tensor x = big.narrow_rows(1, 8);  // misaligned unless n % 16 == 0
      check_both(x, "narrow " + dims(7, n));
      // Output at an odd address too.
      Tensor out(Shape{7 * n + 1}), want(Shape{7 * n});
      softmax_forward(x.data(), out.data() + 1, 7, n);
      softmax_forward_ref(x.data(), want.data(), 7, n);
      expect_close(out.data() + 1, want.data(), 7 * n, tol_for(n),
                   "softmax to y+1 n=" + std::to_string(n));
      log_softmax_forward(x.data(), out.data() + 1, 7, n);
      log_softmax_forward_ref(x.data(), want.data(), 7, n);
      expect_close(out.data() + 1, want.data(), 7 * n, tol_for(n),
                   "log_softmax to y+1 n=" + std::to_string(n));
    }
  }

  TEST_CASE("in place: y may alias x") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({4, n}, uint64_t(n), -6.f, 6.f);
      Tensor want(x.shape()), y = x.clone();
      softmax_forward_ref(x.data(), want.data(), 4, n);
      softmax_forward(y.data(), y.data(), 4, n);
      expect_close(y, want, tol_for(n), "softmax in place");
      y = x.clone();
      log_softmax_forward_ref(x.data(), want.data(), 4, n);
      log_softmax_forward(y.data(), y.data(), 4, n);
      expect_close(y, want, tol_for(n), "log_softmax in place");
    }
  }

  TEST_CASE("masked positions (-inf) get weight 0; an all -inf row is NaN (torch)") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({3, n}, uint64_t(n));
      for (int64_t i = 0; i < n; ++i) {
        if (i % 3 == 1 || i >= n - 2) x.at({0, i}) = -kInf;  // includes the SIMD tail
        x.at({2, i}) = -kInf;                                // fully masked
      }
      x.at({0, 0}) = 0.25f;  // keep one live position in row 0
      Tensor y = softmax(x), l = log_softmax(x);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (x.at({0, i}) == -kInf) {
          CHECK(y.at({0, i}) == 0.f);
          CHECK(l.at({0, i}) == -kInf);
        }
        s += y.at({0, i});
        CHECK(std::isnan(y.at({2, i})));
        CHECK(std::isnan(l.at({2, i})));
      }
      CHECK(std::fabs(s - 1.0) <= tol_for(n));
      check_both(x.narrow_rows(0, 2), "masked " + dims(2, n));
    }
  }

  TEST_CASE("large logits (+-1e4) neither overflow nor lose the small differences") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({4, n}, uint64_t(n), -1e4f, 1e4f);
      for (int64_t i = 0; i < n; ++i) x.at({1, i}) = 1e4f - float(i % 5);  // near-ties at the top
      Tensor y = softmax(x), l = log_softmax(x);
      for (float v : y.to_vector()) CHECK(std::isfinite(v));
      check_both(x, "large " + dims(4, n));
    }
    Tensor t = Tensor::from({1, 3}, {1e4f, 1e4f - 1.f, -1e4f});
    Tensor l = log_softmax(t);
    // log(1 + e^-1) = 0.31326; in float, max + lse would already be off by ~5e-4.
    CHECK(l.at({0, 0}) == doctest::Approx(-0.3132617).epsilon(1e-6));
    CHECK(l.at({0, 1}) == doctest::Approx(-1.3132617).epsilon(1e-6));
    CHECK(l.at({0, 2}) == doctest::Approx(-2e4 - 0.3132617));
  }

  TEST_CASE("NaN in a row makes that row NaN (torch); +inf too") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({3, n}, uint64_t(n));
      x.at({1, n - 1}) = std::nanf("");
      x.at({2, n / 2}) = kInf;
      Tensor y = softmax(x), l = log_softmax(x);
      for (int64_t i = 0; i < n; ++i) {
        CHECK(std::isnan(y.at({1, i})));
        CHECK(std::isnan(l.at({1, i})));
        CHECK(std::isnan(y.at({2, i})));
        CHECK(!std::isnan(y.at({0, i})));
      }
    }
  }

  TEST_CASE("one element, empty tensors and shape errors") {
    CHECK(softmax(Tensor::from({1}, {-3.f})).item() == 1.f);
    CHECK(log_softmax(Tensor::from({1}, {123.f})).item() == 0.f);
    CHECK(softmax(Tensor::from({2, 1}, {5.f, -5.f})).to_vector() == std::vector<float>{1.f, 1.f});
    for (Shape s : {Shape{0, 5}, Shape{3, 0}, Shape{0}}) {
      CHECK(softmax(Tensor::empty(s)).shape() == s);
      CHECK(log_softmax(Tensor::empty(s)).shape() == s);
    }
    CHECK(test::error_of([] { softmax(Tensor::scalar(1.f)); }) ==
          "softmax: expected at least 1 dimension, got shape []");
    CHECK(test::error_of([] { log_softmax(Tensor::scalar(1.f)); }).find("log_softmax:") == 0);
    CHECK(test::error_of([] { softmax(Tensor()); }) == "softmax: undefined tensor");
  }

  TEST_CASE("results do not depend on the thread count") {
    Tensor x = rand_tensor({257, 300}, 9, -5.f, 5.f);
    std::vector<float> a, b, la, lb;
    const int old = num_threads();
    set_num_threads(1);
    a = softmax(x).to_vector();
    la = log_softmax(x).to_vector();
    set_num_threads(2);
    b = softmax(x).to_vector();
    lb = log_softmax(x).to_vector();
    set_num_threads(old);
    CHECK(a == b);
    CHECK(la == lb);
  }

}  // TEST_SUITE

}  // namespace qkv

// softmax and log_softmax as fused ops: finite-difference gradients over
// shapes and sizes, logits up to +-20 and masked (-inf) entries, and the fused
// op against its composite from autograd primitives (exp, sub, max, sum, log)
// in value and in the gradient of the input under the same upstream.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/kernels/softmax.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;
constexpr float kInf = std::numeric_limits<float>::infinity();

// The composites (the oracles of the fused ops).
Var softmax_composite(const Var& x) {
  Var e = exp(x - max(x, -1, true));
  return e / sum(e, {-1}, true);
}
Var log_softmax_composite(const Var& x) {
  Var z = x - max(x, -1, true);
  return z - log(sum(exp(z), {-1}, true));
}

// f on a fresh leaf holding x, backward with upstream `up`: output and d x.
using UnaryFn = Var (*)(const Var&);
std::pair<Tensor, Tensor> run(UnaryFn f, const Tensor& x, const Tensor& up) {
  Var v(x.clone(), true);
  Var y = f(v);
  backward(y, up);
  return {y.value(), v.grad()};
}

// Fused vs composite, forward value and input gradient.
void expect_matches_composite(UnaryFn fused, UnaryFn composite, const Tensor& x, uint64_t seed,
                              const std::string& what) {
  const int64_t n = x.size(-1);
  Tensor up = test::rand_tensor(x.shape(), seed, -2.f, 2.f);
  auto [y1, g1] = run(fused, x, up);
  auto [y2, g2] = run(composite, x, up);
  test::expect_close(y1, y2, test::tol_for(n, 1e-6), what + " value");
  test::expect_close(g1, g2, test::tol_for(n, 1e-6), what + " gradient");
}

// x + mask, mask -inf at about a third of the positions (never a whole row):
// columns i % 3 == 1, plus the last column of odd rows (the SIMD tail).
Var masked(const Var& x) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  Tensor m = Tensor::zeros(x.shape());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 1; i < n; ++i)
      if (i % 3 == 1 || (r % 2 && i == n - 1)) m.data()[r * n + i] = -kInf;
  return x + Var(m);
}

}  // namespace

TEST_SUITE("autograd/softmax") {
  TEST_CASE("gradcheck: rank 2 and 3, sizes from kSizes, negative values") {
    for (int64_t n : {1, 3, 7, 16, 17, 33}) {
      for (Shape s : {Shape{4, n}, Shape{2, 3, n}}) {
        Var x(test::rand_tensor(s, uint64_t(n), -4.f, 4.f), true);
        const std::string w = shape_str(s);
        expect_ok([](auto& in) { return softmax(in[0]); }, {x}, "softmax " + w);
        expect_ok([](auto& in) { return log_softmax(in[0]); }, {x}, "log_softmax " + w);
      }
    }
  }

  TEST_CASE("gradcheck: logits up to +-20") {
    for (int64_t n : {3, 17, 33}) {
      Var x(test::rand_tensor({3, n}, uint64_t(n + 5), -20.f, 20.f), true);
      // Near-saturated rows: tiny probabilities, the gradient mass on a few entries.
      expect_ok([](auto& in) { return softmax(in[0]); }, {x},
                "softmax +-20 n=" + std::to_string(n));
      expect_ok([](auto& in) { return log_softmax(in[0]); }, {x},
                "log_softmax +-20 n=" + std::to_string(n));
    }
  }

  TEST_CASE("masked (-inf) entries: finite values and gradients, zero weight on masked") {
    for (int64_t n : {3, 7, 17, 33}) {
      Var x(test::rand_tensor({4, n}, uint64_t(n + 9), -3.f, 3.f), true);
      const std::string w = "n=" + std::to_string(n);
      expect_ok([](auto& in) { return softmax(masked(in[0])); }, {x}, "softmax masked " + w);
      // log_softmax is -inf where masked: clamp the output there to a constant
      // (maximum sends the gradient to the larger side) so the objective is finite.
      Var floor_(Tensor::scalar(-1e3f));
      expect_ok([floor_](auto& in) { return maximum(log_softmax(masked(in[0])), floor_); }, {x},
                "log_softmax masked " + w);

      Var xm = masked(x);
      Tensor up = test::rand_tensor({4, n}, uint64_t(n));
      for (const bool is_soft : {true, false}) {
        x.zero_grad();
        Var y = is_soft ? softmax(masked(x)) : log_softmax(masked(x));
        backward(y, up);
        const Tensor& g = x.grad();
        for (int64_t i = 0; i < g.numel(); ++i) {
          const bool m = xm.value().data()[i] == -kInf;
          CHECK(std::isfinite(g.data()[i]));
          if (!m) CHECK(std::isfinite(y.value().data()[i]));
          if (m && is_soft) CHECK(y.value().data()[i] == 0.f);
          if (m && is_soft) CHECK(g.data()[i] == 0.f);
          if (m && !is_soft) CHECK(g.data()[i] == up.data()[i]);  // torch: dy - 0 * sum(dy)
        }
      }
      tape_clear();
    }
  }

  TEST_CASE("fused == composite in value and gradient") {
    for (int64_t n : test::kSizes)
      for (Shape s : {Shape{5, n}, Shape{2, 3, n}}) {
        Tensor x = test::rand_tensor(s, uint64_t(n * 3), -6.f, 6.f);
        const std::string w = shape_str(s);
        expect_matches_composite(UnaryFn(&softmax), &softmax_composite, x, uint64_t(n),
                                 "softmax " + w);
        expect_matches_composite(UnaryFn(&log_softmax), &log_softmax_composite, x, uint64_t(n),
                                 "log_softmax " + w);
      }
    // +-20 logits and masked entries: the composites handle -inf the same way.
    for (int64_t n : {7, 33, 100}) {
      Tensor x = test::rand_tensor({4, n}, uint64_t(n), -20.f, 20.f);
      expect_matches_composite(UnaryFn(&softmax), &softmax_composite, x, 1, "softmax +-20");
      expect_matches_composite(UnaryFn(&log_softmax), &log_softmax_composite, x, 2,
                               "log_softmax +-20");
      Tensor xm;
      {
        NoGrad ng;
        xm = masked(Var(x)).value();
      }
      expect_matches_composite(UnaryFn(&softmax), &softmax_composite, xm, 3, "softmax masked");
      expect_matches_composite(UnaryFn(&log_softmax), &log_softmax_composite, xm, 4,
                               "log_softmax masked");
    }
  }

  TEST_CASE("forward values are the engine kernels'; NoGrad records nothing") {
    Tensor x = test::rand_tensor({3, 17}, 5, -5.f, 5.f);
    Var v(x, true);
    CHECK(softmax(v).value().to_vector() == qkv::softmax(x).to_vector());
    CHECK(log_softmax(v).value().to_vector() == qkv::log_softmax(x).to_vector());
    tape_clear();
    NoGrad ng;
    Var y = softmax(v);
    CHECK_FALSE(y.requires_grad());
    CHECK(tape_size() == 0);
  }

  TEST_CASE("n = 1 and empty rows") {
    Var x(Tensor::from({2, 1}, {3.f, -7.f}), true);
    Var y = softmax(x);
    CHECK(y.value().to_vector() == std::vector<float>{1.f, 1.f});
    backward(y, ones({2, 1}));
    CHECK(x.grad().to_vector() == std::vector<float>{0.f, 0.f});
    Var e(Tensor::empty({0, 4}), true);
    Var ye = log_softmax(e);
    backward(ye, Tensor::empty({0, 4}));
    CHECK(e.grad().shape() == Shape{0, 4});
    CHECK(test::error_of([] { softmax(Var(Tensor::scalar(1.f), true)); }).find("softmax:") == 0);
  }
}

}  // namespace qkv

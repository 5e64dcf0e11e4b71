// Softmax and log-softmax against their double-precision *_ref oracles over
// the size sweep, plus the properties callers rely on: rows sum to 1, masked
// (-inf) positions get weight 0, large logits do not overflow, y may alias x.
// Then the backward kernels and the fused cross-entropy pair, the same way.
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

std::string dims(int64_t rows, int64_t n) { return shape_str({rows, n}); }

// Both kernels on x against their references.
void check_both(const Tensor& x, const std::string& what) {
  const int64_t n = x.size(-1), rows = n ? x.numel() / n : 0;
  Tensor want(x.shape());
  softmax_forward_ref(x.data(), want.data(), rows, n);
  expect_close(softmax(x), want, tol_for(n), "softmax " + what);
  log_softmax_forward_ref(x.data(), want.data(), rows, n);
  expect_close(log_softmax(x), want, tol_for(n), "log_softmax " + what);
}

// Backward kernels vs references at x: [rows, n] (y from the forward, dy random).
void check_backward(const Tensor& x, uint64_t seed, const std::string& what) {
  const int64_t n = x.size(-1), rows = n ? x.numel() / n : 0;
  Tensor dy = rand_tensor(x.shape(), seed, -2.f, 2.f), dx(x.shape()), want(x.shape());
  Tensor y = softmax(x);
  softmax_backward(y.data(), dy.data(), dx.data(), rows, n);
  softmax_backward_ref(y.data(), dy.data(), want.data(), rows, n);
  expect_close(dx, want, tol_for(n), "softmax_backward " + what);
  y = log_softmax(x);
  log_softmax_backward(y.data(), dy.data(), dx.data(), rows, n);
  log_softmax_backward_ref(y.data(), dy.data(), want.data(), rows, n);
  // dx = dy - p * sum(dy): sum(dy) is O(sqrt(n)), its rounding scales with it.
  expect_close(dx, want, 4 * tol_for(n), "log_softmax_backward " + what);
}

// Every 4th row (and row 1 when there are two or more) ignored.
IntTensor ce_targets(int64_t rows, int64_t C, uint64_t seed, int32_t ignore) {
  Generator g(seed);
  IntTensor t({rows});
  for (int64_t r = 0; r < rows; ++r)
    t.data()[r] = r % 4 == 1 ? ignore : int32_t(g.next_below(uint64_t(C)));
  return t;
}

// Forward and backward of the fused cross-entropy vs the references, and the
// forward loss vs -log_softmax_ref[t] (an independent oracle).
void check_cross_entropy(const Tensor& x, float ls, uint64_t seed, const std::string& what) {
  const int64_t C = x.size(-1), rows = x.numel() / C;
  const int32_t ignore = -100;
  IntTensor t = ce_targets(rows, C, seed, ignore);
  Tensor loss({rows}), mx({rows}), lsum({rows}), wloss({rows}), wmx({rows}), wlsum({rows});
  cross_entropy_forward(x.data(), t.data(), rows, C, ignore, ls, loss.data(), mx.data(),
                        lsum.data());
  cross_entropy_forward_ref(x.data(), t.data(), rows, C, ignore, ls, wloss.data(), wmx.data(),
                            wlsum.data());
  expect_close(loss, wloss, tol_for(C), "ce loss " + what);
  Tensor logp(x.shape());
  log_softmax_forward_ref(x.data(), logp.data(), rows, C);
  for (int64_t r = 0; r < rows; ++r) {
    if (t.data()[r] == ignore) {
      CHECK(loss.data()[r] == 0.f);
      continue;
    }
    CHECK(mx.data()[r] == wmx.data()[r]);
    CHECK(lsum.data()[r] == doctest::Approx(wlsum.data()[r]).epsilon(tol_for(C)));
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth -= logp.data()[r * C + c] / double(C);
    const double want = (1.0 - ls) * -logp.data()[r * C + t.data()[r]] + ls * smooth;
    INFO(what, " row ", r);
    CHECK(loss.data()[r] == doctest::Approx(want).epsilon(tol_for(C)));
  }
  // Backward: per-row upstream, and a scalar scale (the mean/sum reductions).
  Tensor dloss = rand_tensor({rows}, seed + 1, -2.f, 2.f), dx(x.shape()), want(x.shape());
  for (const float* dl : {static_cast<const float*>(dloss.data()), (const float*)nullptr}) {
    dx.fill(std::nanf(""));  // every element must be written, ignored rows too
    cross_entropy_backward(x.data(), t.data(), mx.data(), lsum.data(), dl, 0.75f, rows, C, ignore,
                           ls, dx.data());
    cross_entropy_backward_ref(x.data(), t.data(), mx.data(), lsum.data(), dl, 0.75f, rows, C,
                               ignore, ls, want.data());
    expect_close(dx, want, tol_for(C), "ce backward " + what + (dl ? " dloss" : " scale"));
  }
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

  TEST_CASE("large tensors (the streamed path): references, masks, NaN, in place, threads") {
    // >= 8 MiB of output with n % 16 == 0 and an aligned y take the streamed
    // path; thread counts 1..3 give row blocks of odd sizes, first and last rows.
    const int old = num_threads();
    for (auto [rows, n] : {std::pair<int64_t, int64_t>{2053, 1024}, {131, 16384}}) {
      Tensor x = rand_tensor({rows, n}, uint64_t(rows), -8.f, 8.f);
      for (int64_t i = 0; i < n; ++i) {
        if (i % 3 == 1) x.at({1, i}) = -kInf;  // masked positions
        x.at({rows - 1, i}) = -kInf;           // fully masked last row
      }
      x.at({rows / 2, 5}) = std::nanf("");
      // large logits: m log2e rounds by up to 0.016 here, which the fused
      // exponent's row factor and log-softmax's correction must cancel
      for (int64_t i = 0; i < n; ++i) x.at({2, i}) += 3e5f;
      Tensor want(x.shape()), lwant(x.shape());
      softmax_forward_ref(x.data(), want.data(), rows, n);
      log_softmax_forward_ref(x.data(), lwant.data(), rows, n);
      for (int t : {1, 2, 3}) {
        set_num_threads(t);
        const std::string what = dims(rows, n) + " at " + std::to_string(t) + " threads";
        Tensor y = softmax(x), l = log_softmax(x);
        for (int64_t i = 0; i < n; ++i) {  // masks, the all -inf row, the NaN row
          if (i % 3 == 1) CHECK(y.at({1, i}) == 0.f);
          if (i % 3 == 1) CHECK(l.at({1, i}) == -kInf);
          for (int64_t r : {rows - 1, rows / 2}) {
            CHECK(std::isnan(y.at({r, i})));
            CHECK(std::isnan(l.at({r, i})));
          }
        }
        // The special rows checked, the rest against the references.
        Tensor w2 = want.clone(), l2 = lwant.clone();
        for (int64_t r : {int64_t(1), rows - 1, rows / 2})
          for (int64_t i = 0; i < n; ++i)
            w2.at({r, i}) = l2.at({r, i}) = y.at({r, i}) = l.at({r, i}) = 0.f;
        expect_close(y, w2, tol_for(n), "softmax " + what);
        expect_close(l, l2, tol_for(n), "log_softmax " + what);
        Tensor z = x.clone();  // in place: the same bits
        softmax_forward(z.data(), z.data(), rows, n);
        CHECK(z.narrow_rows(0, rows / 2).to_vector() ==
              softmax(x).narrow_rows(0, rows / 2).to_vector());
        z = x.clone();
        log_softmax_forward(z.data(), z.data(), rows, n);
        CHECK(z.narrow_rows(0, rows / 2).to_vector() ==
              log_softmax(x).narrow_rows(0, rows / 2).to_vector());
      }
    }
    set_num_threads(old);
  }

  // ---- backward ---------------------------------------------------------------

  TEST_CASE("backward kernels match the reference over kSizes rows x kSizes columns") {
    for (int64_t rows : kSizes)
      for (int64_t n : kSizes)
        check_backward(rand_tensor({rows, n}, uint64_t(rows * 1000 + n), -8.f, 8.f),
                       uint64_t(rows + 7 * n), dims(rows, n));
    check_backward(rand_tensor({3, 4099}, 1, -20.f, 20.f), 2, dims(3, 4099));
    check_backward(rand_tensor({2, 3, 17}, 2), 3, "[2,3,17]");
  }

  TEST_CASE("backward: misaligned pointers and dx aliasing dy") {
    for (int64_t n : kSizes) {
      Tensor big = rand_tensor({8, n}, uint64_t(70 + n), -5.f, 5.f);
      Tensor ys = softmax(big), yl = log_softmax(big);
      Tensor dyb = rand_tensor({8, n}, uint64_t(n), -1.f, 1.f);
      // Rows 1..7: misaligned unless n % 16 == 0; dx at an odd address.
      const float *y = ys.data() + n, *dy = dyb.data() + n;
      Tensor out(Shape{7 * n + 1}), want(Shape{7 * n});
      softmax_backward(y, dy, out.data() + 1, 7, n);
      softmax_backward_ref(y, dy, want.data(), 7, n);
      expect_close(out.data() + 1, want.data(), 7 * n, tol_for(n), "softmax_backward misaligned");
      Tensor inplace = dyb.clone();
      softmax_backward(ys.data(), inplace.data(), inplace.data(), 8, n);
      Tensor w8(Shape{8, n});
      softmax_backward_ref(ys.data(), dyb.data(), w8.data(), 8, n);
      expect_close(inplace, w8, tol_for(n), "softmax_backward in place");
      y = yl.data() + n;
      log_softmax_backward(y, dy, out.data() + 1, 7, n);
      log_softmax_backward_ref(y, dy, want.data(), 7, n);
      expect_close(out.data() + 1, want.data(), 7 * n, 4 * tol_for(n),
                   "log_softmax_backward misaligned");
      inplace = dyb.clone();
      log_softmax_backward(yl.data(), inplace.data(), inplace.data(), 8, n);
      log_softmax_backward_ref(yl.data(), dyb.data(), w8.data(), 8, n);
      expect_close(inplace, w8, 4 * tol_for(n), "log_softmax_backward in place");
    }
  }

  TEST_CASE("backward: masked (-inf) inputs get dx = 0 (softmax) and dx = dy (log_softmax)") {
    for (int64_t n : kSizes) {
      Tensor x = rand_tensor({2, n}, uint64_t(n), -3.f, 3.f);
      for (int64_t i = 1; i < n; i += 2) x.at({0, i}) = -kInf;
      if (n > 2) x.at({1, n - 1}) = -kInf;  // in the SIMD tail
      Tensor dy = rand_tensor({2, n}, uint64_t(n + 1)), dx(x.shape());
      Tensor y = softmax(x);
      softmax_backward(y.data(), dy.data(), dx.data(), 2, n);
      for (int64_t i = 0; i < 2 * n; ++i) {
        CHECK(std::isfinite(dx.data()[i]));
        if (x.data()[i] == -kInf) CHECK(dx.data()[i] == 0.f);
      }
      y = log_softmax(x);
      log_softmax_backward(y.data(), dy.data(), dx.data(), 2, n);
      for (int64_t i = 0; i < 2 * n; ++i) {
        CHECK(std::isfinite(dx.data()[i]));
        if (x.data()[i] == -kInf) CHECK(dx.data()[i] == dy.data()[i]);
      }
      check_backward(x, uint64_t(n + 2), "masked " + dims(2, n));
    }
  }

  TEST_CASE("backward results do not depend on the thread count") {
    Tensor x = rand_tensor({257, 300}, 9, -5.f, 5.f), dy = rand_tensor({257, 300}, 10);
    Tensor y = softmax(x), l = log_softmax(x);
    std::vector<float> a[2], b[2];
    const int old = num_threads();
    for (int t = 1; t <= 2; ++t) {
      set_num_threads(t);
      Tensor dx(x.shape());
      softmax_backward(y.data(), dy.data(), dx.data(), 257, 300);
      a[t - 1] = dx.to_vector();
      log_softmax_backward(l.data(), dy.data(), dx.data(), 257, 300);
      b[t - 1] = dx.to_vector();
    }
    set_num_threads(old);
    CHECK(a[0] == a[1]);
    CHECK(b[0] == b[1]);
  }

  // ---- cross-entropy ------------------------------------------------------------

  TEST_CASE("cross-entropy kernels match the references, with ignored rows and smoothing") {
    for (int64_t rows : kSizes)
      for (int64_t C : kSizes)
        for (float ls : {0.f, 0.1f})
          check_cross_entropy(rand_tensor({rows, C}, uint64_t(rows * 1000 + C), -20.f, 20.f), ls,
                              uint64_t(rows + C), dims(rows, C) + " ls " + std::to_string(ls));
    check_cross_entropy(rand_tensor({5, 4099}, 3, -20.f, 20.f), 0.3f, 4, dims(5, 4099));
    // Large logits: the loss keeps its small differences (max and logsum kept apart).
    check_cross_entropy(rand_tensor({9, 33}, 5, -1e4f, 1e4f), 0.f, 6, "large " + dims(9, 33));
  }

  TEST_CASE("cross-entropy: hand values, -inf logits, ignored rows untouched") {
    // Row [0, ln 3]: p = [1/4, 3/4]. Target 1: nll = ln(4/3); with ls = 0.2,
    // loss = 0.8 * ln(4/3) + 0.2 * (ln 4 - ln(3)/2).
    const float l3 = std::log(3.f);
    Tensor x = Tensor::from({2, 2}, {0.f, l3, std::nanf(""), 1.f});
    IntTensor t = IntTensor::from({2}, {1, -1});  // row 1 ignored (NaN never read)
    Tensor loss({2}), mx({2}), lsum({2}), dx({2, 2});
    cross_entropy_forward(x.data(), t.data(), 2, 2, -1, 0.2f, loss.data(), mx.data(), lsum.data());
    CHECK(loss.data()[0] ==
          doctest::Approx(0.8 * std::log(4.0 / 3) + 0.2 * (std::log(4.0) - std::log(3.0) / 2)));
    CHECK(loss.data()[1] == 0.f);
    cross_entropy_backward(x.data(), t.data(), mx.data(), lsum.data(), nullptr, 2.f, 2, 2, -1, 0.2f,
                           dx.data());
    // q = [0.1, 0.9]: dx = 2 * (p - q) = [0.3, -0.3]; ignored row: 0.
    CHECK(dx.data()[0] == doctest::Approx(0.3));
    CHECK(dx.data()[1] == doctest::Approx(-0.3));
    CHECK(dx.data()[2] == 0.f);
    CHECK(dx.data()[3] == 0.f);
    // A masked class (-inf) has p = 0: finite loss and gradient without
    // smoothing; the target being masked gives +inf (torch).
    Tensor xm = Tensor::from({1, 3}, {1.f, -kInf, 2.f});
    for (int32_t tgt : {0, 1}) {
      IntTensor tt = IntTensor::from({1}, {tgt});
      cross_entropy_forward(xm.data(), tt.data(), 1, 3, -100, 0.f, loss.data(), mx.data(),
                            lsum.data());
      if (tgt == 0) {
        CHECK(loss.data()[0] == doctest::Approx(std::log(1 + std::exp(1.0))));
        cross_entropy_backward(xm.data(), tt.data(), mx.data(), lsum.data(), nullptr, 1.f, 1, 3,
                               -100, 0.f, dx.data());
        CHECK(dx.data()[1] == 0.f);
        CHECK(dx.data()[0] == doctest::Approx(1 / (1 + std::exp(1.0)) - 1));
      } else {
        CHECK(loss.data()[0] == kInf);
      }
    }
  }

  TEST_CASE("cross-entropy results do not depend on the thread count") {
    Tensor x = rand_tensor({300, 257}, 11, -6.f, 6.f);
    IntTensor t = ce_targets(300, 257, 12, -100);
    Tensor dl = rand_tensor({300}, 13);
    std::vector<float> f[2], b[2];
    const int old = num_threads();
    for (int th = 1; th <= 2; ++th) {
      set_num_threads(th);
      Tensor loss({300}), mx({300}), ls({300}), dx({300, 257});
      cross_entropy_forward(x.data(), t.data(), 300, 257, -100, 0.1f, loss.data(), mx.data(),
                            ls.data());
      cross_entropy_backward(x.data(), t.data(), mx.data(), ls.data(), dl.data(), 1.f, 300, 257,
                             -100, 0.1f, dx.data());
      f[th - 1] = loss.to_vector();
      b[th - 1] = dx.to_vector();
    }
    set_num_threads(old);
    CHECK(f[0] == f[1]);
    CHECK(b[0] == b[1]);
  }

}  // TEST_SUITE

}  // namespace qkv

// Elementwise unary ops: unary_forward() against the double-precision oracle
// unary_forward_ref() over sizes, odd shapes, misaligned pointers, in-place use,
// empty tensors and threads, plus special values (inf, NaN, 0, negatives, tails).
// Errors are relative to |want| itself (not max(|want|,1)), so small results count.
// unary_backward() likewise against unary_backward_ref(), and against central
// differences of the forward kernel.
#include "engine/kernels/unary.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::kSizes;
using test::rand_tensor;

const std::vector<UnaryOp> kOps = {UnaryOp::neg,  UnaryOp::exp,     UnaryOp::log,
                                   UnaryOp::sqrt, UnaryOp::rsqrt,   UnaryOp::abs,
                                   UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu,
                                   UnaryOp::gelu};

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Relative tolerance of each op against the double oracle (1 ULP = 1.19e-7).
// neg/abs/relu/sqrt are exact (one rounding of the true value); rsqrt rounds
// twice; exp/log/tanh are ~1.5 ULP (xsimd, measured); sigmoid composes exp with
// a divide. gelu: in the left tail erfc(z) amplifies the float rounding of
// z = -x/sqrt(2) and of z*z by ~2z^2 (measured 1.5e-5 near x = -12, where gelu is
// ~1e-32); where its values matter (x >= -3) it stays within 1.5e-6, checked below.
double tol_of(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: case UnaryOp::abs: case UnaryOp::relu: case UnaryOp::sqrt:
      return 0.0;
    case UnaryOp::rsqrt:   return 1.5e-7;
    case UnaryOp::exp:     return 4e-7;
    case UnaryOp::log:     return 2.5e-7;
    case UnaryOp::tanh:    return 2.5e-7;
    case UnaryOp::sigmoid: return 4e-7;
    case UnaryOp::gelu:    return 2e-5;
  }
  return 0.0;
}

// Random inputs on the interesting part of each op's domain.
Tensor input_for(UnaryOp op, Shape s, uint64_t seed) {
  switch (op) {
    case UnaryOp::log: case UnaryOp::sqrt: case UnaryOp::rsqrt:
      return rand_tensor(std::move(s), seed, 1e-3f, 50.f);
    case UnaryOp::exp:     return rand_tensor(std::move(s), seed, -20.f, 20.f);
    case UnaryOp::tanh:    return rand_tensor(std::move(s), seed, -6.f, 6.f);
    case UnaryOp::sigmoid: return rand_tensor(std::move(s), seed, -30.f, 30.f);
    case UnaryOp::gelu:    return rand_tensor(std::move(s), seed, -10.f, 10.f);
    default:               return rand_tensor(std::move(s), seed, -3.f, 3.f);
  }
}

// got ~ want with |got - want| <= tol * |want| (denormal results: <= tol * FLT_MIN);
// NaN must match NaN and inf must match inf of the same sign.
void expect_rel(const float* got, const float* want, int64_t n, double tol,
                const std::string& what) {
  double worst = 0;
  int64_t at = -1;
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(g) || std::isnan(w) || std::isinf(g) || std::isinf(w)) {
      const bool same = (std::isnan(g) && std::isnan(w)) || g == w;
      if (!same && !bad) { bad = true; at = i; }
      continue;
    }
    const double r = std::fabs(g - w) / std::max(std::fabs(w), double(FLT_MIN));
    if (r > worst) { worst = r; if (!bad) at = i; }
  }
  INFO(what, ": max_rel=", worst, " at ", at,
       at >= 0 ? " got " + std::to_string(got[at]) + " want " + std::to_string(want[at]) : "");
  CHECK(!bad);
  CHECK(worst <= tol);
}

void expect_rel(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  REQUIRE(got.shape() == want.shape());
  expect_rel(got.data(), want.data(), got.numel(), tol, what);
}

// f(v) through the SIMD kernel at every position of an n-long vector (so lanes and
// tails are all exercised); every copy must agree with the first.
float simd_of(UnaryOp op, float v, int64_t n = 19) {
  std::vector<float> x(n, v), y(n);
  unary_forward(op, x.data(), y.data(), n);
  for (int64_t i = 1; i < n; ++i) {
    INFO(std::string(unary_name(op)), "(", v, ") at ", i, ": ", y[i], " vs ", y[0]);
    CHECK(std::memcmp(&y[i], &y[0], sizeof(float)) == 0);
  }
  return y[0];
}

float ref_of(UnaryOp op, float v) {
  float y = 0;
  unary_forward_ref(op, &v, &y, 1);
  return y;
}

std::string name_of(UnaryOp op) { return unary_name(op); }

}  // namespace

TEST_SUITE("engine/unary") {

TEST_CASE("every op vs its oracle over kSizes and odd shapes") {
  uint64_t seed = 1;
  for (UnaryOp op : kOps) {
    for (int64_t n : kSizes) {
      Tensor x = input_for(op, {n}, seed++);
      expect_rel(unary(op, x), unary_ref(op, x), tol_of(op), name_of(op) + " n=" + std::to_string(n));
    }
    for (Shape s : {Shape{3, 5, 7}, Shape{17, 33}, Shape{1, 1, 1}}) {
      Tensor x = input_for(op, s, seed++);
      Tensor y = unary(op, x);
      CHECK(y.shape() == s);
      expect_rel(y, unary_ref(op, x), tol_of(op), name_of(op) + " " + shape_str(s));
    }
  }
}

TEST_CASE("hand-checked values") {
  auto run = [](UnaryOp op, std::vector<float> v) {
    return unary(op, Tensor::from({int64_t(v.size())}, v)).to_vector();
  };
  CHECK(run(UnaryOp::neg, {1.5f, -2.f, 0.f}) == std::vector<float>{-1.5f, 2.f, -0.f});
  CHECK(run(UnaryOp::abs, {1.5f, -2.f, -0.f}) == std::vector<float>{1.5f, 2.f, 0.f});
  CHECK(run(UnaryOp::relu, {1.5f, -2.f, 0.f}) == std::vector<float>{1.5f, 0.f, 0.f});
  CHECK(run(UnaryOp::sqrt, {4.f, 2.25f, 0.f}) == std::vector<float>{2.f, 1.5f, 0.f});
  CHECK(run(UnaryOp::rsqrt, {4.f, 0.25f, 1.f}) == std::vector<float>{0.5f, 2.f, 1.f});
  CHECK(run(UnaryOp::exp, {0.f})[0] == 1.f);
  CHECK(run(UnaryOp::log, {1.f})[0] == 0.f);
  CHECK(run(UnaryOp::sigmoid, {0.f})[0] == 0.5f);
  CHECK(run(UnaryOp::tanh, {0.f})[0] == 0.f);
  CHECK(run(UnaryOp::gelu, {0.f})[0] == 0.f);
  CHECK(run(UnaryOp::gelu, {1.f})[0] == doctest::Approx(0.8413447460685429).epsilon(1e-6));
  CHECK(run(UnaryOp::gelu, {-1.f})[0] == doctest::Approx(-0.15865525393145707).epsilon(1e-6));
}

TEST_CASE("misaligned input and output pointers") {
  uint64_t seed = 100;
  for (UnaryOp op : kOps) {
    for (int64_t n : kSizes) {
      Tensor big = input_for(op, {n + 8}, seed++);
      Tensor x = big.narrow_rows(1, n + 1);  // offset 1 float
      Tensor want = unary_ref(op, x);
      expect_rel(unary(op, x), want, tol_of(op), name_of(op) + " misaligned in, n=" + std::to_string(n));
      Tensor out({n + 8});
      unary_forward(op, x.data(), out.data() + 3, n);  // misaligned out, offset 3
      expect_rel(out.data() + 3, want.data(), n, tol_of(op),
                 name_of(op) + " misaligned in+out, n=" + std::to_string(n));
    }
  }
}

TEST_CASE("in place: y == x gives the out-of-place result exactly") {
  uint64_t seed = 200;
  for (UnaryOp op : kOps) {
    for (int64_t n : {int64_t(1), int64_t(17), int64_t(257), int64_t(50001)}) {
      Tensor x = input_for(op, {n}, seed++);
      Tensor want = unary(op, x);
      unary_forward(op, x.data(), x.data(), n);
      CHECK(std::memcmp(x.data(), want.data(), n * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("empty and one-element tensors") {
  for (UnaryOp op : kOps) {
    CHECK(unary(op, Tensor({0})).shape() == Shape{0});
    CHECK(unary(op, Tensor({3, 0})).shape() == Shape{3, 0});
    CHECK(unary_ref(op, Tensor({3, 0})).numel() == 0);
    unary_forward(op, nullptr, nullptr, 0);
    Tensor s = Tensor::scalar(0.5f);
    CHECK(unary(op, s).shape() == Shape{});
    expect_rel(unary(op, s), unary_ref(op, s), tol_of(op), name_of(op) + " scalar");
    Tensor one = Tensor::full({1}, 2.f);
    expect_rel(unary(op, one), unary_ref(op, one), tol_of(op), name_of(op) + " [1]");
  }
}

TEST_CASE("special values") {
  const float nan = kNaN, inf = kInf;
  // exp: overflow to inf only past log(FLT_MAX) = 88.72; denormals down to -103.9.
  CHECK(simd_of(UnaryOp::exp, 100.f) == inf);
  CHECK(simd_of(UnaryOp::exp, -100.f) == doctest::Approx(3.720076e-44).epsilon(0.01));
  CHECK(simd_of(UnaryOp::exp, -110.f) == 0.f);
  CHECK(simd_of(UnaryOp::exp, inf) == inf);
  CHECK(simd_of(UnaryOp::exp, -inf) == 0.f);
  CHECK(std::isfinite(simd_of(UnaryOp::exp, 88.7f)));
  CHECK(simd_of(UnaryOp::exp, 88.8f) == inf);
  // log: 0 -> -inf, negative -> NaN, inf -> inf; a denormal stays accurate.
  CHECK(simd_of(UnaryOp::log, 0.f) == -inf);
  CHECK(simd_of(UnaryOp::log, -0.f) == -inf);
  CHECK(std::isnan(simd_of(UnaryOp::log, -1.f)));
  CHECK(simd_of(UnaryOp::log, inf) == inf);
  CHECK(simd_of(UnaryOp::log, 1e-40f) == doctest::Approx(std::log(1e-40f)).epsilon(1e-6));
  // sqrt/rsqrt: 0 -> 0 / inf, negative -> NaN, inf -> inf / 0.
  CHECK(simd_of(UnaryOp::sqrt, 0.f) == 0.f);
  CHECK(std::isnan(simd_of(UnaryOp::sqrt, -4.f)));
  CHECK(simd_of(UnaryOp::sqrt, inf) == inf);
  CHECK(simd_of(UnaryOp::rsqrt, 0.f) == inf);
  CHECK(std::isnan(simd_of(UnaryOp::rsqrt, -4.f)));
  CHECK(simd_of(UnaryOp::rsqrt, inf) == 0.f);
  // sigmoid: no overflow or NaN at the extremes; the left tail keeps relative precision.
  CHECK(simd_of(UnaryOp::sigmoid, 100.f) == 1.f);
  CHECK(simd_of(UnaryOp::sigmoid, inf) == 1.f);
  CHECK(simd_of(UnaryOp::sigmoid, -inf) == 0.f);
  CHECK(simd_of(UnaryOp::sigmoid, -100.f) == doctest::Approx(3.720076e-44).epsilon(0.01));
  CHECK(simd_of(UnaryOp::sigmoid, -30.f) == doctest::Approx(9.357623e-14).epsilon(1e-6));
  // tanh saturates to exactly +-1.
  CHECK(simd_of(UnaryOp::tanh, 20.f) == 1.f);
  CHECK(simd_of(UnaryOp::tanh, -20.f) == -1.f);
  CHECK(simd_of(UnaryOp::tanh, inf) == 1.f);
  CHECK(simd_of(UnaryOp::tanh, -inf) == -1.f);
  // gelu: the left tail is tiny but relatively accurate; +inf -> inf, -inf -> 0.
  CHECK(simd_of(UnaryOp::gelu, -10.f) ==
        doctest::Approx(-0.5 * 10 * std::erfc(10 / std::sqrt(2.0))).epsilon(2e-5));
  CHECK(simd_of(UnaryOp::gelu, -5.f) ==
        doctest::Approx(-0.5 * 5 * std::erfc(5 / std::sqrt(2.0))).epsilon(1e-5));
  CHECK(simd_of(UnaryOp::gelu, inf) == inf);
  CHECK(simd_of(UnaryOp::gelu, -inf) == 0.f);
  CHECK(simd_of(UnaryOp::gelu, 10.f) == 10.f);
  // relu passes NaN (as torch) and maps -inf to 0.
  CHECK(simd_of(UnaryOp::relu, -inf) == 0.f);
  CHECK(simd_of(UnaryOp::relu, inf) == inf);
  // NaN in -> NaN out, for every op, in both paths.
  for (UnaryOp op : kOps) {
    INFO(name_of(op));
    CHECK(std::isnan(simd_of(op, nan)));
    CHECK(std::isnan(ref_of(op, nan)));
  }
  // Every special value through kernel and oracle together, lanes mixed.
  const std::vector<float> specials = {0.f,   -0.f,  1.f,    -1.f,  20.f,   -20.f, 88.5f,
                                       -88.5f, 100.f, -100.f, inf,   -inf,   nan,   1e-40f,
                                       -1e-40f, 5.f,  -5.f,   -10.f, 87.5f, -95.f, 3.f};
  Tensor x = Tensor::from({int64_t(specials.size())}, specials);
  for (UnaryOp op : kOps) {
    // The oracle's exp/sigmoid give denormals where float math has none to
    // spare; tolerance is relative to FLT_MIN there, so they still compare.
    expect_rel(unary(op, x), unary_ref(op, x), std::max(tol_of(op), 4e-7), name_of(op) + " specials");
  }
}

TEST_CASE("sweeps: exp over its whole range, gelu and sigmoid tails") {
  auto sweep = [](float lo, float hi, int64_t n) {
    Tensor x({n});
    for (int64_t i = 0; i < n; ++i) x.data()[i] = lo + (hi - lo) * float(i) / float(n - 1);
    return x;
  };
  Tensor e = sweep(-104.f, 89.f, 20001);
  expect_rel(unary(UnaryOp::exp, e), unary_ref(UnaryOp::exp, e), tol_of(UnaryOp::exp), "exp sweep");
  Tensor g = sweep(-12.f, 12.f, 20001);
  expect_rel(unary(UnaryOp::gelu, g), unary_ref(UnaryOp::gelu, g), tol_of(UnaryOp::gelu), "gelu sweep");
  Tensor gm = sweep(-3.f, 12.f, 20001);
  expect_rel(unary(UnaryOp::gelu, gm), unary_ref(UnaryOp::gelu, gm), 1.5e-6, "gelu sweep x >= -3");
  Tensor s = sweep(-104.f, 104.f, 20001);
  expect_rel(unary(UnaryOp::sigmoid, s), unary_ref(UnaryOp::sigmoid, s), tol_of(UnaryOp::sigmoid),
             "sigmoid sweep");
  Tensor t = sweep(-12.f, 12.f, 20001);
  expect_rel(unary(UnaryOp::tanh, t), unary_ref(UnaryOp::tanh, t), tol_of(UnaryOp::tanh), "tanh sweep");
  Tensor l = sweep(1e-30f, 3.f, 20001);
  expect_rel(unary(UnaryOp::log, l), unary_ref(UnaryOp::log, l), tol_of(UnaryOp::log), "log sweep");
}

TEST_CASE("threaded sizes: vs oracle and independent of the thread count") {
  const int saved = num_threads();
  uint64_t seed = 300;
  for (UnaryOp op : kOps) {
    for (int64_t n : {int64_t(40000), int64_t(100003)}) {
      Tensor x = input_for(op, {n}, seed++);
      set_num_threads(2);
      Tensor two = unary(op, x);
      set_num_threads(1);
      Tensor one = unary(op, x);
      expect_rel(two, unary_ref(op, x), tol_of(op), name_of(op) + " n=" + std::to_string(n));
      CHECK(std::memcmp(one.data(), two.data(), n * sizeof(float)) == 0);
    }
  }
  set_num_threads(saved);
}

TEST_CASE("errors and names") {
  for (UnaryOp op : kOps) {
    const std::string name = unary_name(op);
    CHECK_THROWS_AS(unary(op, Tensor()), Error);
    try {
      unary(op, Tensor());
    } catch (const Error& err) {
      CHECK(std::string(err.what()).find(name) == 0);
    }
  }
  CHECK(name_of(UnaryOp::rsqrt) == "rsqrt");
  CHECK(name_of(UnaryOp::gelu) == "gelu");
}

// ---- backward -------------------------------------------------------------------------

namespace {

// Relative tolerance of each backward against its double oracle, and the floor
// of the relative error's denominator as a multiple of |dy|. Products of a
// correctly rounded factor with dy round once or twice (exp, log, sqrt: the
// true value rounded once); rsqrt rounds y^3 twice more. tanh and sigmoid
// compute 1-y^2 / y-y^2 as one fnma, which rounds once where the compiler
// emits a fused instruction and rounds y^2 first where it does not (xsimd's
// fnma is a * and a - that GCC contracts at -O2 and up, not at -O1): the
// unfused form cancels near |y| = 1, by up to ~1e-4 relative, but stays within
// a rounding of |dy|, so both are measured against |dy| and the tolerance holds
// at every optimisation level. gelu' = Phi + x phi crosses 0 near x = -0.75, so
// its error is measured against |dy| (|gelu'| <= 1.13): that of erfc and exp.
struct BackTol {
  double rel;
  double floor;  // denominator: max(|want|, floor * |dy|)
};
BackTol back_tol_of(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: case UnaryOp::abs: case UnaryOp::relu: return {0.0, 0.0};
    case UnaryOp::exp: case UnaryOp::log: case UnaryOp::sqrt: return {1.2e-7, 0.0};
    case UnaryOp::rsqrt:                                      return {3.6e-7, 0.0};
    case UnaryOp::tanh: case UnaryOp::sigmoid:                return {2.4e-7, 1.0};
    case UnaryOp::gelu:                                       return {4e-7, 1.0};
  }
  return {0.0, 0.0};
}

// dx through the kernel with only the pointers it documents reading (the others
// null: a read would crash) or through the oracle.
void backward_of(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                 int64_t n, bool ref) {
  const float* px = unary_backward_reads_x(op) ? x : nullptr;
  const float* py = unary_backward_reads_y(op) ? y : nullptr;
  if (ref) {
    unary_backward_ref(op, px, py, dy, dx, n);
  } else {
    unary_backward(op, px, py, dy, dx, n);
  }
}

void expect_back(UnaryOp op, const float* got, const float* want, const float* dy, int64_t n,
                 const std::string& what) {
  const BackTol t = back_tol_of(op);
  double worst = 0;
  int64_t at = -1;
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(g) || std::isnan(w) || std::isinf(g) || std::isinf(w)) {
      if (!((std::isnan(g) && std::isnan(w)) || g == w) && !bad) { bad = true; at = i; }
      continue;
    }
    const double den =
        std::max({std::fabs(w), t.floor * std::fabs(double(dy[i])), double(FLT_MIN)});
    const double r = std::fabs(g - w) / den;
    if (r > worst) { worst = r; if (!bad) at = i; }
  }
  INFO(what, ": max_rel=", worst, " at ", at,
       at >= 0 ? " got " + std::to_string(got[at]) + " want " + std::to_string(want[at]) : "");
  CHECK(!bad);
  CHECK(worst <= t.rel);
}

// x, y = f(x) and dy in [-2, 2] for an n-long problem.
struct BackCase {
  Tensor x, y, dy;
};
BackCase back_case(UnaryOp op, int64_t n, uint64_t seed) {
  BackCase c{input_for(op, {n}, seed), Tensor(), rand_tensor({n}, seed + 7777, -2.f, 2.f)};
  c.y = unary(op, c.x);
  return c;
}

}  // namespace

TEST_CASE("backward: which operand each op reads") {
  for (UnaryOp op : kOps) {
    INFO(name_of(op));
    const bool rx = unary_backward_reads_x(op), ry = unary_backward_reads_y(op);
    CHECK_FALSE((rx && ry));
    const bool want_x = op == UnaryOp::log || op == UnaryOp::abs || op == UnaryOp::gelu;
    CHECK(rx == want_x);
    CHECK(ry == (!want_x && op != UnaryOp::neg));
  }
}

TEST_CASE("backward: kernel vs oracle over kSizes, misaligned, in place") {
  uint64_t seed = 1000;
  for (UnaryOp op : kOps) {
    for (int64_t n : kSizes) {
      const std::string what = name_of(op) + " n=" + std::to_string(n);
      BackCase c = back_case(op, n, seed++);
      Tensor got({n}), want({n});
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), got.data(), n, false);
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), want.data(), n, true);
      expect_back(op, got.data(), want.data(), c.dy.data(), n, what);
      // Every operand misaligned by a different amount.
      std::vector<float> x(n + 1), y(n + 2), dy(n + 3), dx(n + 4);
      std::copy(c.x.begin(), c.x.end(), x.begin() + 1);
      std::copy(c.y.begin(), c.y.end(), y.begin() + 2);
      std::copy(c.dy.begin(), c.dy.end(), dy.begin() + 3);
      backward_of(op, x.data() + 1, y.data() + 2, dy.data() + 3, dx.data() + 4, n, false);
      CHECK(std::memcmp(dx.data() + 4, got.data(), size_t(n) * sizeof(float)) == 0);
      // In place over dy.
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), c.dy.data(), n, false);
      CHECK(std::memcmp(c.dy.data(), got.data(), size_t(n) * sizeof(float)) == 0);
    }
  }
  for (UnaryOp op : kOps) unary_backward(op, nullptr, nullptr, nullptr, nullptr, 0);
}

TEST_CASE("backward: threaded sizes vs oracle and independent of the count; gelu sweep") {
  const int saved = num_threads();
  uint64_t seed = 2000;
  for (UnaryOp op : kOps) {
    for (int64_t n : {int64_t(40000), int64_t(100003)}) {
      BackCase c = back_case(op, n, seed++);
      Tensor one({n}), two({n}), want({n});
      set_num_threads(1);
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), one.data(), n, false);
      set_num_threads(2);
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), two.data(), n, false);
      backward_of(op, c.x.data(), c.y.data(), c.dy.data(), want.data(), n, true);
      expect_back(op, two.data(), want.data(), c.dy.data(), n,
                  name_of(op) + " n=" + std::to_string(n));
      CHECK(std::memcmp(one.data(), two.data(), size_t(n) * sizeof(float)) == 0);
    }
  }
  set_num_threads(saved);
  // gelu over [-12, 12]: both tails, and the zero of gelu' near -0.75.
  const int64_t n = 24001;
  Tensor x({n}), dy = Tensor::full({n}, 1.f), got({n}), want({n});
  for (int64_t i = 0; i < n; ++i) x.data()[i] = -12.f + 24.f * float(i) / float(n - 1);
  unary_backward(UnaryOp::gelu, x.data(), nullptr, dy.data(), got.data(), n);
  unary_backward_ref(UnaryOp::gelu, x.data(), nullptr, dy.data(), want.data(), n);
  expect_back(UnaryOp::gelu, got.data(), want.data(), dy.data(), n, "gelu sweep");
}

TEST_CASE("backward: kernel vs central differences of the forward kernel") {
  // Inputs where f is smooth within the step (|x| >= 0.1 at the kinks of relu
  // and abs), h = 1e-3 max(|x|, 1): truncation ~h^2 |f'''| and rounding
  // ~ulp(f)/h stay well under the tolerance, 1e-3 of max(|f'|, 1).
  uint64_t seed = 3000;
  for (UnaryOp op : kOps) {
    const int64_t n = 257;
    Tensor x = input_for(op, {n}, seed++);
    if (op == UnaryOp::exp) x = rand_tensor({n}, seed++, -4.f, 4.f);
    if (op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt)
      x = rand_tensor({n}, seed++, 0.2f, 5.f);
    for (float& v : x)
      if (std::fabs(v) < 0.1f) v = v < 0 ? -0.1f : 0.1f;
    Tensor y = unary(op, x), ones = Tensor::full({n}, 1.f), d({n});
    backward_of(op, x.data(), y.data(), ones.data(), d.data(), n, false);
    Tensor xp({n}), xm({n}), yp({n}), ym({n});
    for (int64_t i = 0; i < n; ++i) {
      const float h = 1e-3f * std::max(1.f, std::fabs(x.data()[i]));
      xp.data()[i] = x.data()[i] + h;
      xm.data()[i] = x.data()[i] - h;
    }
    unary_forward(op, xp.data(), yp.data(), n);
    unary_forward(op, xm.data(), ym.data(), n);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double fd = (double(yp.data()[i]) - ym.data()[i]) /
                        (double(xp.data()[i]) - xm.data()[i]);  // the steps taken in float
      const double e = std::fabs(d.data()[i] - fd) / std::max(1.0, std::fabs(fd));
      if (e > worst) { worst = e; at = i; }
    }
    INFO(name_of(op), ": worst ", worst, " at x=", x.data()[at], " analytic ", d.data()[at]);
    CHECK(worst <= 1e-3);
  }
}

TEST_CASE("backward: special values") {
  const float nan = kNaN, inf = kInf;
  auto back = [](UnaryOp op, float x, float dy = 1.f) {
    float y = 0, dx = 0, want = 0;
    unary_forward(op, &x, &y, 1);
    backward_of(op, &x, &y, &dy, &dx, 1, false);
    backward_of(op, &x, &y, &dy, &want, 1, true);
    expect_back(op, &dx, &want, &dy, 1,
                name_of(op) + "'(" + std::to_string(x) + ") * " + std::to_string(dy));
    return dx;
  };
  // Kinks: relu'(0) = abs'(0) = 0 (as torch), also at -0 and for a NaN x.
  CHECK(back(UnaryOp::relu, 0.f) == 0.f);
  CHECK(back(UnaryOp::relu, -0.f) == 0.f);
  CHECK(back(UnaryOp::relu, 1e-30f) == 1.f);
  CHECK(back(UnaryOp::relu, -inf, nan) == 0.f);  // masked: even a NaN dy gives 0
  CHECK(back(UnaryOp::abs, 0.f) == 0.f);
  CHECK(back(UnaryOp::abs, -0.f) == 0.f);
  CHECK(back(UnaryOp::abs, nan) == 0.f);
  CHECK(back(UnaryOp::abs, -2.f, 3.f) == -3.f);
  // gelu' at the centre and at the limits (x phi(x) is inf * 0 at +-inf).
  CHECK(back(UnaryOp::gelu, 0.f) == doctest::Approx(0.5).epsilon(1e-7));  // xsimd erfc(0) < 1
  CHECK(back(UnaryOp::gelu, inf) == 1.f);
  CHECK(back(UnaryOp::gelu, -inf) == 0.f);
  CHECK(back(UnaryOp::gelu, 20.f) == 1.f);
  CHECK(std::fabs(back(UnaryOp::gelu, -20.f)) < 1e-30f);
  // Saturated tanh and sigmoid have zero slope; their centres are exact.
  CHECK(back(UnaryOp::tanh, 20.f) == 0.f);
  CHECK(back(UnaryOp::tanh, 0.f) == 1.f);
  CHECK(back(UnaryOp::sigmoid, 0.f) == 0.25f);
  CHECK(back(UnaryOp::sigmoid, 100.f) == 0.f);
  CHECK(back(UnaryOp::sigmoid, -100.f) > 0.f);  // y ~ 3.7e-44 is a denormal, not 0
  // The poles of sqrt, rsqrt and log at 0.
  CHECK(back(UnaryOp::sqrt, 0.f) == inf);
  CHECK(back(UnaryOp::rsqrt, 0.f) == -inf);
  CHECK(back(UnaryOp::log, 0.f) == inf);
  CHECK(back(UnaryOp::exp, 1.f, 2.f) == 2.f * unary(UnaryOp::exp, Tensor::scalar(1.f)).item());
  // A NaN upstream gradient stays NaN wherever the slope is not masked to 0.
  for (UnaryOp op : kOps) CHECK(std::isnan(back(op, 0.5f, nan)));
}

}  // TEST_SUITE
}  // namespace qkv

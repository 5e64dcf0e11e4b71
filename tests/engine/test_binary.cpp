// Broadcasting binary ops: binary() against binary_ref() over sizes, broadcast
// patterns, misaligned views, empty tensors, NaN propagation, threads, in-place
// and error messages. add/sub/mul/div/max/min round once in both paths, so the
// SIMD kernel must match the oracle exactly.
#include "engine/kernels/binary.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::kSizes;
using test::rand_tensor;

const std::vector<BinaryOp> kOps = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                                    BinaryOp::div, BinaryOp::maximum, BinaryOp::minimum};

// Each op is one IEEE rounding (or a selection) in both the kernel and the oracle.
constexpr double kExact = 0.0;

// Bitwise equality, NaN == NaN (for results that must not depend on the thread count).
bool same_bits(const Tensor& x, const Tensor& y) {
  return x.shape() == y.shape() &&
         (x.numel() == 0 || std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)) == 0);
}

void check_all_ops(const Tensor& a, const Tensor& b, const std::string& what) {
  for (BinaryOp op : kOps) {
    Tensor got = binary(op, a, b), want = binary_ref(op, a, b);
    expect_close(got, want, kExact,
                 std::string(binary_name(op)) + " " + shape_str(a.shape()) + " op " +
                     shape_str(b.shape()) + " " + what);
  }
}

// The message of the qkv::Error thrown by f, or "" when nothing is thrown.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("engine/binary") {

TEST_CASE("hand-checked values: operand order, broadcast, NaN-free max/min") {
  Tensor a = Tensor::from({2, 1}, {1, 2});
  Tensor b = Tensor::from({3}, {10, 20, 30});
  CHECK(add(a, b).shape() == Shape{2, 3});
  CHECK(add(a, b).to_vector() == std::vector<float>{11, 21, 31, 12, 22, 32});
  CHECK(sub(a, b).to_vector() == std::vector<float>{-9, -19, -29, -8, -18, -28});
  CHECK(sub(b, a).to_vector() == std::vector<float>{9, 19, 29, 8, 18, 28});
  CHECK(mul(a, b).to_vector() == std::vector<float>{10, 20, 30, 20, 40, 60});
  CHECK(div(b, a).to_vector() == std::vector<float>{10, 20, 30, 5, 10, 15});
  CHECK(div(a, Tensor::scalar(4.f)).to_vector() == std::vector<float>{0.25f, 0.5f});
  Tensor c = Tensor::from({4}, {-1, 5, 2, -7});
  Tensor d = Tensor::from({4}, {3, -2, 2, -8});
  CHECK(maximum(c, d).to_vector() == std::vector<float>{3, 5, 2, -7});
  CHECK(minimum(c, d).to_vector() == std::vector<float>{-1, -2, 2, -8});
  // The oracle agrees with the hand values too.
  CHECK(binary_ref(BinaryOp::sub, a, b).to_vector() == sub(a, b).to_vector());
}

TEST_CASE("same shape: every op over kSizes and odd shapes") {
  uint64_t seed = 1;
  for (int64_t n : kSizes) {
    Tensor a = rand_tensor({n}, seed++), b = rand_tensor({n}, seed++);
    check_all_ops(a, b, "flat");
  }
  for (Shape s : {Shape{3, 5, 7}, Shape{17, 33}, Shape{2, 1, 3}, Shape{1, 1, 19}}) {
    Tensor a = rand_tensor(s, seed++), b = rand_tensor(s, seed++);
    check_all_ops(a, b, "odd shape");
  }
}

TEST_CASE("broadcast patterns, both operand orders") {
  struct Case { Shape a, b; };
  std::vector<Case> cases = {
      {{}, {5, 7}},              // shape [] scalar
      {{1}, {17}},               // [1] scalar
      {{1}, {3, 33}},            // [1] scalar, rank differs
      {{1, 1}, {4, 9}},
      {{33}, {4, 33}},           // row
      {{9, 1}, {9, 17}},         // column
      {{3, 1, 5}, {3, 4, 5}},    // middle axis
      {{3, 1, 5}, {1, 4, 1}},    // both sides broadcast
      {{5, 1, 1}, {1, 1, 7}},
      {{4, 5}, {2, 3, 4, 5}},    // rank differs by 2
      {{3, 1}, {2, 1, 4}},
      {{2, 1, 3, 1}, {1, 4, 1, 5}},
      {{6, 1, 1, 7}, {6, 2, 3, 7}},  // [6,1,1,7] merges the two broadcast dims
  };
  // Every tail length on the contiguous run and on the broadcast run.
  for (int64_t n : kSizes) {
    cases.push_back({{n}, {3, n}});
    cases.push_back({{3, 1}, {3, n}});
    cases.push_back({{1, n}, {5, 1}});
    cases.push_back({{2, 1, n}, {2, 3, n}});
    cases.push_back({{}, {n}});
  }
  uint64_t seed = 100;
  for (const Case& c : cases) {
    Tensor a = rand_tensor(c.a, seed++), b = rand_tensor(c.b, seed++);
    const Shape want_shape = broadcast_shapes(c.a, c.b, "test");
    CHECK(binary(BinaryOp::add, a, b).shape() == want_shape);
    CHECK(binary(BinaryOp::add, b, a).shape() == want_shape);
    check_all_ops(a, b, "broadcast");
    check_all_ops(b, a, "broadcast swapped");
  }
}

TEST_CASE("misaligned inputs (narrow_rows views at odd offsets)") {
  uint64_t seed = 200;
  for (int64_t n : kSizes) {
    // 1-D views at offsets 1 and 3 floats: never 64-byte aligned.
    Tensor a = rand_tensor({n + 1}, seed++).narrow_rows(1, n + 1);
    Tensor b = rand_tensor({n + 3}, seed++).narrow_rows(3, n + 3);
    check_all_ops(a, b, "misaligned flat");
    check_all_ops(a, b.narrow_rows(0, 1), "misaligned scalar");
    // Rows 1..3 of a [4,n] tensor: offset n floats, with a row broadcast.
    Tensor m = rand_tensor({4, n}, seed++).narrow_rows(1, 4);
    check_all_ops(m, b, "misaligned rows");
    check_all_ops(b, m, "misaligned rows swapped");
  }
}

TEST_CASE("empty and one-element tensors") {
  Tensor e0 = Tensor({0}), e30 = Tensor({3, 0});
  for (BinaryOp op : kOps) {
    CHECK(binary(op, e0, e0).shape() == Shape{0});
    CHECK(binary(op, e30, e0).shape() == Shape{3, 0});
    CHECK(binary(op, e30, Tensor::scalar(2.f)).shape() == Shape{3, 0});
    CHECK(binary(op, Tensor({3, 1}), e30).shape() == Shape{3, 0});
    CHECK(binary_ref(op, e30, Tensor({3, 1})).numel() == 0);
  }
  CHECK(add(Tensor::scalar(1.5f), Tensor::scalar(2.f)).shape() == Shape{});
  CHECK(add(Tensor::scalar(1.5f), Tensor::scalar(2.f)).item() == 3.5f);
  CHECK(sub(Tensor::full({1}, 1.5f), Tensor::scalar(2.f)).shape() == Shape{1});
  CHECK(sub(Tensor::full({1}, 1.5f), Tensor::scalar(2.f)).item() == -0.5f);
  CHECK(mul(Tensor::full({1, 1}, 3.f), Tensor::full({1}, 2.f)).shape() == Shape{1, 1});
  check_all_ops(Tensor::full({1}, 0.75f), Tensor::scalar(-2.f), "one element");
}

TEST_CASE("maximum/minimum propagate NaN from either side; inf behaves") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : kSizes) {
    Tensor a = rand_tensor({n}, 300 + n), b = rand_tensor({n}, 400 + n);
    // NaN in a at even positions from the end (so tails get some), in b at every 3rd.
    for (int64_t i = 0; i < n; ++i) {
      if ((n - 1 - i) % 2 == 0) a.data()[i] = nan;
      if (i % 3 == 1) b.data()[i] = nan;
    }
    for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
      for (const Tensor& got : {binary(op, a, b), binary(op, b, a), binary_ref(op, a, b)}) {
        for (int64_t i = 0; i < n; ++i) {
          const bool want_nan = std::isnan(a.data()[i]) || std::isnan(b.data()[i]);
          CHECK_MESSAGE(std::isnan(got.data()[i]) == want_nan, binary_name(op), " n=", n, " i=", i);
        }
      }
    }
    // NaN as the broadcast scalar, on either side.
    for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
      for (float v : binary(op, Tensor::scalar(nan), b).to_vector()) CHECK(std::isnan(v));
      for (float v : binary(op, b, Tensor::scalar(nan)).to_vector()) CHECK(std::isnan(v));
    }
  }
  Tensor x = Tensor::from({4}, {inf, -inf, 1.f, -inf});
  Tensor y = Tensor::from({4}, {-inf, inf, inf, -inf});
  CHECK(maximum(x, y).to_vector() == std::vector<float>{inf, inf, inf, -inf});
  CHECK(minimum(x, y).to_vector() == std::vector<float>{-inf, -inf, 1.f, -inf});
  // Arithmetic NaN/inf follow IEEE in both paths (inf-inf, 0/0 are NaN; 1/0 is inf).
  Tensor z = Tensor::from({3}, {0.f, 1.f, -1.f});
  check_all_ops(x, y, "inf");
  check_all_ops(z, Tensor::scalar(0.f), "division by zero");
}

TEST_CASE("threaded sizes: exact vs oracle and independent of the thread count") {
  struct Case { Shape a, b; };
  const std::vector<Case> cases = {
      {{70001}, {70001}},          // one flat run, cut mid-vector
      {{70001}, {}},               // flat with scalar
      {{2, 40003}, {2, 1}},        // 2 long rows, column scalar
      {{3, 20011}, {20011}},       // 3 rows over 2 threads: cut mid-row
      {{1000, 37}, {37}},          // many short rows
      {{37, 1001}, {37, 1}},
      {{8, 64, 130}, {8, 1, 130}}, // middle-axis broadcast
      {{257, 1}, {1, 257}},        // outer product
  };
  const int saved = num_threads();
  uint64_t seed = 500;
  for (const Case& c : cases) {
    Tensor a = rand_tensor(c.a, seed++), b = rand_tensor(c.b, seed++);
    for (BinaryOp op : kOps) {
      set_num_threads(2);
      Tensor two = binary(op, a, b);
      set_num_threads(1);
      Tensor one = binary(op, a, b);
      expect_close(two, binary_ref(op, a, b), kExact,
                   std::string(binary_name(op)) + " " + shape_str(c.a) + " op " + shape_str(c.b));
      CHECK(same_bits(one, two));
    }
  }
  set_num_threads(saved);
}

TEST_CASE("binary_inplace: a = a op b, b broadcast to a") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{17}, {17}}, {{3, 33}, {33}}, {{3, 33}, {3, 1}}, {{3, 33}, {}}, {{3, 33}, {1}},
      {{3, 4, 5}, {3, 1, 5}}, {{2, 3, 4}, {4}}, {{0}, {1}}, {{100, 257}, {257}},
  };
  uint64_t seed = 600;
  for (const auto& [sa, sb] : cases) {
    Tensor a = rand_tensor(sa, seed++), b = rand_tensor(sb, seed++);
    for (BinaryOp op : kOps) {
      Tensor want = binary_ref(op, a, b);
      Tensor got = a.clone();
      binary_inplace(op, got, b);
      expect_close(got, want, kExact, std::string(binary_name(op)) + " in place " + shape_str(sa));
    }
  }
  // a op= a: the operand is the destination.
  Tensor a = rand_tensor({3, 33}, 700);
  for (BinaryOp op : kOps) {
    Tensor want = binary_ref(op, a, a);
    Tensor got = a.clone();
    binary_inplace(op, got, got);
    expect_close(got, want, kExact, std::string(binary_name(op)) + " a op= a");
  }
  // b is row 0 of a itself: every row must use row 0's original values.
  Tensor m = rand_tensor({4, 19}, 701);
  Tensor want = binary_ref(BinaryOp::sub, m, m.narrow_rows(0, 1).clone());
  binary_inplace(BinaryOp::sub, m, m.narrow_rows(0, 1));
  expect_close(m, want, kExact, "sub in place, b a row of a");
  // A misaligned destination.
  Tensor big = rand_tensor({5, 13}, 702);
  Tensor view = big.narrow_rows(1, 5);
  Tensor b = rand_tensor({13}, 703);
  Tensor want_view = binary_ref(BinaryOp::mul, view, b);
  binary_inplace(BinaryOp::mul, view, b);
  expect_close(big.narrow_rows(1, 5), want_view, kExact, "mul in place, misaligned view");
}

TEST_CASE("shape errors name the op and the shapes") {
  Tensor a = rand_tensor({2, 3}, 800), b = rand_tensor({4}, 801);
  CHECK(error_of([&] { binary(BinaryOp::add, a, b); }) ==
        "add: shapes [2,3] and [4] do not broadcast");
  for (BinaryOp op : kOps) {
    const std::string name = binary_name(op);
    CHECK_THROWS_AS(binary(op, a, b), Error);
    CHECK(error_of([&] { binary(op, a, b); }).find(name + ": shapes [2,3] and [4]") == 0);
    CHECK(error_of([&] { binary_ref(op, a, b); }).find(name + ":") == 0);
    CHECK(error_of([&] { binary(op, rand_tensor({3, 2}, 1), rand_tensor({2, 1, 4}, 2)); })
              .find(name + ":") == 0);
    // In place: b must broadcast *to* a; [3] op= [2,3] broadcasts but would grow a.
    Tensor small = rand_tensor({3}, 802);
    const std::string msg = error_of([&] { binary_inplace(op, small, a); });
    CHECK(msg.find(name) == 0);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(msg.find("[3]") != std::string::npos);
    CHECK(error_of([&] { binary_inplace(op, a, b); }).find(name + ":") == 0);
    CHECK(error_of([&] { binary(op, Tensor(), a); }).find(name) == 0);
  }
  CHECK(std::string(binary_name(BinaryOp::maximum)) == "maximum");
  CHECK(std::string(binary_name(BinaryOp::div)) == "div");
}

}  // TEST_SUITE
}  // namespace qkv

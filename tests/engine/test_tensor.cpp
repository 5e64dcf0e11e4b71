// Tensor: storage, views, creation, layout ops (permute, transpose, slice,
// concat, stack, index_select), integer tensors, printing and shape errors.
#include <sstream>

#include "engine/tensor.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// Reference permute by explicit multi-index arithmetic (independent of the
// row-walk in permute()).
Tensor permute_naive(const Tensor& x, const std::vector<int>& dims) {
  const Shape& s = x.shape();
  const int n = int(s.size());
  Shape os(n);
  for (int i = 0; i < n; ++i) os[i] = s[dims[i]];
  Tensor out(os);
  std::vector<int64_t> idx(n, 0);
  for (int64_t flat = 0; flat < out.numel(); ++flat) {
    int64_t rem = flat;
    for (int i = n - 1; i >= 0; --i) {  // output multi-index
      idx[i] = rem % os[i];
      rem /= os[i];
    }
    int64_t src = 0;
    std::vector<int64_t> in_idx(n);
    for (int i = 0; i < n; ++i) in_idx[dims[i]] = idx[i];
    for (int i = 0; i < n; ++i) src = src * s[i] + in_idx[i];
    out.data()[flat] = x.data()[src];
  }
  return out;
}

TEST_SUITE("engine/tensor") {
  TEST_CASE("storage is 64-byte aligned and padded") {
    for (int64_t n : test::kSizes) {
      Tensor t({n});
      CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
      CHECK(t.numel() == n);
    }
    Tensor big({3, 1 << 20});  // >= 2 MiB: huge-page path
    CHECK(reinterpret_cast<uintptr_t>(big.data()) % 64 == 0);
    big.fill(2.f);
    CHECK(big.at({2, (1 << 20) - 1}) == 2.f);
  }

  TEST_CASE("rank up to 8 and beyond") {
    Shape s = {2, 1, 3, 1, 2, 1, 2, 1, 2};  // rank 9
    Tensor t = arange(numel_of(s)).view(s);
    CHECK(t.dim() == 9);
    CHECK(t.numel() == 48);
    CHECK(t.at({1, 0, 2, 0, 1, 0, 1, 0, 1}) == 47.f);
  }

  TEST_CASE("views share storage; -1 is inferred; clone does not share") {
    Tensor t = arange(24);
    Tensor v = t.view({2, -1, 4});
    CHECK(v.shape() == Shape{2, 3, 4});
    CHECK(v.shares_storage(t));
    v.at({1, 2, 3}) = 100.f;
    CHECK(t.data()[23] == 100.f);
    Tensor c = t.clone();
    c.data()[0] = -1.f;
    CHECK(t.data()[0] == 0.f);
    CHECK_FALSE(c.shares_storage(t));
    Tensor r = t.narrow_rows(0, 24).view({4, 6}).narrow_rows(1, 3);
    CHECK(r.shape() == Shape{2, 6});
    CHECK(r.data()[0] == 6.f);
    CHECK(r.shares_storage(t));
  }

  TEST_CASE("creation") {
    CHECK(zeros({2, 3}).to_vector() == std::vector<float>(6, 0.f));
    CHECK(ones({4}).to_vector() == std::vector<float>(4, 1.f));
    CHECK(full({2}, 2.5f).to_vector() == std::vector<float>{2.5f, 2.5f});
    CHECK(arange(4).to_vector() == std::vector<float>{0, 1, 2, 3});
    CHECK(arange(1.f, 2.f, 0.25f).to_vector() == std::vector<float>{1, 1.25f, 1.5f, 1.75f});
    CHECK(arange(0).numel() == 0);
    CHECK(Tensor::scalar(3.f).dim() == 0);
    CHECK(Tensor::scalar(3.f).item() == 3.f);
    Tensor e = zeros({3, 0});
    CHECK(e.numel() == 0);
    CHECK(e.clone().shape() == Shape{3, 0});
  }

  TEST_CASE("permute and transpose match explicit indexing") {
    Tensor x = test::rand_tensor({2, 3, 4, 5}, 1);
    for (std::vector<int> d : {std::vector<int>{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2},
                               {0, 2, 1, 3}, {2, 3, 0, 1}, {3, 0, 1, 2}}) {
      Tensor p = permute(x, d), q = permute_naive(x, d);
      CHECK(p.shape() == q.shape());
      CHECK(p.to_vector() == q.to_vector());
    }
    Tensor t = transpose(x, -1, 1);
    CHECK(t.shape() == Shape{2, 5, 4, 3});
    CHECK(t.to_vector() == permute_naive(x, {0, 3, 2, 1}).to_vector());
    // odd sizes through the threaded path
    Tensor big = test::rand_tensor({257, 33, 17}, 2);
    CHECK(permute(big, {2, 0, 1}).to_vector() == permute_naive(big, {2, 0, 1}).to_vector());
    CHECK(transpose(transpose(big, 0, 2), 0, 2).to_vector() == big.to_vector());
    // a batch of matrix transposes (the tile kernels): rows across 16-row
    // bands and 8- and 16-wide tiles, with tails
    Tensor mats = test::rand_tensor({3, 37, 21}, 3);
    CHECK(permute(mats, {0, 2, 1}).to_vector() == permute_naive(mats, {0, 2, 1}).to_vector());
  }

  TEST_CASE("slice along every axis, negative bounds") {
    Tensor x = arange(60).view({3, 4, 5});
    Tensor s = slice(x, 1, 1, 3);
    CHECK(s.shape() == Shape{3, 2, 5});
    CHECK(s.at({2, 1, 4}) == x.at({2, 2, 4}));
    Tensor s2 = slice(x, -1, -2, 5);
    CHECK(s2.shape() == Shape{3, 4, 2});
    CHECK(s2.at({1, 3, 0}) == x.at({1, 3, 3}));
    CHECK(slice(x, 0, 2, 2).numel() == 0);
    CHECK_THROWS_WITH_AS(slice(x, 1, 2, 5), doctest::Contains("slice: [2,5) out of range"),
                         Error);
  }

  TEST_CASE("concat and stack") {
    Tensor a = arange(6).view({2, 3}), b = arange(6.f, 10.f).view({2, 2});
    Tensor c = concat<float>({a, b}, 1);
    CHECK(c.shape() == Shape{2, 5});
    CHECK(c.to_vector() == std::vector<float>{0, 1, 2, 6, 7, 3, 4, 5, 8, 9});
    Tensor d = concat<float>({a, a}, 0);
    CHECK(d.shape() == Shape{4, 3});
    CHECK(slice(d, 0, 2, 4).to_vector() == a.to_vector());
    Tensor st = stack<float>({a, zeros({2, 3})}, -1);
    CHECK(st.shape() == Shape{2, 3, 2});
    CHECK(st.at({1, 2, 0}) == 5.f);
    CHECK(st.at({1, 2, 1}) == 0.f);
    CHECK(test::error_of([&] { concat<float>({a, b}, 0); }).find("concat: tensor 1 has shape [2,2]") !=
          std::string::npos);
    CHECK(test::error_of([&] { stack<float>({a, b}, 0); }).find("stack:") != std::string::npos);
  }

  TEST_CASE("index_select gathers rows (embedding lookup) and range-checks ids") {
    Tensor table = arange(12).view({4, 3});
    IntTensor ids = IntTensor::from({2, 2}, {3, 0, 1, 3});
    Tensor e = index_select(table, ids);
    CHECK(e.shape() == Shape{2, 2, 3});
    CHECK(e.to_vector() == std::vector<float>{9, 10, 11, 0, 1, 2, 3, 4, 5, 9, 10, 11});
    IntTensor bad = IntTensor::from({2}, {1, 4});
    CHECK(test::error_of([&] { index_select(table, bad); }) ==
          "index_select: id 4 at flat index 1 out of range [0,4)");
    IntTensor neg = IntTensor::from({1}, {-1});
    CHECK_THROWS_AS(index_select(table, neg), Error);
  }

  TEST_CASE("integer tensors: checked access and layout ops") {
    IntTensor t = IntTensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.at({1, 2}) == 6);
    CHECK(transpose(t, 0, 1).to_vector() == std::vector<int32_t>{1, 4, 2, 5, 3, 6});
    IntTensor m({2, 19, 11});  // bands and tiles with tails
    for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = int32_t(i);
    const IntTensor mt = transpose(m, 1, 2);
    bool same = true;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t r = 0; r < 19; ++r)
        for (int64_t c = 0; c < 11; ++c) same &= mt.at({b, c, r}) == m.at({b, r, c});
    CHECK(same);
    CHECK(concat<int32_t>({t, t}, 0).numel() == 12);
    CHECK(IntTensor::zeros({5}).to_vector() == std::vector<int32_t>(5, 0));
    CHECK_THROWS_WITH_AS(t.at({2, 0}), doctest::Contains("at: index 2 out of range"), Error);
    CHECK_THROWS_WITH_AS(t.at({0}), doctest::Contains("at: 1 indices for a tensor of shape [2,3]"),
                         Error);
  }

  TEST_CASE("shape errors name the op and shapes") {
    Tensor t = zeros({2, 3});
    CHECK(test::error_of([&] { t.view({4, 2}); }) ==
          "view: shape [4,2] has 8 elements, tensor [2,3] has 6");
    CHECK(test::error_of([&] { t.view({-1, -1}); }).find("view: more than one -1") == 0);
    CHECK(test::error_of([&] { permute(t, {0, 0}); }).find("permute: axis 0 repeated") == 0);
    CHECK(test::error_of([&] { transpose(t, 0, 2); }).find("transpose: axis 2 out of range") == 0);
    CHECK(test::error_of([&] { t.item(); }).find("item: expected one element") == 0);
    CHECK(test::error_of([&] { Tensor::from({2}, {1.f}); }).find("tensor: 1 values given") == 0);
    CHECK(test::error_of([&] { t.size(2); }).find("size: axis 2 out of range") == 0);
  }

  TEST_CASE("printing shows the shape and elides long axes") {
    std::ostringstream o;
    o << arange(6).view({2, 3});
    CHECK(o.str() == "Tensor[2,3]\n[[0, 1, 2],\n [3, 4, 5]]");
    std::string s = to_string(arange(100));
    CHECK(s.find("Tensor[100]") == 0);
    CHECK(s.find("...") != std::string::npos);
    CHECK(s.find("99") != std::string::npos);
    std::ostringstream oi;
    oi << IntTensor::from({2}, {7, 8});
    CHECK(oi.str() == "IntTensor[2]\n[7, 8]");
  }
}

}  // namespace
}  // namespace qkv

// LayerNorm forward and statistics against the double-precision *_ref oracles
// over the size sweep and every affine combination, plus the numerics that
// matter: |mean| >> std (two-pass statistics), constant rows, shape errors.
// Then the backward kernel the same way, and its thread-count independence.
#include <cmath>
#include <functional>
#include <string>

#include "engine/kernels/layernorm.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::kSizes;
using test::rand_tensor;
using test::tol_for;

// Kernel vs reference on x: [rows, n] (raw pointers, any alignment).
void check_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t n,
                   float eps, double tol, const std::string& what) {
  const size_t R = size_t(rows), N = size_t(n);
  std::vector<float> y(R * N), mean(R), rstd(R);
  std::vector<float> wy(y.size()), wmean(mean.size()), wrstd(rstd.size());
  layernorm_forward(x, gamma, beta, rows, n, eps, y.data(), mean.data(), rstd.data());
  layernorm_forward_ref(x, gamma, beta, rows, n, eps, wy.data(), wmean.data(), wrstd.data());
  expect_close(y.data(), wy.data(), rows * n, tol, what + " y");
  expect_close(mean.data(), wmean.data(), rows, tol, what + " mean");
  expect_close(rstd.data(), wrstd.data(), rows, tol, what + " rstd");
  std::vector<float> smean(mean.size()), srstd(rstd.size());
  layernorm_stats(x, rows, n, eps, smean.data(), srstd.data());
  CHECK(smean == mean);  // the same statistics code as the forward
  CHECK(srstd == rstd);
  layernorm_stats_ref(x, rows, n, eps, smean.data(), srstd.data());
  CHECK(smean == wmean);
  CHECK(srstd == wrstd);
}

// shape_str, not "[" + to_string(...) + ...: that form trips GCC 12's false
// -Wrestrict (bug 105329) once inlined into the backward checks.
std::string dims(int64_t rows, int64_t n) { return shape_str({rows, n}); }

// Backward kernel vs reference on x: [rows, n] (statistics from the forward),
// for every combination of gamma and of the wanted outputs.
void check_backward(const float* x, const float* gamma, const float* dy, int64_t rows, int64_t n,
                    double tol, const std::string& what) {
  const size_t R = size_t(rows), N = size_t(n);
  std::vector<float> y(R * N), mean(R), rstd(R);
  layernorm_forward(x, gamma, nullptr, rows, n, 1e-5f, y.data(), mean.data(), rstd.data());
  std::vector<float> dx(R * N), dg(N), db(N), wdx(R * N), wdg(N), wdb(N);
  layernorm_backward_ref(x, mean.data(), rstd.data(), gamma, dy, rows, n, wdx.data(), wdg.data(),
                         wdb.data());
  // dgamma/dbeta sum over rows: their rounding grows with sqrt(rows) too.
  const double tol_rows = tol * std::max(1.0, std::sqrt(double(rows)) / 2);
  // dx's natural scale is rstd * |g|, not 1: at n = 1 (rstd = 1/sqrt(eps)) the
  // exact answer 0 comes out as rstd times the rounding of g - mean(g).
  double dx_scale = 1;
  for (int64_t r = 0; r < rows; ++r) dx_scale = std::max(dx_scale, double(rstd[size_t(r)]));
  const double tol_dx = tol * dx_scale;
  for (int want = 0; want < 8; ++want) {
    float* pdx = want & 1 ? dx.data() : nullptr;
    float* pdg = want & 2 ? dg.data() : nullptr;
    float* pdb = want & 4 ? db.data() : nullptr;
    std::fill(dx.begin(), dx.end(), std::nanf(""));
    std::fill(dg.begin(), dg.end(), std::nanf(""));
    std::fill(db.begin(), db.end(), std::nanf(""));
    layernorm_backward(x, mean.data(), rstd.data(), gamma, dy, rows, n, pdx, pdg, pdb);
    const std::string w = what + " want " + std::to_string(want);
    if (pdx) expect_close(dx.data(), wdx.data(), rows * n, tol_dx, w + " dx");
    if (pdg) expect_close(dg.data(), wdg.data(), n, tol_rows, w + " dgamma");
    if (pdb) expect_close(db.data(), wdb.data(), n, tol_rows, w + " dbeta");
  }
}

}  // namespace

TEST_SUITE("engine/layernorm") {
  TEST_CASE("matches the reference over kSizes x kSizes, with and without affine") {
    for (int64_t rows : kSizes)
      for (int64_t n : kSizes) {
        Tensor x = rand_tensor({rows, n}, uint64_t(rows * 1000 + n), -3.f, 5.f);
        Tensor g = rand_tensor({n}, uint64_t(n + 1), 0.5f, 2.f),
               b = rand_tensor({n}, uint64_t(n + 2));
        for (int affine = 0; affine < 4; ++affine)
          check_forward(x.data(), affine & 1 ? g.data() : nullptr, affine & 2 ? b.data() : nullptr,
                        rows, n, 1e-5f, tol_for(n),
                        dims(rows, n) + " affine " + std::to_string(affine));
      }
  }

  TEST_CASE("Tensor wrapper: shapes, optional affine, rank 3") {
    Tensor x = rand_tensor({2, 3, 8}, 5);
    Tensor g = rand_tensor({8}, 6), b = rand_tensor({8}, 7);
    LayerNormResult r = layernorm(x, g, b);
    CHECK(r.y.shape() == Shape{2, 3, 8});
    CHECK(r.mean.shape() == Shape{2, 3});
    CHECK(r.rstd.shape() == Shape{2, 3});
    Tensor wy(x.shape()), wm(Shape{6}), wr(Shape{6});
    layernorm_forward_ref(x.data(), g.data(), b.data(), 6, 8, 1e-5f, wy.data(), wm.data(),
                          wr.data());
    expect_close(r.y, wy, tol_for(8), "layernorm [2,3,8]");
    expect_close(r.mean.data(), wm.data(), 6, tol_for(8), "mean");
    // Undefined gamma/beta: no affine (each on its own too).
    layernorm_forward_ref(x.data(), nullptr, b.data(), 6, 8, 1e-3f, wy.data(), wm.data(),
                          wr.data());
    expect_close(layernorm(x, Tensor(), b, 1e-3f).y, wy, tol_for(8), "beta only");
    layernorm_forward_ref(x.data(), nullptr, nullptr, 6, 8, 1e-5f, wy.data(), wm.data(), wr.data());
    expect_close(layernorm(x, Tensor(), Tensor()).y, wy, tol_for(8), "no affine");
    // Rank 1: statistics are scalars.
    LayerNormResult v = layernorm(rand_tensor({8}, 8), g, b);
    CHECK(v.mean.shape() == Shape{});
    CHECK(v.rstd.shape() == Shape{});
  }

  TEST_CASE("accurate when |mean| >> std (mean 1000, std 0.01) against double") {
    // One-pass E[x^2] - E[x]^2 is wrong by O(1) here (perf-notes 4.2: error 3.3).
    for (int64_t n : {int64_t(7), int64_t(100), int64_t(1024), int64_t(4099)}) {
      Generator gen{uint64_t(n)};
      Tensor x = normal({6, n}, 1000.f, 0.01f, gen);
      Tensor g = rand_tensor({n}, 3, 0.5f, 2.f), b = rand_tensor({n}, 4);
      check_forward(x.data(), g.data(), b.data(), 6, n, 1e-5f, 1e-4,
                    "mean 1000 std 0.01 " + dims(6, n));
      check_forward(x.data(), nullptr, nullptr, 6, n, 0.f, 1e-4,
                    "mean 1000 std 0.01 no affine eps 0 " + dims(6, n));
    }
  }

  TEST_CASE("misaligned input and output, and in place (y aliases x)") {
    for (int64_t n : kSizes) {
      Tensor big = rand_tensor({6, n}, uint64_t(90 + n), -2.f, 2.f);
      Tensor x = big.narrow_rows(1, 6);  // misaligned unless n % 16 == 0
      Tensor g = rand_tensor({n + 1}, 1), b = rand_tensor({n + 1}, 2);
      check_forward(x.data(), g.data() + 1, b.data() + 1, 5, n, 1e-5f, tol_for(n),
                    "narrow " + dims(5, n));
      Tensor want(x.shape()), wm(Shape{5}), wr(Shape{5}), m(Shape{5}), r(Shape{5});
      layernorm_forward_ref(x.data(), g.data(), b.data(), 5, n, 1e-5f, want.data(), wm.data(),
                            wr.data());
      Tensor y = x.clone();
      layernorm_forward(y.data(), g.data(), b.data(), 5, n, 1e-5f, y.data(), m.data(), r.data());
      expect_close(y, want, tol_for(n), "in place n=" + std::to_string(n));
    }
  }

  TEST_CASE("large tensors (the streamed path): reference, |mean| >> std rows, in place, threads") {
    // >= 8 MiB of output with n % 16 == 0 and an aligned y take the streamed
    // path; thread counts 1..3 give row blocks of odd sizes.
    const int old = num_threads();
    for (auto [rows, n] : {std::pair<int64_t, int64_t>{2053, 1024}, {131, 16384}}) {
      Tensor x = rand_tensor({rows, n}, uint64_t(rows), -3.f, 3.f);
      Generator gen{7};
      Tensor far = normal({2, n}, 1000.f, 0.01f, gen);  // rows 0 and rows - 1
      for (int64_t i = 0; i < n; ++i) {
        x.at({0, i}) = far.at({0, i});
        x.at({rows - 1, i}) = far.at({1, i});
      }
      Tensor g = rand_tensor({n}, 3, 0.5f, 2.f), b = rand_tensor({n}, 4);
      Tensor want(x.shape()), wm(Shape{rows}), wr(Shape{rows});
      layernorm_forward_ref(x.data(), g.data(), b.data(), rows, n, 1e-5f, want.data(), wm.data(),
                            wr.data());
      for (int t : {1, 2, 3}) {
        set_num_threads(t);
        const std::string what = dims(rows, n) + " at " + std::to_string(t) + " threads";
        Tensor y(x.shape()), m(Shape{rows}), r(Shape{rows});
        layernorm_forward(x.data(), g.data(), b.data(), rows, n, 1e-5f, y.data(), m.data(),
                          r.data());
        expect_close(y, want, 1e-4, what);  // 1e-4: the mean 1000 rows (as above)
        expect_close(y.narrow_rows(1, rows - 1), want.narrow_rows(1, rows - 1), tol_for(n),
                     what + " (other rows)");
        expect_close(m, wm, tol_for(n), what + " mean");
        expect_close(r, wr, 1e-4, what + " rstd");
        Tensor z = x.clone();  // in place: the same bits
        layernorm_forward(z.data(), g.data(), b.data(), rows, n, 1e-5f, z.data(), m.data(),
                          r.data());
        CHECK(z.to_vector() == y.to_vector());
      }
    }
    set_num_threads(old);
  }

  TEST_CASE("constant rows, one element, empty tensors") {
    // var = 0: rstd = 1/sqrt(eps), y = beta.
    Tensor x = full({3, 33}, 7.f), g = rand_tensor({33}, 1), b = rand_tensor({33}, 2);
    LayerNormResult r = layernorm(x, g, b, 1e-5f);
    expect_close(r.y.narrow_rows(1, 2).view({33}), b, 1e-6, "constant row");
    CHECK(r.mean.at({2}) == 7.f);
    CHECK(r.rstd.at({0}) == doctest::Approx(1.0 / std::sqrt(1e-5)));
    // n = 1: x - mean = 0.
    LayerNormResult one =
        layernorm(Tensor::from({2, 1}, {3.f, -4.f}), Tensor(), Tensor::from({1}, {0.5f}));
    CHECK(one.y.to_vector() == std::vector<float>{0.5f, 0.5f});
    // Empty: no rows keeps shapes; an empty last axis gives NaN statistics (0/0).
    LayerNormResult e0 = layernorm(Tensor::empty({0, 8}), Tensor(), Tensor());
    CHECK(e0.y.shape() == Shape{0, 8});
    CHECK(e0.mean.shape() == Shape{0});
    LayerNormResult e1 = layernorm(Tensor::empty({3, 0}), Tensor(), Tensor());
    CHECK(e1.y.shape() == Shape{3, 0});
    for (float v : e1.mean.to_vector()) CHECK(std::isnan(v));
    for (float v : e1.rstd.to_vector()) CHECK(std::isnan(v));
  }

  TEST_CASE("shape errors name the op and the expected shape") {
    Tensor x = rand_tensor({2, 8}, 1);
    CHECK(test::error_of([&] { layernorm(x, rand_tensor({5}, 2), Tensor()); }) ==
          "layernorm: gamma has shape [5], expected [8] (last axis of [2,8])");
    CHECK(test::error_of([&] {
            layernorm(x, Tensor(), rand_tensor({1, 8}, 2));
          }) == "layernorm: beta has shape [1,8], expected [8] (last axis of [2,8])");
    CHECK(test::error_of([&] { layernorm(Tensor::scalar(1.f), Tensor(), Tensor()); }) ==
          "layernorm: expected at least 1 dimension, got shape []");
    CHECK(test::error_of([&] { layernorm(Tensor(), Tensor(), Tensor()); }).find("layernorm:") == 0);
    CHECK(test::error_of([&] { layernorm(x, Tensor(), Tensor(), -1.f); }).find("layernorm: eps") ==
          0);
  }

  TEST_CASE("results do not depend on the thread count") {
    Tensor x = rand_tensor({300, 257}, 3), g = rand_tensor({257}, 4), b = rand_tensor({257}, 5);
    const int old = num_threads();
    set_num_threads(1);
    LayerNormResult a = layernorm(x, g, b);
    set_num_threads(2);
    LayerNormResult c = layernorm(x, g, b);
    set_num_threads(old);
    CHECK(a.y.to_vector() == c.y.to_vector());
    CHECK(a.mean.to_vector() == c.mean.to_vector());
    CHECK(a.rstd.to_vector() == c.rstd.to_vector());
  }

  // ---- backward ---------------------------------------------------------------

  TEST_CASE("backward matches the reference over kSizes x kSizes, with and without gamma") {
    for (int64_t rows : kSizes)
      for (int64_t n : kSizes) {
        Tensor x = rand_tensor({rows, n}, uint64_t(rows * 1000 + n), -3.f, 5.f);
        Tensor dy = rand_tensor({rows, n}, uint64_t(rows + n), -2.f, 2.f);
        Tensor g = rand_tensor({n}, uint64_t(n + 1), 0.5f, 2.f);
        check_backward(x.data(), g.data(), dy.data(), rows, n, tol_for(n),
                       dims(rows, n) + " gamma");
        check_backward(x.data(), nullptr, dy.data(), rows, n, tol_for(n), dims(rows, n));
      }
    Tensor x = rand_tensor({5, 4099}, 1, -3.f, 3.f), dy = rand_tensor({5, 4099}, 2);
    Tensor g = rand_tensor({4099}, 3);
    check_backward(x.data(), g.data(), dy.data(), 5, 4099, tol_for(4099), dims(5, 4099));
    Tensor x2 = rand_tensor({1000, 17}, 4), dy2 = rand_tensor({1000, 17}, 5);
    check_backward(x2.data(), g.data(), dy2.data(), 1000, 17, tol_for(17), dims(1000, 17));
  }

  TEST_CASE("backward: misaligned pointers and dx aliasing dy") {
    for (int64_t n : kSizes) {
      Tensor xb = rand_tensor({6, n}, uint64_t(90 + n), -2.f, 2.f);
      Tensor dyb = rand_tensor({6, n}, uint64_t(n), -1.f, 1.f), gb = rand_tensor({n + 1}, 3);
      check_backward(xb.data() + n, gb.data() + 1, dyb.data() + n, 5, n, tol_for(n),
                     "misaligned " + dims(5, n));
      Tensor mean({6}), rstd({6}), y({6, n}), want({6, n}), dx = dyb.clone();
      layernorm_forward(xb.data(), gb.data(), nullptr, 6, n, 1e-5f, y.data(), mean.data(),
                        rstd.data());
      layernorm_backward_ref(xb.data(), mean.data(), rstd.data(), gb.data(), dyb.data(), 6, n,
                             want.data(), nullptr, nullptr);
      layernorm_backward(xb.data(), mean.data(), rstd.data(), gb.data(), dx.data(), 6, n, dx.data(),
                         nullptr, nullptr);
      double rmax = 1;
      for (float v : rstd) rmax = std::max(rmax, double(v));
      expect_close(dx, want, tol_for(n) * rmax, "in place " + dims(6, n));
    }
  }

  TEST_CASE("backward accurate when |mean| >> std (mean 1000, std 0.01)") {
    // x_hat from a float mean would be off by up to 3e-3 here; re-centring fixes it.
    for (int64_t n : {int64_t(7), int64_t(100), int64_t(1024)}) {
      Generator gen{uint64_t(n)};
      Tensor x = normal({6, n}, 1000.f, 0.01f, gen);
      Tensor g = rand_tensor({n}, 3, 0.5f, 2.f), dy = rand_tensor({6, n}, 4);
      check_backward(x.data(), g.data(), dy.data(), 6, n, 2e-4, "mean 1000 " + dims(6, n));
      // The reference itself against a double recomputation of the statistics.
      Tensor mean({6}), rstd({6}), y({6, n}), dx({6, n});
      layernorm_forward(x.data(), g.data(), nullptr, 6, n, 1e-5f, y.data(), mean.data(),
                        rstd.data());
      layernorm_backward(x.data(), mean.data(), rstd.data(), g.data(), dy.data(), 6, n, dx.data(),
                         nullptr, nullptr);
      for (int64_t r = 0; r < 6; ++r) {
        const float* xr = x.data() + r * n;
        double mu = 0, var = 0, mg = 0, mgx = 0;
        for (int64_t i = 0; i < n; ++i) mu += xr[i] / double(n);
        for (int64_t i = 0; i < n; ++i) var += (xr[i] - mu) * (xr[i] - mu) / double(n);
        const double rs = 1 / std::sqrt(var + 1e-5);
        std::vector<double> xh(size_t(n), 0.0);
        for (int64_t i = 0; i < n; ++i) {
          xh[size_t(i)] = (xr[i] - mu) * rs;
          mg += dy.data()[r * n + i] * g.data()[i] / double(n);
          mgx += dy.data()[r * n + i] * g.data()[i] * xh[size_t(i)] / double(n);
        }
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double want = rs * (dy.data()[r * n + i] * g.data()[i] - mg - xh[size_t(i)] * mgx);
          worst = std::max(worst, std::fabs(dx.data()[r * n + i] - want));
          scale = std::max(scale, std::fabs(want));
        }
        INFO("n=", n, " row ", r, " worst ", worst, " scale ", scale);
        CHECK(worst <= 2e-4 * scale);
      }
    }
  }

  TEST_CASE("backward: empty shapes and n = 1") {
    float dg[3] = {1, 1, 1}, db[3] = {1, 1, 1};
    layernorm_backward(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 3, nullptr, dg, db);
    CHECK(dg[2] == 0.f);
    CHECK(db[0] == 0.f);
    // n = 1: x_hat = 0, so dx = 0 and dgamma = 0; dbeta = sum dy.
    float x[2] = {3.f, -4.f}, dy[2] = {0.5f, 2.f}, mean[2] = {3.f, -4.f}, rstd[2] = {316.f, 316.f};
    float dx[2], g1[1] = {2.f};
    layernorm_backward(x, mean, rstd, g1, dy, 2, 1, dx, dg, db);
    CHECK(dx[0] == 0.f);
    CHECK(dx[1] == 0.f);
    CHECK(dg[0] == 0.f);
    CHECK(db[0] == 2.5f);
  }

  TEST_CASE("backward results do not depend on the thread count") {
    for (int64_t rows : {int64_t(300), int64_t(5), int64_t(1)}) {
      const int64_t n = 257 * 300 / rows;
      Tensor x = rand_tensor({rows, n}, 3), g = rand_tensor({n}, 4), dy = rand_tensor({rows, n}, 5);
      Tensor mean({rows}), rstd({rows}), y({rows, n});
      layernorm_forward(x.data(), g.data(), nullptr, rows, n, 1e-5f, y.data(), mean.data(),
                        rstd.data());
      std::vector<float> out[2][3];
      const int old = num_threads();
      for (int t = 1; t <= 2; ++t) {
        set_num_threads(t);
        Tensor dx({rows, n}), dg({n}), db({n});
        layernorm_backward(x.data(), mean.data(), rstd.data(), g.data(), dy.data(), rows, n,
                           dx.data(), dg.data(), db.data());
        out[t - 1][0] = dx.to_vector();
        out[t - 1][1] = dg.to_vector();
        out[t - 1][2] = db.to_vector();
      }
      set_num_threads(old);
      INFO("rows ", rows);
      CHECK(out[0][0] == out[1][0]);
      CHECK(out[0][1] == out[1][1]);
      CHECK(out[0][2] == out[1][2]);
    }
  }

}  // TEST_SUITE

}  // namespace qkv

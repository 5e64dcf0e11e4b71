// LSTM/GRU step kernels: SIMD against the scalar references over hidden sizes
// with tails, with some rows inactive (which must be left untouched).
#include "engine/kernels/rnn_cell.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

std::vector<uint8_t> mask_for(int64_t B) {
  std::vector<uint8_t> m(size_t(B), 1);
  if (B > 1) m[1] = 0;
  return m;
}

TEST_SUITE("engine/rnn_cell") {
  TEST_CASE("lstm step forward and backward vs reference") {
    uint64_t seed = 1;
    for (int64_t B : {1, 3, 5})
      for (int64_t H : test::kSizes) {
        const auto m = mask_for(B);
        Tensor g0 = test::rand_tensor({B, 4 * H}, seed++, -3.f, 3.f);
        Tensor cp = test::rand_tensor({B, H}, seed++);
        Tensor g1 = g0.clone(), g2 = g0.clone();
        Tensor c1 = full({B, H}, 7.f), c2 = full({B, H}, 7.f), h1 = full({B, H}, 7.f),
               h2 = full({B, H}, 7.f);
        lstm_cell_forward(g1.data(), cp.data(), c1.data(), h1.data(), B, H, m.data());
        lstm_cell_forward_ref(g2.data(), cp.data(), c2.data(), h2.data(), B, H, m.data());
        const std::string what = "B=" + std::to_string(B) + " H=" + std::to_string(H);
        test::expect_close(g1, g2, 4e-7, "lstm act " + what);
        test::expect_close(c1, c2, 4e-7, "lstm c " + what);
        test::expect_close(h1, h2, 4e-7, "lstm h " + what);
        if (B > 1) CHECK(h1.at({1, 0}) == 7.f);  // inactive row untouched

        Tensor dh = test::rand_tensor({B, H}, seed++), dc0 = test::rand_tensor({B, H}, seed++);
        Tensor dc1 = dc0.clone(), dc2 = dc0.clone(), dg1 = zeros({B, 4 * H}),
               dg2 = zeros({B, 4 * H});
        lstm_cell_backward(g2.data(), cp.data(), c2.data(), dh.data(), dc1.data(), dg1.data(), B,
                           H, m.data());
        lstm_cell_backward_ref(g2.data(), cp.data(), c2.data(), dh.data(), dc2.data(), dg2.data(),
                               B, H, m.data());
        test::expect_close(dg1, dg2, 1e-6, "lstm dgates " + what);
        test::expect_close(dc1, dc2, 1e-6, "lstm dc " + what);
      }
  }

  TEST_CASE("gru step forward and backward vs reference") {
    uint64_t seed = 100;
    for (int64_t B : {1, 3, 5})
      for (int64_t H : test::kSizes) {
        const auto m = mask_for(B);
        Tensor gx = test::rand_tensor({B, 3 * H}, seed++, -3.f, 3.f),
               gh = test::rand_tensor({B, 3 * H}, seed++, -3.f, 3.f),
               hp = test::rand_tensor({B, H}, seed++);
        Tensor h1 = full({B, H}, 7.f), h2 = full({B, H}, 7.f), a1 = zeros({B, 3 * H}),
               a2 = zeros({B, 3 * H});
        gru_cell_forward(gx.data(), gh.data(), hp.data(), h1.data(), a1.data(), B, H, m.data());
        gru_cell_forward_ref(gx.data(), gh.data(), hp.data(), h2.data(), a2.data(), B, H,
                             m.data());
        const std::string what = "B=" + std::to_string(B) + " H=" + std::to_string(H);
        test::expect_close(h1, h2, 4e-7, "gru h " + what);
        test::expect_close(a1, a2, 4e-7, "gru act " + what);
        if (B > 1) CHECK(h1.at({1, 0}) == 7.f);

        Tensor dh = test::rand_tensor({B, H}, seed++);
        Tensor x1 = zeros({B, 3 * H}), x2 = zeros({B, 3 * H}), y1 = zeros({B, 3 * H}),
               y2 = zeros({B, 3 * H}), p1 = zeros({B, H}), p2 = zeros({B, H});
        gru_cell_backward(a2.data(), gh.data(), hp.data(), dh.data(), x1.data(), y1.data(),
                          p1.data(), B, H, m.data());
        gru_cell_backward_ref(a2.data(), gh.data(), hp.data(), dh.data(), x2.data(), y2.data(),
                              p2.data(), B, H, m.data());
        test::expect_close(x1, x2, 1e-6, "gru dgx " + what);
        test::expect_close(y1, y2, 1e-6, "gru dgh " + what);
        test::expect_close(p1, p2, 1e-6, "gru dh_prev " + what);
      }
  }
}

}  // namespace
}  // namespace qkv

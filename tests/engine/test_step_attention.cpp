// Per-row decoder-step attention: SIMD against the scalar references over
// sizes with tails, padded row strides and masked keys; backward accumulates.
#include <cmath>

#include "engine/kernels/step_attention.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// [B,S] additive mask: row b keeps its first S - (b % 3) keys (at least 1).
Tensor ragged_mask(int64_t B, int64_t S) {
  Tensor m = zeros({B, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = std::max<int64_t>(1, S - b % 3); s < S; ++s) m.data()[b * S + s] = -INFINITY;
  return m;
}

TEST_SUITE("engine/step_attention") {
  TEST_CASE("forward and backward vs reference over sizes with tails") {
    uint64_t seed = 7;
    for (int64_t B : {1, 3})
      for (int64_t S : {1, 2, 7, 17, 30})
        for (int64_t D : {1, 7, 16, 33})
          for (int64_t K : {3, 16, 31})
            for (bool masked : {false, true}) {
              const std::string what = "B=" + std::to_string(B) + " S=" + std::to_string(S) +
                                       " D=" + std::to_string(D) + " K=" + std::to_string(K) +
                                       (masked ? " masked" : "");
              const int64_t ldq = D + 2, ldw = S + 1, ldc = K + 3;  // padded rows
              Tensor q = test::rand_tensor({B, ldq}, seed++),
                     P = test::rand_tensor({B, S, D}, seed++);
              Tensor V = test::rand_tensor({B, S, K}, seed++);
              Tensor mask = masked ? ragged_mask(B, S) : Tensor();
              const float* m = masked ? mask.data() : nullptr;
              const float scale = 0.7f;
              Tensor w1 = full({B, ldw}, 5.f), w2 = full({B, ldw}, 5.f);
              Tensor c1 = full({B, ldc}, 5.f), c2 = full({B, ldc}, 5.f);
              step_attention_forward(B, S, D, K, q.data(), ldq, P.data(), V.data(), m, scale,
                                     w1.data(), ldw, c1.data(), ldc);
              step_attention_forward_ref(B, S, D, K, q.data(), ldq, P.data(), V.data(), m, scale,
                                         w2.data(), ldw, c2.data(), ldc);
              test::expect_close(w1, w2, 1e-6, "weights " + what);
              test::expect_close(c1, c2, test::tol_for(S), "context " + what);
              if (masked && S > 1 && B > 1) CHECK(w1.at({1, S - 1}) == 0.f);  // masked: exactly 0
              CHECK(c1.at({0, K}) == 5.f);  // the padding of a row is not written

              // backward, accumulating onto non-zero gradients
              Tensor dctx = test::rand_tensor({B, ldc}, seed++),
                     dw = test::rand_tensor({B, ldw}, seed++);
              const float* dwp =
                  S % 2 ? dw.data() : nullptr;  // with and without a weights gradient
              Tensor dq0 = test::rand_tensor({B, ldq}, seed++),
                     dP0 = test::rand_tensor({B, S, D}, seed++);
              Tensor dV0 = test::rand_tensor({B, S, K}, seed++);
              Tensor dq1 = dq0.clone(), dq2 = dq0.clone(), dP1 = dP0.clone(), dP2 = dP0.clone(),
                     dV1 = dV0.clone(), dV2 = dV0.clone(), ds1({B, S}), ds2({B, S});
              step_attention_backward(B, S, D, K, q.data(), ldq, P.data(), V.data(), w2.data(), ldw,
                                      dctx.data(), ldc, dwp, ldw, scale, dq1.data(), ldq,
                                      dP1.data(), dV1.data(), ds1.data());
              step_attention_backward_ref(B, S, D, K, q.data(), ldq, P.data(), V.data(), w2.data(),
                                          ldw, dctx.data(), ldc, dwp, ldw, scale, dq2.data(), ldq,
                                          dP2.data(), dV2.data(), ds2.data());
              test::expect_close(dq1, dq2, test::tol_for(S * K), "dq " + what);
              test::expect_close(dP1, dP2, test::tol_for(K), "dP " + what);
              test::expect_close(dV1, dV2, 1e-6, "dV " + what);
            }
  }

  TEST_CASE("weights are the softmax of scaled scores (by hand)") {
    // q = [1, 0], keys P = [[2, 0], [0, 0]], scale 0.5: scores [1, 0].
    const float q[2] = {1.f, 0.f}, P[4] = {2.f, 0.f, 0.f, 0.f}, V[2] = {1.f, 3.f};
    float w[2], ctx[1];
    step_attention_forward(1, 2, 2, 1, q, 2, P, V, nullptr, 0.5f, w, 2, ctx, 1);
    const double e = std::exp(1.0), w0 = e / (e + 1.0);
    CHECK(w[0] == doctest::Approx(w0).epsilon(1e-6));
    CHECK(ctx[0] == doctest::Approx(w0 * 1 + (1 - w0) * 3).epsilon(1e-6));
  }
}

}  // namespace
}  // namespace qkv

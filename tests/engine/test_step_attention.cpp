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

  TEST_CASE("additive score: forward and backward vs reference over sizes with tails") {
    uint64_t seed = 70;
    for (int64_t B : {1, 3})
      for (int64_t S : {1, 2, 7, 30})
        for (int64_t A : {1, 7, 16, 33, 64})
          for (int64_t K : {3, 31})
            for (bool masked : {false, true}) {
              const std::string what = "B=" + std::to_string(B) + " S=" + std::to_string(S) +
                                       " A=" + std::to_string(A) + " K=" + std::to_string(K) +
                                       (masked ? " masked" : "");
              const int64_t ldq = A + 2, ldw = S + 1, ldc = K + 3;  // padded rows
              Tensor qp = test::rand_tensor({B, ldq}, seed++),
                     KP = test::rand_tensor({B, S, A}, seed++);
              Tensor v = test::rand_tensor({A}, seed++), V = test::rand_tensor({B, S, K}, seed++);
              Tensor mask = masked ? ragged_mask(B, S) : Tensor();
              const float* m = masked ? mask.data() : nullptr;
              Tensor w1 = full({B, ldw}, 5.f), w2 = full({B, ldw}, 5.f);
              Tensor c1 = full({B, ldc}, 5.f), c2 = full({B, ldc}, 5.f);
              additive_attention_forward(B, S, A, K, qp.data(), ldq, KP.data(), v.data(),
                                         V.data(), m, w1.data(), ldw, c1.data(), ldc);
              additive_attention_forward_ref(B, S, A, K, qp.data(), ldq, KP.data(), v.data(),
                                             V.data(), m, w2.data(), ldw, c2.data(), ldc);
              test::expect_close(w1, w2, test::tol_for(A), "weights " + what);
              test::expect_close(c1, c2, test::tol_for(S * A), "context " + what);
              if (masked && S > 1 && B > 1) CHECK(w1.at({1, S - 1}) == 0.f);
              CHECK(c1.at({0, K}) == 5.f);

              Tensor dctx = test::rand_tensor({B, ldc}, seed++),
                     dw = test::rand_tensor({B, ldw}, seed++);
              const float* dwp = S % 2 ? dw.data() : nullptr;
              Tensor dq0 = test::rand_tensor({B, ldq}, seed++),
                     dKP0 = test::rand_tensor({B, S, A}, seed++);
              Tensor dV0 = test::rand_tensor({B, S, K}, seed++),
                     dv0 = test::rand_tensor({B, A}, seed++);
              Tensor dq1 = dq0.clone(), dq2 = dq0.clone(), dKP1 = dKP0.clone(),
                     dKP2 = dKP0.clone(), dV1 = dV0.clone(), dV2 = dV0.clone(),
                     dv1 = dv0.clone(), dv2 = dv0.clone(), ds1({B, S}), ds2({B, S});
              additive_attention_backward(B, S, A, K, qp.data(), ldq, KP.data(), v.data(),
                                          V.data(), w2.data(), ldw, dctx.data(), ldc, dwp, ldw,
                                          dq1.data(), ldq, dKP1.data(), dV1.data(), dv1.data(),
                                          ds1.data());
              additive_attention_backward_ref(B, S, A, K, qp.data(), ldq, KP.data(), v.data(),
                                              V.data(), w2.data(), ldw, dctx.data(), ldc, dwp,
                                              ldw, dq2.data(), ldq, dKP2.data(), dV2.data(),
                                              dv2.data(), ds2.data());
              test::expect_close(dq1, dq2, test::tol_for(S * K), "dqp " + what);
              test::expect_close(dKP1, dKP2, test::tol_for(K), "dKP " + what);
              test::expect_close(dV1, dV2, 1e-6, "dV " + what);
              test::expect_close(dv1, dv2, test::tol_for(S * K), "dv " + what);
            }
  }

  TEST_CASE("additive score by hand") {
    // qp = [0.5], keys KP = [[0], [1]], v = [2]: scores 2 tanh(0.5), 2 tanh(1.5).
    const float qp[1] = {0.5f}, KP[2] = {0.f, 1.f}, v[1] = {2.f}, V[2] = {1.f, 3.f};
    float w[2], ctx[1];
    additive_attention_forward(1, 2, 1, 1, qp, 1, KP, v, V, nullptr, w, 2, ctx, 1);
    const double e0 = std::exp(2 * std::tanh(0.5)), e1 = std::exp(2 * std::tanh(1.5));
    CHECK(w[0] == doctest::Approx(e0 / (e0 + e1)).epsilon(1e-6));
    CHECK(ctx[0] == doctest::Approx((e0 + 3 * e1) / (e0 + e1)).epsilon(1e-6));
  }
}

}  // namespace
}  // namespace qkv

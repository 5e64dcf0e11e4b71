// layer_norm as a fused op: finite-difference gradients with and without the
// affine parameters (each on its own too), rank 2 and 3; the fused op against
// the mean/var/rsqrt composite in value and in every input's gradient; a
// PyTorch spot check; errors.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/threads.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;

// The composite oracle: (x - mean) * rsqrt(biased var + eps) * gamma + beta.
Var layer_norm_composite(const Var& x, const Var& gamma, const Var& beta, float eps) {
  Var xc = x - mean(x, {-1}, true);
  Var y = xc * rsqrt(mean(xc * xc, {-1}, true) + eps);
  if (gamma.defined()) y = y * gamma;
  if (beta.defined()) y = y + beta;
  return y;
}

// Affine combinations: bit 0 gamma, bit 1 beta.
std::string affine_name(int a) {
  const char* names[] = {"no affine", "gamma only", "beta only", "gamma and beta"};
  return names[a];
}

}  // namespace

TEST_SUITE("autograd/norm") {
  TEST_CASE("gradcheck: rank 2 and 3, with and without affine") {
    for (int64_t D : {1, 3, 7, 16, 17, 33}) {
      for (Shape s : {Shape{4, D}, Shape{2, 3, D}}) {
        for (int a = 0; a < 4; ++a) {
          Var x(test::rand_tensor(s, uint64_t(D), -3.f, 2.f), true);
          Var g = a & 1 ? Var(test::rand_tensor({D}, uint64_t(D + 1), -2.f, 2.f), true) : Var();
          Var b = a & 2 ? Var(test::rand_tensor({D}, uint64_t(D + 2), -1.f, 1.f), true) : Var();
          std::vector<Var> in{x};
          if (g.defined()) in.push_back(g);
          if (b.defined()) in.push_back(b);
          expect_ok(
              [a](auto& in) {
                size_t k = 1;
                Var gg = a & 1 ? in[k++] : Var();
                Var bb = a & 2 ? in[k++] : Var();
                return layer_norm(in[0], gg, bb);
              },
              in, shape_str(s) + " " + affine_name(a));
        }
      }
    }
  }

  TEST_CASE("gradcheck: only some inputs need a gradient; large eps") {
    Var x(test::rand_tensor({5, 9}, 1, -2.f, 2.f), false);
    Var g(test::rand_tensor({9}, 2), true), b(test::rand_tensor({9}, 3), false);
    expect_ok([](auto& in) { return layer_norm(in[0], in[1], in[2], 0.5f); }, {x, g, b},
              "gamma only needs grad");
    x.set_requires_grad(true);
    g.set_requires_grad(false);
    expect_ok([](auto& in) { return layer_norm(in[0], in[1], in[2], 0.5f); }, {x, g, b},
              "x only needs grad");
    CHECK_FALSE(g.has_grad());
    CHECK_FALSE(b.has_grad());
  }

  TEST_CASE("fused == composite in value and in the gradient of x, gamma and beta") {
    for (int64_t D : test::kSizes)
      for (Shape s : {Shape{6, D}, Shape{2, 3, D}})
        for (int a = 0; a < 4; ++a) {
          Tensor xv = test::rand_tensor(s, uint64_t(D * 7), -3.f, 5.f);
          Tensor gv = test::rand_tensor({D}, uint64_t(D + 1), -2.f, 2.f);
          Tensor bv = test::rand_tensor({D}, uint64_t(D + 2));
          Tensor up = test::rand_tensor(s, uint64_t(D + 3), -2.f, 2.f);
          const float eps = 1e-5f;
          std::vector<Tensor> out, grads[3];
          for (int k = 0; k < 2; ++k) {
            Var x(xv.clone(), true);
            Var g = a & 1 ? Var(gv.clone(), true) : Var();
            Var b = a & 2 ? Var(bv.clone(), true) : Var();
            Var y = k == 0 ? layer_norm(x, g, b, eps) : layer_norm_composite(x, g, b, eps);
            backward(y, up);
            out.push_back(y.value());
            grads[0].push_back(x.grad());
            if (g.defined()) grads[1].push_back(g.grad());
            if (b.defined()) grads[2].push_back(b.grad());
          }
          const std::string w = shape_str(s) + " " + affine_name(a);
          // D = 1: x_hat = 0 exactly in the fused op, rounding noise times
          // rstd = 1/sqrt(eps) in the composite: compare at that scale.
          const double scale = D == 1 ? 1.0 / std::sqrt(eps) : 1.0;
          test::expect_close(out[0], out[1], test::tol_for(D, 1e-6) * scale, w + " value");
          test::expect_close(grads[0][0], grads[0][1], test::tol_for(D, 2e-6) * scale, w + " dx");
          if (a & 1)
            test::expect_close(grads[1][0], grads[1][1], test::tol_for(D, 2e-6) * scale,
                               w + " dgamma");
          if (a & 2) test::expect_close(grads[2][0], grads[2][1], 1e-6, w + " dbeta");
        }
  }

  TEST_CASE("PyTorch agreement on a fixed input") {
    // import torch; F = torch.nn.functional
    // x = torch.tensor([[0.5, -1.25, 2.0, 3.5], [-4.0, 0.0, 0.75, 1.0]], requires_grad=True)
    // g = torch.tensor([1.5, -0.5, 2.0, 0.25], requires_grad=True)
    // b = torch.tensor([0.1, 0.2, -0.3, 0.0], requires_grad=True)
    // y = F.layer_norm(x, (4,), g, b, eps=1e-5)
    // y.backward(torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.25, 1.0, -1.5, 2.0]]))
    Var x(Tensor::from({2, 4}, {0.5f, -1.25f, 2.f, 3.5f, -4.f, 0.f, 0.75f, 1.f}), true);
    Var g(Tensor::from({4}, {1.5f, -0.5f, 2.f, 0.25f}), true);
    Var b(Tensor::from({4}, {0.1f, 0.2f, -0.3f, 0.f}), true);
    Var y = layer_norm(x, g, b, 1e-5f);
    backward(y, Tensor::from({2, 4}, {1.f, -2.f, 0.5f, 3.f, 0.25f, 1.f, -1.5f, 2.f}));
    const Tensor want_y =
        Tensor::from({2, 4}, {-0.48519375920295715f, 0.8915926218032837f, 0.6221234202384949f,
                              0.32806316018104553f, -2.45453143119812f, 0.06066194176673889f,
                              1.0004887580871582f, 0.19352510571479797f});
    const Tensor want_dx =
        Tensor::from({2, 4}, {0.21931111812591553f, -0.1381174921989441f, -0.0012493133544921875f,
                              -0.07994449138641357f, 0.016982436180114746f, 0.15823394060134888f,
                              -0.9725615382194519f, 0.7973451614379883f});
    const Tensor want_dg = Tensor::from(
        {4}, {-0.8158844113349915f, 3.04504656791687f, -0.7448356747627258f, 5.484958648681641f});
    const Tensor want_db = Tensor::from({4}, {1.25f, -1.f, -1.f, 5.f});
    test::expect_close(y.value(), want_y, 1e-6, "torch y");
    test::expect_close(x.grad(), want_dx, 1e-6, "torch dx");
    test::expect_close(g.grad(), want_dg, 1e-6, "torch dgamma");
    test::expect_close(b.grad(), want_db, 1e-6, "torch dbeta");
  }

  TEST_CASE("gamma and beta gradients do not depend on the thread count") {
    Tensor xv = test::rand_tensor({300, 257}, 3), up = test::rand_tensor({300, 257}, 4);
    std::vector<float> r[2][3];
    const int old = num_threads();
    for (int t = 1; t <= 2; ++t) {
      set_num_threads(t);
      Var x(xv, true), g(test::rand_tensor({257}, 5), true), b(test::rand_tensor({257}, 6), true);
      backward(layer_norm(x, g, b), up);
      r[t - 1][0] = x.grad().to_vector();
      r[t - 1][1] = g.grad().to_vector();
      r[t - 1][2] = b.grad().to_vector();
    }
    set_num_threads(old);
    for (int k = 0; k < 3; ++k) CHECK(r[0][k] == r[1][k]);
  }

  TEST_CASE("errors name layer_norm and the expected shape") {
    Var x(test::rand_tensor({2, 8}, 1), true);
    CHECK(test::error_of([&] { layer_norm(x, Var(test::rand_tensor({5}, 2)), Var()); }) ==
          "layer_norm: gamma has shape [5], expected [8] (last axis of [2,8])");
    CHECK(test::error_of([&] {
            layer_norm(x, Var(), Var(test::rand_tensor({1, 8}, 2)));
          }) == "layer_norm: beta has shape [1,8], expected [8] (last axis of [2,8])");
    CHECK(test::error_of([&] { layer_norm(Var(Tensor::scalar(1.f)), Var(), Var()); }) ==
          "layer_norm: expected at least 1 dimension, got shape []");
    CHECK(test::error_of([&] { layer_norm(x, Var(), Var(), -1.f); }).find("layer_norm: eps") == 0);
    tape_clear();
  }
}

}  // namespace qkv

// Losses: finite-difference gradients of cross_entropy (ignored rows, label
// smoothing, every reduction, rank 2 and 3, logits up to +-20), nll_loss,
// mse_loss and bce_with_logits; the fused cross_entropy against
// nll_loss(log_softmax(x)) and against the label-smoothing composite, in value
// and gradient; PyTorch values hard-coded with the script that made them;
// target validation and shape errors.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

using Fn = test::GradFn;
using test::expect_ok;
using test::rv;
constexpr int32_t kIgnore = -100;
const Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

std::string red_name(Reduction r) {
  return r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "none";
}

// Class ids for target shape s over C classes; every 3rd position ignored.
IntTensor targets(Shape s, int64_t C, uint64_t seed) {
  IntTensor t(std::move(s));
  Generator g(seed);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = i % 3 == 2 ? kIgnore : int32_t(g.next_below(uint64_t(C)));
  return t;
}

// The label-smoothing composite over logp = log_softmax(x):
//   (1 - ls) * nll_loss(logp) + ls * reduce(mean_c(-logp) * keep)
// with keep = 0 on ignored rows, and reduce = mean over the kept rows, sum, or none.
Var smoothed_composite(const Var& x, const IntTensor& t, float ls, Reduction red) {
  Var logp = log_softmax(x);
  Var nll = nll_loss(logp, t, kIgnore, red);
  Tensor keep(t.shape());
  int64_t count = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    keep.data()[i] = t.data()[i] == kIgnore ? 0.f : 1.f;
    count += t.data()[i] != kIgnore;
  }
  Var smooth = -mean(logp, {-1}) * Var(keep);  // [...]
  if (red == Reduction::sum) smooth = sum(smooth);
  if (red == Reduction::mean) smooth = sum(smooth) / float(count);
  return nll * (1.f - ls) + smooth * ls;
}

// Value and gradient of d x under upstream `up` (or 1 for a scalar).
std::pair<Tensor, Tensor> run(const std::function<Var(const Var&)>& f, const Tensor& x,
                              uint64_t seed) {
  Var v(x.clone(), true);
  Var y = f(v);
  backward(y, y.numel() == 1 && y.dim() == 0 ? Tensor::scalar(0.75f)
                                             : test::rand_tensor(y.shape(), seed, -2.f, 2.f));
  return {y.value(), v.grad()};
}

void expect_same(const std::function<Var(const Var&)>& fused,
                 const std::function<Var(const Var&)>& composite, const Tensor& x, uint64_t seed,
                 double tol, const std::string& what) {
  auto [y1, g1] = run(fused, x, seed);
  auto [y2, g2] = run(composite, x, seed);
  test::expect_close(y1, y2, tol, what + " value");
  test::expect_close(g1, g2, tol, what + " gradient");
}

}  // namespace

TEST_SUITE("autograd/loss") {
  // ---- cross_entropy ----------------------------------------------------------------

  TEST_CASE("cross_entropy gradcheck: ignored rows, smoothing, reductions, rank 2 and 3") {
    for (int64_t C : {1, 3, 7, 16, 17, 33})
      for (Shape s : {Shape{6, C}, Shape{2, 3, C}})
        for (float ls : {0.f, 0.1f})
          for (Reduction red : kReductions) {
            const Shape ts(s.begin(), s.end() - 1);
            IntTensor t = targets(ts, C, uint64_t(C));
            Var x(test::rand_tensor(s, uint64_t(C + 1), -4.f, 4.f), true);
            expect_ok([t, ls, red](auto& in) { return cross_entropy(in[0], t, kIgnore, ls, red); },
                      {x}, shape_str(s) + " ls " + std::to_string(ls) + " " + red_name(red));
          }
  }

  TEST_CASE("cross_entropy gradcheck: logits up to +-20") {
    for (int64_t C : {3, 17, 33}) {
      IntTensor t = targets({5}, C, uint64_t(C + 3));
      Var x(test::rand_tensor({5, C}, uint64_t(C + 4), -20.f, 20.f), true);
      for (float ls : {0.f, 0.2f})
        expect_ok([t, ls](auto& in) { return cross_entropy(in[0], t, kIgnore, ls); }, {x},
                  "+-20 C=" + std::to_string(C));
    }
  }

  TEST_CASE("cross_entropy == nll_loss(log_softmax(x)) and the smoothing composite") {
    for (int64_t C : test::kSizes)
      for (Shape s : {Shape{7, C}, Shape{2, 3, C}})
        for (Reduction red : kReductions) {
          const Shape ts(s.begin(), s.end() - 1);
          IntTensor t = targets(ts, C, uint64_t(C * 5));
          Tensor x = test::rand_tensor(s, uint64_t(C * 7), -20.f, 20.f);
          const std::string w = shape_str(s) + " " + red_name(red);
          expect_same([&](const Var& v) { return cross_entropy(v, t, kIgnore, 0.f, red); },
                      [&](const Var& v) { return nll_loss(log_softmax(v), t, kIgnore, red); }, x,
                      uint64_t(C), test::tol_for(C, 1e-6), "nll(log_softmax) " + w);
          for (float ls : {0.1f, 0.5f})
            expect_same([&](const Var& v) { return cross_entropy(v, t, kIgnore, ls, red); },
                        [&](const Var& v) { return smoothed_composite(v, t, ls, red); }, x,
                        uint64_t(C), test::tol_for(C, 1e-6),
                        "smoothing " + std::to_string(ls) + " " + w);
        }
  }

  TEST_CASE("cross_entropy agrees with PyTorch (ignore_index, label_smoothing = 0.1)") {
    // import torch; F = torch.nn.functional
    // x = torch.tensor([[1.5, -0.5, 3.0, 0.25, -2.0], [0.0, 20.0, -20.0, 1.0, 2.0],
    //                   [-1.0, 0.5, 2.5, -3.5, 4.0], [12.0, -7.0, 0.0, 11.5, 3.0]],
    //                  requires_grad=True)
    // t = torch.tensor([2, -100, 4, 0])
    // for red in ['mean', 'sum', 'none']:
    //     x.grad = None
    //     l = F.cross_entropy(x, t, ignore_index=-100, label_smoothing=0.1, reduction=red)
    //     l.backward(torch.ones_like(l) if red != 'none' else torch.tensor([1., 2., -1., .5]))
    //     print(red, l.tolist(), x.grad.tolist())
    const Tensor x =
        Tensor::from({4, 5}, {1.5f, -0.5f, 3.f,  0.25f, -2.f, 0.f,  20.f, -20.f, 1.f,   2.f,
                              -1.f, 0.5f,  2.5f, -3.5f, 4.f,  12.f, -7.f, 0.f,   11.5f, 3.f});
    const IntTensor t = IntTensor::from({4}, {2, -100, 4, 0});
    const std::vector<float> grad_sum = {0.14852812886238098f,
                                         0.002807802055031061f,
                                         -0.16470925509929657f,
                                         0.028284117579460144f,
                                         -0.014910890720784664f,
                                         0.f,
                                         0.f,
                                         0.f,
                                         0.f,
                                         0.f,
                                         -0.014655047096312046f,
                                         0.0039544184692204f,
                                         0.15700051188468933f,
                                         -0.01956125907599926f,
                                         -0.12673865258693695f,
                                         -0.2975909113883972f,
                                         -0.019999995827674866f,
                                         -0.019996175542473793f,
                                         0.35751017928123474f,
                                         -0.019923187792301178f};
    struct Case {
      Reduction red;
      std::vector<float> loss;
      std::vector<float> grad;
      Tensor up;
    };
    std::vector<float> grad_mean(grad_sum), grad_none(grad_sum);
    for (float& g : grad_mean) g /= 3.f;  // torch's mean grads: the sum's / 3 kept rows
    const float up_none[4] = {1.f, 2.f, -1.f, 0.5f};
    for (int64_t i = 0; i < 20; ++i) grad_none[size_t(i)] *= up_none[i / 5];
    const Case cases[] = {
        {Reduction::mean, {0.8004708290100098f}, grad_mean, Tensor::scalar(1.f)},
        {Reduction::sum, {2.4014124870300293f}, grad_sum, Tensor::scalar(1.f)},
        {Reduction::none,
         {0.5356524586677551f, 0.f, 0.5816025137901306f, 1.284157633781433f},
         grad_none,
         Tensor::from({4}, {1.f, 2.f, -1.f, 0.5f})},
    };
    // torch printed (mean): [[0.04950937, 0.00093593, -0.05490310, 0.00942804, -0.00497030], ...]
    // (none) rows scaled by the upstream: [[0.14852813, ...], [0...], [0.01465505, ...],
    // [-0.14879546, -0.00999999, -0.00999809, 0.17875509, -0.00996159]]: the same numbers.
    for (const Case& c : cases) {
      Var v(x.clone(), true);
      Var l = cross_entropy(v, t, -100, 0.1f, c.red);
      backward(l, c.up);
      test::expect_close(l.value().data(), c.loss.data(), int64_t(c.loss.size()), 1e-6,
                         "torch loss " + red_name(c.red));
      test::expect_close(v.grad().data(), c.grad.data(), 20, 1e-6, "torch grad " + red_name(c.red));
    }
    CHECK(grad_mean[0] == doctest::Approx(0.04950937256217003));  // the printed mean grads
    CHECK(grad_none[15] == doctest::Approx(-0.1487954556941986));
  }

  TEST_CASE("cross_entropy: all rows ignored gives NaN (mean) or 0 (sum) and zero gradients") {
    // torch: F.cross_entropy(x, torch.tensor([-100, -100])) -> nan, x.grad = 0
    Tensor xv = test::rand_tensor({2, 3}, 1);
    IntTensor t = IntTensor::from({2}, {kIgnore, kIgnore});
    for (Reduction red : kReductions) {
      Var x(xv.clone(), true);
      Var l = cross_entropy(x, t, kIgnore, 0.1f, red);
      if (red == Reduction::mean) CHECK(std::isnan(l.item()));
      if (red == Reduction::sum) CHECK(l.item() == 0.f);
      backward(l, Tensor::full(l.shape(), 1.f));
      for (float g : x.grad().to_vector()) CHECK(g == 0.f);
    }
  }

  TEST_CASE("cross_entropy: the unbatched form [C] with a scalar target; custom ignore_index") {
    Var x(Tensor::from({3}, {0.f, std::log(3.f), -1.f}), true);
    Var l = cross_entropy(x, IntTensor::scalar(1), 7);
    const double z = 1 + 3 + std::exp(-1.0);
    CHECK(l.item() == doctest::Approx(std::log(z / 3)));
    backward(l);
    CHECK(x.grad().at({1}) == doctest::Approx(3 / z - 1));
    Var x2(test::rand_tensor({3, 4}, 2), true);
    Var l2 = cross_entropy(x2, IntTensor::from({3}, {7, 1, 7}), 7, 0.f, Reduction::none);
    CHECK(l2.value().at({0}) == 0.f);
    CHECK(l2.value().at({1}) > 0.f);
  }

  TEST_CASE("target validation and shape errors name the op, the id and its position") {
    Var x(test::rand_tensor({2, 3, 5}, 1), true);
    IntTensor t = IntTensor::from({2, 3}, {0, 1, 2, 3, 5, -100});
    CHECK(test::error_of([&] { cross_entropy(x, t); }) ==
          "cross_entropy: target 5 at [1,1] out of range [0,5) and not ignore_index (-100)");
    t.at({1, 1}) = -1;
    CHECK(test::error_of([&] { nll_loss(x, t); }) ==
          "nll_loss: target -1 at [1,1] out of range [0,5) and not ignore_index (-100)");
    CHECK(test::error_of([&] {
            cross_entropy(x, IntTensor::from({2}, {0, 1}));
          }) ==
          "cross_entropy: target has shape [2], expected [2,3] (input [2,3,5] without its class "
          "axis)");
    CHECK(test::error_of([&] { cross_entropy(x, t, -1, 1.f); }) ==
          "cross_entropy: label_smoothing must be in [0, 1), got 1");
    CHECK(test::error_of([&] {
            cross_entropy(Var(Tensor::scalar(1.f)), IntTensor::scalar(0));
          }).find("cross_entropy: expected input of shape [..., C]") == 0);
    Var a(test::rand_tensor({2, 3}, 1)), b(test::rand_tensor({3, 2}, 2));
    CHECK(test::error_of([&] { mse_loss(a, b); }) ==
          "mse_loss: pred has shape [2,3], target has shape [3,2] (they must match)");
    CHECK(test::error_of([&] { bce_with_logits(a, b); }) ==
          "bce_with_logits: logits have shape [2,3], target has shape [3,2] (they must match)");
    tape_clear();
  }

  // ---- nll_loss, mse_loss, bce_with_logits ----------------------------------------------

  TEST_CASE("nll_loss gradcheck and values (PyTorch)") {
    for (Reduction red : kReductions) {
      IntTensor t = targets({2, 4}, 5, 3);
      Var lp(test::rand_tensor({2, 4, 5}, 4, -4.f, 0.f), true);
      expect_ok([t, red](auto& in) { return nll_loss(in[0], t, kIgnore, red); }, {lp},
                "nll " + red_name(red));
    }
    // lp = torch.tensor([[-0.5, -1.0, -2.5], [-0.1, -3.0, -4.0]], requires_grad=True)
    // F.nll_loss(lp, torch.tensor([1, 2]), reduction='sum') -> 5.0; grad -1 at the targets
    Var lp(Tensor::from({2, 3}, {-0.5f, -1.f, -2.5f, -0.1f, -3.f, -4.f}), true);
    Var l = nll_loss(lp, IntTensor::from({2}, {1, 2}), kIgnore, Reduction::sum);
    CHECK(l.item() == 5.f);
    backward(l);
    CHECK(lp.grad().to_vector() == std::vector<float>{0, -1, 0, 0, 0, -1});
  }

  TEST_CASE("mse_loss gradcheck (both inputs) and values (PyTorch)") {
    for (Reduction red : kReductions) {
      Var p(test::rand_tensor({3, 7}, 5, -3.f, 3.f), true), q(test::rand_tensor({3, 7}, 6), true);
      expect_ok([red](auto& in) { return mse_loss(in[0], in[1], red); }, {p, q},
                "mse " + red_name(red));
    }
    // p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True); q = torch.tensor([0.5, 1.0, 0.5])
    // F.mse_loss(p, q) -> 3.0833332538604736; p.grad = [0.33333334, -2.0, 0.0]
    Var p(Tensor::from({3}, {1.f, -2.f, 0.5f}), true);
    Var l = mse_loss(p, Var(Tensor::from({3}, {0.5f, 1.f, 0.5f})));
    CHECK(l.item() == doctest::Approx(3.0833332538604736).epsilon(1e-6));
    backward(l);
    test::expect_close(p.grad(), Tensor::from({3}, {0.3333333432674408f, -2.f, 0.f}), 1e-6,
                       "mse grad");
    // The composite: mean((p - q)^2).
    Tensor pv = test::rand_tensor({4, 9}, 7), qv = test::rand_tensor({4, 9}, 8);
    expect_same([&](const Var& v) { return mse_loss(v, Var(qv)); },
                [&](const Var& v) {
                  Var d = v - Var(qv);
                  return mean(d * d);
                },
                pv, 1, 1e-6, "mse vs composite");
  }

  TEST_CASE("bce_with_logits gradcheck (both inputs), stability, values (PyTorch)") {
    for (Reduction red : kReductions) {
      Var x(test::rand_tensor({4, 6}, 9, -6.f, 6.f), true),
          y(test::rand_tensor({4, 6}, 10, 0.f, 1.f), true);
      expect_ok([red](auto& in) { return bce_with_logits(in[0], in[1], red); }, {x, y},
                "bce " + red_name(red));
    }
    // x = torch.tensor([-100.0, -2.5, 0.3, 4.0, 100.0], requires_grad=True)
    // y = torch.tensor([0.0, 1.0, 0.25, 1.0, 0.0], requires_grad=True)
    // l = F.binary_cross_entropy_with_logits(x, y); l.backward()
    //   -> 20.67527961730957; x.grad, y.grad below
    // F.binary_cross_entropy_with_logits(x, y, reduction='none') -> values below
    Var x(Tensor::from({5}, {-100.f, -2.5f, 0.3f, 4.f, 100.f}), true);
    Var y(Tensor::from({5}, {0.f, 1.f, 0.25f, 1.f, 0.f}), true);
    Var l = bce_with_logits(x, y);
    CHECK(l.item() == doctest::Approx(20.67527961730957).epsilon(1e-6));
    backward(l);
    test::expect_close(x.grad(),
                       Tensor::from({5}, {0.f, -0.18482837080955505f, 0.06488849967718124f,
                                          -0.0035972476471215487f, 0.20000000298023224f}),
                       1e-6, "bce dx");
    test::expect_close(y.grad(), Tensor::from({5}, {20.f, 0.5f, -0.06f, -0.8f, -20.f}), 1e-6,
                       "bce dy");
    Var ln = bce_with_logits(x, y, Reduction::none);
    test::expect_close(ln.value(),
                       Tensor::from({5}, {0.f, 2.578889846801758f, 0.7793552875518799f,
                                          0.018149960786104202f, 100.f}),
                       1e-6, "bce none");
    tape_clear();
  }
}

}  // namespace qkv

// `qkv bench lstm`: a one-layer LSTM over a time-major batch, forward alone
// (no gradients recorded) and forward+backward (gradients of every weight),
// at the two sizes of the classic seq2seq and classifier experiments.
// Napkin math: the GEMMs do 2*T*B*4H*(I+H) FLOPs forward and twice that
// backward; the gate kernels and the per-step dependency chain are overhead
// on top. Checked first against the cell-by-cell composite (lstm_layer_ref).
#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "engine/rng.h"
#include "nn/rnn.h"

namespace qkv::bench {
namespace {

struct Case {
  int64_t B, T, I, H;
};

std::string case_name(const Case& c) {
  std::ostringstream o;
  o << "B" << c.B << " T" << c.T << " I" << c.I << " H" << c.H;
  return o.str();
}

// Fused vs reference: outputs, and the gradient of weight_hh under the same upstream.
void verify_case(LSTM& lstm, const Tensor& x, const Tensor& up, const std::string& name) {
  const auto& w = lstm.weights()[0];
  const int64_t B = x.size(1), H = lstm.options.hidden_size;
  Var h0(Tensor::zeros({B, H})), c0(Tensor::zeros({B, H}));
  auto ref = lstm_layer_ref(Var(x), h0, c0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, nullptr, false);
  backward(ref[0], up);
  Tensor ref_dwhh = w.w_hh.grad().clone();
  lstm.zero_grad();
  RNNOutput out = lstm.forward(Var(x));
  backward(out.output, up);
  // Errors grow with the T-step recurrence: a relative 1e-4 on values of order 1.
  verify("lstm " + name + " output", out.output.value().data(), ref[0].value().data(),
         long(ref[0].numel()), 1e-4);
  verify("lstm " + name + " dW_hh", w.w_hh.grad().data(), ref_dwhh.data(), long(ref_dwhh.numel()),
         1e-3);
  lstm.zero_grad();
}

}  // namespace

std::vector<Result> suite_lstm(const Options& opt) {
  std::vector<Case> cases = {{64, 50, 128, 256}, {32, 100, 256, 512}};
  if (opt.quick) cases = {{4, 5, 8, 16}};
  std::vector<Result> out;
  for (const Case& c : cases) {
    Generator g(11);
    LSTM lstm({c.I, c.H}, g);
    Tensor x = uniform({c.T, c.B, c.I}, -1.f, 1.f, g);
    Tensor up = uniform({c.T, c.B, c.H}, -1.f, 1.f, g);
    const std::string name = case_name(c);
    verify_case(lstm, x, up, name);
    const double fwd_flops = 2.0 * c.T * c.B * 4 * c.H * double(c.I + c.H);

    auto fwd = [&] {
      NoGrad ng;
      RNNOutput o = lstm.forward(Var(x));
    };
    auto fwd_bwd = [&] {
      RNNOutput o = lstm.forward(Var(x));
      backward(o.output, up);
      lstm.zero_grad();
    };
    for (auto [label, fn, flops] : {std::tuple{"fwd", std::function<void()>(fwd), fwd_flops},
                                    std::tuple{"fwd+bwd", std::function<void()>(fwd_bwd),
                                               3 * fwd_flops}}) {
      Result r;
      r.suite = "lstm";
      r.name = name + " " + label;
      r.threads = opt.threads;
      r.ms = median_ms(fn, opt);
      r.gflops = flops / (r.ms * 1e6);
      report(opt, r);
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace qkv::bench

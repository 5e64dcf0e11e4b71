// `qkv bench conv` and `qkv bench cbam`: a 3x3 convolution B64 C64->64 28x28
// (pad 1, no bias), forward alone and forward + backward into the weight
// (the input needs no gradient, as a first layer), and the same conv followed
// by CBAM (ratio 16, 7x7 spatial kernel), forward and forward + backward.
// Checked first: the conv's first image against the direct double loops, and
// CBAM's output against x * channel map * spatial map with both maps in (0,1).
// FLOPs count the conv only: 2*B*O*H*W*C*9 forward (3.7 GFLOP), 2x that for
// the weight and input gradients, so fwd+bwd = 3x forward.
// `conv` also times the second conv of a small Fashion-MNIST CNN (B128
// C32->64 14x14, 0.92 GFLOP forward): 196 outputs per image, where one GEMM
// per image is too small to run near peak.
#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "engine/kernels/conv.h"
#include "engine/rng.h"
#include "nn/cbam.h"
#include "nn/conv.h"

namespace qkv::bench {
namespace {

struct Dims {
  int64_t B, C, H, W, O;
};

Dims dims_for(const Options& opt) {
  return opt.quick ? Dims{2, 16, 8, 8, 16} : Dims{64, 64, 28, 28, 64};
}
Dims small_dims_for(const Options& opt) {
  return opt.quick ? Dims{3, 8, 6, 6, 16} : Dims{128, 32, 14, 14, 64};
}

std::string dims_name(const Dims& d) {
  std::ostringstream s;
  s << "B" << d.B << " C" << d.C << "->" << d.O << " " << d.H << "x" << d.W;
  return s.str();
}

std::shared_ptr<Conv2d> make_conv(const Dims& d, Generator& g) {
  Conv2dOptions o;
  o.in_channels = d.C;
  o.out_channels = d.O;
  o.pad_h = o.pad_w = 1;
  o.bias = false;
  return std::make_shared<Conv2d>(o, g);
}

void verify_conv(const Conv2d& conv, const Tensor& x, const Tensor& y) {
  const Tensor x0 = x.narrow_rows(0, 1);
  const Tensor want = conv2d_forward_ref(x0, conv.weight.value(), Tensor(), {1, 1, 1, 1, 1, 1, 1});
  verify("conv3x3 forward", y.data(), want.data(), long(want.numel()), 1e-4);
}

Result timed(const Options& opt, const std::string& suite, const std::string& name, double flops,
             const std::function<void()>& fn) {
  Result r{suite, name, opt.threads, 0, 0, 0, -1};
  r.ms = median_ms(fn, opt);
  r.gflops = flops / (r.ms * 1e6);
  report(opt, r);
  return r;
}

}  // namespace

std::vector<Result> suite_conv(const Options& opt) {
  std::vector<Result> out;
  for (const Dims& d : {dims_for(opt), small_dims_for(opt)}) {
    Generator g(21);
    auto conv = make_conv(d, g);
    const Tensor x = uniform({d.B, d.C, d.H, d.W}, -1.f, 1.f, g);
    const Tensor up = uniform({d.B, d.O, d.H, d.W}, -1.f, 1.f, g);
    {
      NoGrad ng;
      verify_conv(*conv, x, conv->forward(Var(x)).value());
    }
    const double flops = 2.0 * double(d.B * d.C * d.H * d.W * d.O * 9);
    out.push_back(timed(opt, "conv", "conv3x3 fwd " + dims_name(d), flops, [&] {
      NoGrad ng;
      conv->forward(Var(x));
    }));
    out.push_back(timed(opt, "conv", "conv3x3 fwd+bwd " + dims_name(d), 3 * flops, [&] {
      Var xv(x, true);
      backward(conv->forward(xv), up);
      conv->zero_grad();
    }));
  }
  return out;
}

std::vector<Result> suite_cbam(const Options& opt) {
  const Dims d = dims_for(opt);
  Generator g(22);
  auto conv = make_conv(d, g);
  CBAM cbam(d.C, 16, 7, g);
  const Tensor x = uniform({d.B, d.C, d.H, d.W}, -1.f, 1.f, g);
  const Tensor up = uniform({d.B, d.C, d.H, d.W}, -1.f, 1.f, g);
  {
    NoGrad ng;
    const Var c = conv->forward(Var(x));
    const Var y = cbam.forward(c);
    verify_conv(*conv, x, c.value());
    const Tensor& cm = cbam.last_channel_map().value();
    const Tensor& sm = cbam.last_spatial_map().value();
    for (const Tensor* t : {&cm, &sm})
      for (float v : *t) check(v > 0.f && v < 1.f, "bench cbam: a map value ", v, " outside (0,1)");
    const int64_t HW = d.H * d.W;
    Tensor want(c.shape());
    for (int64_t i = 0; i < want.numel(); ++i) {
      const int64_t b = i / (d.C * HW), ch = (i / HW) % d.C, p = i % HW;
      want.data()[i] = c.value().data()[i] * cm.data()[b * d.C + ch] * sm.data()[b * HW + p];
    }
    verify("cbam output", y.value().data(), want.data(), long(want.numel()), 1e-5);
  }
  const double flops = 2.0 * double(d.B * d.C * d.H * d.W * d.C * 9);
  std::vector<Result> out;
  out.push_back(timed(opt, "cbam", "conv3x3+cbam fwd " + dims_name(d), flops, [&] {
    NoGrad ng;
    cbam.forward(conv->forward(Var(x)));
  }));
  out.push_back(timed(opt, "cbam", "conv3x3+cbam fwd+bwd " + dims_name(d), 3 * flops, [&] {
    Var xv(x, true);
    backward(cbam.forward(conv->forward(xv)), up);
    conv->zero_grad();
    cbam.zero_grad();
  }));
  return out;
}

}  // namespace qkv::bench

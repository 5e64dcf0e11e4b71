// `qkv bench transformer`: one TransformerEncoderLayer (post-norm, relu,
// dropout 0, batch-first) at B32 T128 D256 NH8 FF1024, forward (no gradients)
// and forward + backward of sum(out * R). Checked first: the layer's output
// against the same layer computed from composite ops (matmul, softmax,
// layer_norm) on the same parameters.
// FLOPs per token: QKV 6D^2, out-projection 2D^2, FF 4 D FF, scores and PV
// 4 T D: forward = B T (8D^2 + 4 D FF + 4 T D); backward about twice that.
#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "engine/rng.h"
#include "nn/transformer.h"

namespace qkv::bench {
namespace {

// The layer's maths from primitives: the oracle of the fused path.
Tensor encoder_layer_ref(TransformerEncoderLayer& l, const Var& x) {
  NoGrad ng;
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), NH = l.options.nhead, HD = D / NH;
  MultiheadAttention& a = *l.self_attn;
  Var qkv = matmul(x, a.in_proj_weight, false, true) + a.in_proj_bias;  // [B,T,3D]
  auto head = [&](int i) {
    return permute(reshape(slice(qkv, 2, i * D, (i + 1) * D), {B, T, NH, HD}), {0, 2, 1, 3});
  };
  Var w = softmax(matmul(head(0), head(1), false, true) * (1.f / std::sqrt(float(HD))));
  Var o = reshape(permute(matmul(w, head(2)), {0, 2, 1, 3}), {B, T, D});
  Var h = layer_norm(x + a.out_proj->forward(o), l.norm1->weight, l.norm1->bias);
  Var f = l.linear2->forward(relu(l.linear1->forward(h)));
  return layer_norm(h + f, l.norm2->weight, l.norm2->bias).value();
}

}  // namespace

std::vector<Result> suite_transformer(const Options& opt) {
  const int64_t B = opt.quick ? 2 : 32, T = opt.quick ? 8 : 128, D = opt.quick ? 16 : 256,
                NH = opt.quick ? 2 : 8, FF = opt.quick ? 32 : 1024;
  Generator g(21);
  TransformerLayerOptions o;
  o.d_model = D, o.nhead = NH, o.dim_feedforward = FF, o.dropout = 0.f, o.batch_first = true;
  TransformerEncoderLayer layer(o, g);
  Var x(uniform({B, T, D}, -1.f, 1.f, g), true);
  Tensor up = uniform({B, T, D}, -1.f, 1.f, g);
  {
    NoGrad ng;
    Tensor got = layer.forward(x).value(), want = encoder_layer_ref(layer, x);
    verify("transformer encoder_layer", got.data(), want.data(), got.numel(), 1e-4);
  }
  std::ostringstream ds;
  ds << "B" << B << " T" << T << " D" << D << " NH" << NH << " FF" << FF;
  const std::string dims = ds.str();
  const double flops = double(B) * T * (8.0 * D * D + 4.0 * D * FF + 4.0 * T * D);
  std::vector<Result> out;
  Result f{"transformer", "encoder_layer " + dims + " fwd", opt.threads, 0, 0, 0, -1};
  f.ms = median_ms([&] { NoGrad ng; layer.forward(x); }, opt);
  f.gflops = flops / (f.ms * 1e6);
  report(opt, f);
  out.push_back(f);
  Result fb{"transformer", "encoder_layer " + dims + " fwd+bwd", opt.threads, 0, 0, 0, -1};
  fb.ms = median_ms([&] {
    backward(layer.forward(x), up);
    layer.zero_grad();
    x.zero_grad();
  }, opt);
  fb.gflops = 3.0 * flops / (fb.ms * 1e6);
  report(opt, fb);
  out.push_back(fb);
  return out;
}

}  // namespace qkv::bench

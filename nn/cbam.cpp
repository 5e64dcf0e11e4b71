#include "nn/cbam.h"

#include "autograd/ops.h"
#include "nn/activation.h"

namespace qkv {

namespace {
std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, bool bias, Generator& gen) {
  Conv2dOptions o;
  o.in_channels = in, o.out_channels = out, o.kernel_h = o.kernel_w = k;
  o.pad_h = o.pad_w = k / 2;
  o.bias = bias;
  return std::make_shared<Conv2d>(o, gen);
}
}  // namespace

// ---- ChannelAttention ---------------------------------------------------------------------
ChannelAttention::ChannelAttention(int64_t c, int64_t r, Generator& gen) : channels(c), ratio(r) {
  check(c >= 1 && r >= 1 && c / r >= 1, "ChannelAttention: need channels >= ratio >= 1, got ",
        c, " channels and ratio ", r);
  fc = register_module("fc", std::make_shared<Sequential>());
  fc->push_back(conv(c, c / r, 1, false, gen));
  fc->push_back(std::make_shared<Activation>(UnaryOp::relu));
  fc->push_back(conv(c / r, c, 1, false, gen));
}

Var ChannelAttention::forward(const Var& x) {
  check(x.dim() == 4 && x.size(1) == channels, "ChannelAttention: expected x of shape [B,",
        channels, ",H,W], got ", x.shape());
  const int64_t B = x.size(0);
  // The shared MLP runs once on [avg; max] stacked along the batch: [2B,C,1,1].
  Var both = fc->forward(concat({adaptive_avg_pool2d(x, 1, 1), adaptive_max_pool2d(x, 1, 1)}, 0));
  return sigmoid(slice(both, 0, 0, B) + slice(both, 0, B, 2 * B));
}

std::string ChannelAttention::describe() const {
  return "ChannelAttention(channels=" + std::to_string(channels) + ", ratio=" + std::to_string(ratio) + ")";
}

// ---- SpatialAttention ---------------------------------------------------------------------
SpatialAttention::SpatialAttention(int64_t k, Generator& gen) : kernel_size(k) {
  check(k == 3 || k == 7, "SpatialAttention: kernel_size must be 3 or 7, got ", k);
  conv1 = register_module("conv1", conv(2, 1, k, false, gen));
}

Var SpatialAttention::forward(const Var& x) {
  check(x.dim() == 4, "SpatialAttention: expected x of shape [B,C,IH,IW], got ", x.shape());
  return map_from_pooled(channel_pool(x));
}

Var SpatialAttention::map_from_pooled(const Var& pooled) {
  return sigmoid(conv1->forward(pooled));  // [B,2,H,W] = [mean, max] -> [B,1,IH,IW]
}

std::string SpatialAttention::describe() const {
  return "SpatialAttention(kernel_size=" + std::to_string(kernel_size) + ")";
}

// ---- CBAM -----------------------------------------------------------------------------------
CBAM::CBAM(int64_t c, int64_t r, int64_t k, Generator& gen) {
  ca = register_module("ca", std::make_shared<ChannelAttention>(c, r, gen));
  sa = register_module("sa", std::make_shared<SpatialAttention>(k, gen));
}

Var CBAM::forward(const Var& x) {
  // y = x * channel map; out = y * sa(y), without writing y out: the spatial
  // branch pools x * map over channels in one pass, and the gate op applies
  // both maps (and differentiates through both) in one pass each way.
  channel_map_ = ca->forward(x);                                         // [B,C,1,1]
  spatial_map_ = sa->map_from_pooled(channel_pool_scaled(x, channel_map_));  // [B,1,IH,IW]
  return gate(x, channel_map_, spatial_map_);
}

std::string CBAM::describe() const {
  return "CBAM(channels=" + std::to_string(ca->channels) + ", ratio=" + std::to_string(ca->ratio) +
         ", kernel_size=" + std::to_string(sa->kernel_size) + ")";
}

// ---- SqueezeExcitation -----------------------------------------------------------------------
SqueezeExcitation::SqueezeExcitation(int64_t c, int64_t r, Generator& gen)
    : channels(c), squeeze(r >= 1 ? c / r : 0) {
  check(c >= 1 && r >= 1 && squeeze >= 1, "SqueezeExcitation: need channels >= reduction >= 1, got ",
        c, " channels and reduction ", r);
  fc1 = register_module("fc1", conv(c, squeeze, 1, true, gen));
  fc2 = register_module("fc2", conv(squeeze, c, 1, true, gen));
}

Var SqueezeExcitation::forward(const Var& x) {
  map_ = sigmoid(fc2->forward(relu(fc1->forward(adaptive_avg_pool2d(x, 1, 1)))));
  return x * map_;
}

std::string SqueezeExcitation::describe() const {
  return "SqueezeExcitation(channels=" + std::to_string(channels) +
         ", squeeze_channels=" + std::to_string(squeeze) + ")";
}

}  // namespace qkv

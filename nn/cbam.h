// CBAM (Woo et al., ECCV 2018) in the widely used PyTorch form, with its
// parameter names, and squeeze-and-excitation for comparison. NCHW, C channels.
//   ChannelAttention: sigmoid(fc(avgpool(x)) + fc(maxpool(x))) -> [B,C,1,1],
//     fc = Sequential(Conv2d(C, C/r, 1, bias=False), ReLU, Conv2d(C/r, C, 1, bias=False))
//     ("fc.0.weight", "fc.2.weight"); both descriptors go through fc as one
//     [2B,C,1,1] batch.
//   SpatialAttention: sigmoid(conv1(cat[mean_c x, max_c x])) -> [B,1,IH,IW],
//     conv1 = Conv2d(2, 1, k, padding=k/2, bias=False) ("conv1.weight"), k = 7 or 3.
//   CBAM: y = x * ca(x); out = y * sa(y) ("ca.*", "sa.*"), computed by the
//     fused gate ops (autograd/ops.h), which never materialise y.
//   SqueezeExcitation (torchvision's): x * sigmoid(fc2(relu(fc1(avgpool(x)))))
//     with 1x1 convs with bias ("fc1.*", "fc2.*"), squeeze channels C/r.
// ChannelAttention and SpatialAttention return the map (as the reference
// code); CBAM and SqueezeExcitation return the gated features and keep the
// last maps for inspection.
#pragma once
#include <memory>

#include "nn/conv.h"
#include "nn/sequential.h"

namespace qkv {

class Generator;

// The JSON options of channel_attention (channels, ratio), spatial_attention
// (kernel_size) and cbam (all three).
struct CbamOptions {
  int64_t channels = 0;     // C
  int64_t ratio = 16;       // channel reduction: C/ratio hidden channels
  int64_t kernel_size = 7;  // spatial conv, 3 or 7
};
struct SqueezeExcitationOptions {
  int64_t channels = 0;    // C
  int64_t reduction = 16;  // C/reduction squeeze channels
};

class ChannelAttention : public UnaryModule {
 public:
  ChannelAttention(int64_t channels, int64_t ratio, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> map [B,C,1,1] in (0,1)
  std::string describe() const override;
  int64_t channels, ratio;
  std::shared_ptr<Sequential> fc;
};

class SpatialAttention : public UnaryModule {
 public:
  SpatialAttention(int64_t kernel_size, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> map [B,1,IH,IW] in (0,1)
  // The map from the channel-pooled input [B,2,H,W] = [mean_c x, max_c x].
  Var map_from_pooled(const Var& pooled);
  std::string describe() const override;
  int64_t kernel_size;
  std::shared_ptr<Conv2d> conv1;
};

class CBAM : public UnaryModule {
 public:
  CBAM(int64_t channels, int64_t ratio, int64_t kernel_size, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> same shape
  std::string describe() const override;
  const Var& last_channel_map() const { return channel_map_; }  // [B,C,1,1]
  const Var& last_spatial_map() const { return spatial_map_; }  // [B,1,IH,IW]
  std::shared_ptr<ChannelAttention> ca;
  std::shared_ptr<SpatialAttention> sa;

 private:
  Var channel_map_, spatial_map_;
};

class SqueezeExcitation : public UnaryModule {
 public:
  SqueezeExcitation(int64_t channels, int64_t reduction, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> same shape
  std::string describe() const override;
  const Var& last_channel_map() const { return map_; }  // [B,C,1,1]
  int64_t channels, squeeze;
  std::shared_ptr<Conv2d> fc1, fc2;

 private:
  Var map_;
};

}  // namespace qkv

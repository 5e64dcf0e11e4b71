// The ResNet basic block (He et al. 2016) with torchvision's names, and an
// optional CBAM before the residual add (as in the CBAM paper):
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) [-> cbam] + shortcut(x))
// conv1: 3x3 stride s, conv2: 3x3, both without bias; shortcut = identity, or
// downsample = Sequential(Conv2d 1x1 stride s without bias, BatchNorm2d) when
// the stride or the channel count changes ("downsample.0", "downsample.1").
#pragma once
#include <memory>

#include "nn/batchnorm.h"
#include "nn/cbam.h"
#include "nn/conv.h"
#include "nn/sequential.h"

namespace qkv {

class Generator;

struct BasicBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t stride = 1;
  bool cbam = false;
  int64_t ratio = CbamOptions{}.ratio;              // CBAM channel reduction
  int64_t kernel_size = CbamOptions{}.kernel_size;  // CBAM spatial kernel
};

class BasicBlock : public UnaryModule {
 public:
  BasicBlock(const BasicBlockOptions& opt, Generator& gen);
  Var forward(const Var& x) override;  // x: [B,in,H,W] -> [B,out,H/s,W/s]
  std::string describe() const override;

  BasicBlockOptions options;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<CBAM> cbam;              // null without CBAM
  std::shared_ptr<Sequential> downsample;  // null for the identity shortcut
};

}  // namespace qkv

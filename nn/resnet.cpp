#include "nn/resnet.h"

#include "autograd/ops.h"

namespace qkv {

namespace {
std::shared_ptr<Conv2d> conv_nobias(int64_t in, int64_t out, int64_t k, int64_t stride,
                                    Generator& gen) {
  Conv2dOptions o;
  o.in_channels = in, o.out_channels = out, o.kernel_h = o.kernel_w = k;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = k / 2;
  o.bias = false;
  return std::make_shared<Conv2d>(o, gen);
}
std::shared_ptr<BatchNorm2d> bn(int64_t c) {
  BatchNorm2dOptions o;
  o.num_features = c;
  return std::make_shared<BatchNorm2d>(o);
}
}  // namespace

BasicBlock::BasicBlock(const BasicBlockOptions& o, Generator& gen) : options(o) {
  check(o.in_channels >= 1 && o.out_channels >= 1 && o.stride >= 1,
        "BasicBlock: in_channels, out_channels and stride must be >= 1, got ", o.in_channels, ", ",
        o.out_channels, ", ", o.stride);
  conv1 = register_module("conv1", conv_nobias(o.in_channels, o.out_channels, 3, o.stride, gen));
  bn1 = register_module("bn1", bn(o.out_channels));
  conv2 = register_module("conv2", conv_nobias(o.out_channels, o.out_channels, 3, 1, gen));
  bn2 = register_module("bn2", bn(o.out_channels));
  if (o.cbam)
    cbam = register_module("cbam",
                           std::make_shared<CBAM>(o.out_channels, o.ratio, o.kernel_size, gen));
  if (o.stride != 1 || o.in_channels != o.out_channels) {
    downsample = register_module("downsample", std::make_shared<Sequential>());
    downsample->push_back(conv_nobias(o.in_channels, o.out_channels, 1, o.stride, gen));
    downsample->push_back(bn(o.out_channels));
  }
}

Var BasicBlock::forward(const Var& x) {
  Var out = relu(bn1->forward(conv1->forward(x)));
  out = bn2->forward(conv2->forward(out));
  if (cbam) out = cbam->forward(out);
  return relu(out + (downsample ? downsample->forward(x) : x));
}

std::string BasicBlock::describe() const {
  return "BasicBlock(" + std::to_string(options.in_channels) + ", " +
         std::to_string(options.out_channels) + ", stride=" + std::to_string(options.stride) +
         ", cbam=" + (options.cbam ? "true" : "false") + ")";
}

}  // namespace qkv

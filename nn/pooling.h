// Pooling and flattening modules with torch.nn's names and defaults (no
// parameters): MaxPool2d / AvgPool2d (stride defaults to the kernel size,
// padding 0, count_include_pad), AdaptiveAvgPool2d / AdaptiveMaxPool2d (output
// size; 1x1 is global pooling), Flatten (start_dim 1, end_dim -1).
#pragma once
#include "nn/module.h"

namespace qkv {

struct Pool2dOptions {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 0, stride_w = 0;  // 0: the kernel size (torch's stride=None)
  int64_t pad_h = 0, pad_w = 0;
};

class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(const Pool2dOptions& opt);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> [B,C,OH,OW]
  std::string describe() const override;
  Pool2dOptions options;
};

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(const Pool2dOptions& opt);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> [B,C,OH,OW]
  std::string describe() const override;
  Pool2dOptions options;
};

struct AdaptivePool2dOptions {
  int64_t out_h = 1, out_w = 1;  // 1x1: global pooling
};

class AdaptiveAvgPool2d : public UnaryModule {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> [B,C,out_h,out_w]
  std::string describe() const override;
  int64_t out_h, out_w;
};

class AdaptiveMaxPool2d : public UnaryModule {
 public:
  AdaptiveMaxPool2d(int64_t out_h, int64_t out_w);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> [B,C,out_h,out_w]
  std::string describe() const override;
  int64_t out_h, out_w;
};

struct FlattenOptions {
  int64_t start_dim = 1, end_dim = -1;
};

class Flatten : public UnaryModule {
 public:
  explicit Flatten(int64_t start_dim = FlattenOptions{}.start_dim,
                   int64_t end_dim = FlattenOptions{}.end_dim);
  Var forward(const Var& x) override;  // [d0, ..., dn] -> axes start..end merged
  std::string describe() const override;
  int64_t start_dim, end_dim;
};

}  // namespace qkv

// BatchNorm2d: torch.nn.BatchNorm2d's parameters (weight = 1, bias = 0) and
// buffers (running_mean = 0, running_var = 1, num_batches_tracked = 0), with
// momentum and eps. Training normalises with the batch's statistics and
// updates the running ones (unbiased variance, as torch); eval uses the
// running ones. num_batches_tracked is an integer buffer (int32 here, saved
// as I64 like torch's), so a torch state_dict loads strictly.
// In a data-parallel run (engine/collective.h: a process group installed) the
// training statistics are synchronised over the ranks (the global batch's).
// Not here: momentum=None (cumulative average), track_running_stats=False.
#pragma once
#include "nn/module.h"

namespace qkv {

struct BatchNorm2dOptions {
  int64_t num_features = 0;
  float eps = 1e-5f;
  float momentum = 0.1f;
  bool affine = true;
};

class BatchNorm2d : public UnaryModule {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& opt);
  Var forward(const Var& x) override;  // x: [B,C,IH,IW] -> same
  std::string describe() const override;

  BatchNorm2dOptions options;
  Var weight, bias;                                  // [C] (undefined without affine)
  Tensor running_mean, running_var;  // [C]
  IntTensor num_batches_tracked;     // []
};

}  // namespace qkv

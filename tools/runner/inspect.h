// `qkv inspect`: a model summary (the module tree with parameter counts per
// module) and, for an experiment config, a FLOPs-per-training-step estimate:
// 6 x (weights used per token) x (tokens per step) -- 2 for the forward
// multiply-add, 4 for the backward (Kaplan et al. 2020) -- plus the attention
// scores and contexts; image classifiers run one image through their layers.
// Embedding lookups cost nothing here. Each model counts its own
// (Model::flops_per_step); this file only picks the batch.
#pragma once
#include <string>

#include "nn/module.h"
#include "tools/runner/experiment.h"

namespace qkv::runner {

// The estimate for one training step of ex (0 when unknown); `how` explains it.
double flops_per_step(const Experiment& ex, std::string* how = nullptr);

// The text `qkv inspect` prints for an experiment, or for a bare module.
std::string inspect_text(const Experiment& ex);
std::string inspect_text(const Module& m);

}  // namespace qkv::runner

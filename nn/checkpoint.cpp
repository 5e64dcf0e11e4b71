#include "nn/checkpoint.h"

#include "nn/optim.h"
#include "nn/safetensors.h"

namespace qkv {
namespace {
constexpr const char* kOptimPrefix = "optim.";
bool is_optim(const std::string& name) { return name.rfind(kOptimPrefix, 0) == 0; }
}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* opt,
                     const std::map<std::string, std::string>& metadata) {
  TensorFile f;
  f.floats = model.state_dict();
  f.ints = model.int_state_dict();  // saved as I64, as torch saves its counters
  for (const auto& [n, _] : f.ints) f.i64.insert(n);
  for (const auto& [n, _] : f.floats)
    check(!is_optim(n), "save_checkpoint: model tensor '", n, "' collides with the optimizer's names");
  f.metadata = metadata;
  if (opt) {
    for (const auto& [n, t] : opt->state(kOptimPrefix)) f.floats[n] = t;
    for (const auto& [k, v] : opt->state_metadata(kOptimPrefix)) f.metadata[k] = v;
  }
  save_safetensors(path, f);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model,
                                                   Optimizer* opt) {
  return load_checkpoint(load_safetensors(path), path, model, opt);
}

std::map<std::string, std::string> load_checkpoint(const TensorFile& f, const std::string& path,
                                                   Module& model, Optimizer* opt) {
  std::map<std::string, Tensor> model_tensors;
  std::map<std::string, IntTensor> model_ints;
  for (const auto& [n, t] : f.floats)
    if (!is_optim(n)) model_tensors[n] = t;
  for (const auto& [n, t] : f.ints)
    if (!is_optim(n)) model_ints[n] = t;
  try {
    model.load_state_dict(model_tensors, model_ints, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (opt) {
    check(f.metadata.count(std::string(kOptimPrefix) + "optimizer"), path,
          ": the checkpoint holds no optimizer state (saved without one?)");
    opt->load_state(f.floats, f.metadata, kOptimPrefix);
  }
  return f.metadata;
}

}  // namespace qkv

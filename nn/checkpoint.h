// Checkpoints: one safetensors file holding the model's parameters and
// buffers under their PyTorch names, the optimizer's state under "optim."
// (moments, step counts, hyper-parameters), and free-form metadata (the
// resolved config, the epoch, the RNG state...). Written atomically: a crash
// mid-write leaves the previous checkpoint intact.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace qkv {

class Optimizer;
struct TensorFile;

// opt may be null (a model-only checkpoint, as torch.save(model.state_dict())).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* opt,
                     const std::map<std::string, std::string>& metadata = {});

// Loads the model strictly (missing, unexpected or mis-shaped tensors are an
// Error naming them; the optimizer's "optim." entries are not "unexpected"),
// then the optimizer if given (Error if the file has no optimizer state).
// Returns the file's metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model,
                                                   Optimizer* opt = nullptr);
// The same from a file already read (parse_safetensors); what names it in messages.
std::map<std::string, std::string> load_checkpoint(const TensorFile& f, const std::string& what,
                                                   Module& model, Optimizer* opt = nullptr);

}  // namespace qkv

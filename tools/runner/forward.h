// `qkv forward`: one module built from JSON, run on named input tensors, its
// outputs written to a safetensors file; with grad, also the gradients of
// L = sum over outputs of sum(output * upstream) with respect to every input
// ("grad.<input>") and every parameter (its PyTorch name). Upstreams come from
// the input file: "grad_output" for "output", "grad_<name>" for the others
// (an output without an upstream contributes nothing).
//
// Inputs and outputs by module kind:
//   any UnaryModule           input                      -> output
//   lstm / gru                input [, h0, c0, lengths]  -> output, h_n [, c_n]
//   multihead_attention       query [, key, value, key_lengths] -> output, weights
// The module runs in eval mode (no dropout), as a PyTorch reference would.
#pragma once
#include <cstdint>
#include <string>

namespace qkv::runner {

struct ForwardOptions {
  std::string module_json;  // MODULE.json
  std::string weights;      // W.safetensors (strict, by PyTorch name); "" = the module's init
  std::string input;        // X.safetensors
  std::string output;       // Y.safetensors
  bool grad = false;
  uint64_t seed = 0;  // initialisation when no weights are given
};

// Throws qkv::Error naming the file or tensor that is wrong.
void run_forward(const ForwardOptions& opt);

}  // namespace qkv::runner

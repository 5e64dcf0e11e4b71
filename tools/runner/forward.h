// `qkv forward`: one module built from JSON, run on named input tensors, its
// outputs written to a safetensors file; with grad, also the gradients of
// L = sum over outputs of sum(output * upstream) with respect to every float
// input ("grad.<input>") and every parameter (its PyTorch name). Upstreams come
// from the input file as "grad_<output>" ("grad_output", "grad_h_n", ...); an
// output without one contributes nothing. A tensor in the input file that the
// module does not read, or an upstream that matches no output, is an Error.
//
// Inputs and outputs (Module::forward_named; the names of PyTorch's forward
// arguments; ids, lengths and flags are integer tensors, I64 or I32):
//   any one-tensor module      input -> output   (linear, activations, dropout,
//                              layer_norm, sequential, conv2d, pools, batch_norm2d,
//                              flatten, channel/spatial_attention, cbam, se, basic_block)
//   embedding                  input (ids) -> output
//   lstm / gru                 input [, h0, c0, lengths] -> output, h_n [, c_n]
//   lstm_cell / gru_cell       input [, hx, cx] -> h_1 [, c_1]
//   attention (classic)        query, keys [, values, lengths] -> context, weights
//   multihead_attention        query [, key, value, key_padding_mask, is_causal,
//                              average_attn_weights] -> output, weights
//   transformer_encoder_layer, transformer_encoder
//                              src [, src_key_padding_mask, is_causal] -> output
//   transformer_decoder_layer  tgt, memory [, tgt_key_padding_mask,
//                              memory_key_padding_mask, tgt_is_causal] -> output
//   seq2seq, transformer       src, src_len, tgt (ids; tgt = bos + target[:-1])
//                              -> logits, attention ([B,T,S]; no gradient)
//   transformer_lm             input (ids) -> logits (causal)
//   attn_classifier            input (ids), lengths -> logits, weights
// Where qkv differs from PyTorch's arguments: a key padding mask is given as
// lengths [B] (keys s >= lengths[b] are padding; PyTorch's boolean [B,S] mask
// with True = pad, as a prefix), and a causal mask as a flag (a one-element
// tensor: is_causal = 1 stands for PyTorch's -inf upper-triangle attn_mask);
// RNN lengths stand for pack_padded_sequence(enforce_sorted=False). The whole
// models (seq2seq, transformer, transformer_lm, attn_classifier) have no
// PyTorch module: their reference is the twin in tests/fixtures/make_forward.py.
// The module runs in eval mode (dropout is the identity, batch norm uses its
// running statistics), as a PyTorch reference in eval() would.
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

// MultiheadAttention: torch.nn.MultiheadAttention's layout, names and maths.
//   q = x_q W_q^T + b_q, k = x_k W_k^T + b_k, v = x_v W_v^T + b_v   split into NH heads of HD = D/NH
//   o_h = softmax(q_h k_h^T / sqrt(HD) + mask) v_h (fused SDPA, attention dropout), out = [o_1..o_NH] W_o^T + b_o
// Parameters: "in_proj_weight" [3D,D] (rows W_q; W_k; W_v) when kdim == vdim == D, else
// "q_proj_weight" [D,D], "k_proj_weight" [D,kdim], "v_proj_weight" [D,vdim]; "in_proj_bias" [3D];
// "out_proj.weight" [D,D], "out_proj.bias" [D]. Self-attention (query, key and value the same Var)
// projects q, k, v with one GEMM against the packed [3D,D] weight.
// Not here: add_bias_kv, add_zero_attn, boolean masks (pass lengths, causal or an additive mask).
//
// Legend: B batch, T query length, S key length, D embed_dim, NH heads, HD head size, K decode rows.
#pragma once
#include <memory>
#include <string>

#include "nn/linear.h"
#include "nn/module.h"

namespace qkv {

class Generator;

struct MultiheadAttentionOptions {
  int64_t embed_dim = 0;     // D
  int64_t num_heads = 1;     // NH, divides D
  float dropout = 0.f;       // on the attention weights, in training only
  bool bias = true;          // in_proj_bias and out_proj.bias
  int64_t kdim = 0;          // key input size (0: D)
  int64_t vdim = 0;          // value input size (0: D)
  bool batch_first = false;  // [B,T,D] (else [T,B,D], PyTorch's default)
};

// What hides keys from queries; any combination.
struct AttentionMasks {
  const IntTensor* key_lengths = nullptr;  // [B]: keys >= length masked (PyTorch key_padding_mask)
  Tensor attn_mask;                        // additive: [T,S], [B*NH,T,S] or broadcastable to [B,NH,T,S]
  bool causal = false;  // query t sees keys <= t + S - T (bottom-right, as PyTorch)
};

struct MultiheadAttentionOutput {
  Var output;   // as the query: [B,T,D] (batch_first) or [T,B,D]
  Var weights;  // [B,NH,T,S], or [B,T,S] averaged over heads; undefined unless need_weights
};

// Projected keys and values of a decoder: [K,NH,cap,HD], the first len positions valid.
struct KVCache {
  Tensor k, v;
  int64_t len = 0;
  void select_rows(const IntTensor& rows);  // rows: [K'] -> keeps those rows, in that order
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(const MultiheadAttentionOptions& opt, Generator& gen);

  // query: [B,T,D], key: [B,S,kdim], value: [B,S,vdim] (or time-first without batch_first).
  MultiheadAttentionOutput forward(const Var& query, const Var& key, const Var& value,
                                   const AttentionMasks& masks = {}, bool need_weights = true,
                                   bool average_attn_weights = true);
  // The same, always batch-first (the Transformer layers call this).
  MultiheadAttentionOutput attend(const Var& query, const Var& key, const Var& value,
                                  const AttentionMasks& masks, bool need_weights,
                                  bool average_attn_weights = true);

  // ---- incremental decoding (under NoGrad) ----
  // x: [K,D], one new query step per row. Appends its k, v to `cache`, attends over the
  // cache (causal by construction) -> [K,D].
  Tensor step_self(const Tensor& x, KVCache& cache);
  // memory: [K,S,kdim] -> its projected keys and values, computed once per source.
  KVCache project_memory(const Tensor& memory);
  // x: [K,D] against a projected memory; key_lengths: [K] or null; weights (if not null)
  // receives the per-head attention [K,NH,S] -> [K,D].
  Tensor step_cross(const Tensor& x, const KVCache& mem, const IntTensor* key_lengths,
                    Tensor* weights);

  std::string describe() const override;
  // Named forward (nn/forward_io.h): query, key, value, key_padding_mask, is_causal -> output, weights.
  NamedOutputs forward_named(NamedInputs& in) override;

  MultiheadAttentionOptions options;
  Var in_proj_weight;                              // [3D,D] (packed) or undefined
  Var q_proj_weight, k_proj_weight, v_proj_weight;  // separate when kdim/vdim != D
  Var in_proj_bias;                                // [3D] or undefined
  std::shared_ptr<Linear> out_proj;                // D -> D

 private:
  int64_t head_dim() const { return options.embed_dim / options.num_heads; }
  // Rows [r0, r0+D) of the packed projection (or the separate weight) and bias.
  Var proj_weight(int which) const;
  Var proj_bias(int which) const;
  // x: [..., in] -> [..., D] for projection 0 (q), 1 (k) or 2 (v).
  Var project(const Var& x, int which) const;
  // Attention over cached keys for one query per row: q [K,NH,HD] -> o [K,NH,HD].
  void attend_cached(const float* q, const KVCache& c, const IntTensor* key_lengths, float* o,
                     float* w) const;

  Generator* gen_;
};

}  // namespace qkv

// Classic attention: one module for every score function of the RNN era
// (dot, scaled dot, Luong general and concat, Bahdanau additive), built only
// from autograd primitives, so gradients come for free.
//
// Shapes: B batch, S source (key) length, T query steps, Dq / Dk / Dv query,
// key and value sizes, A the hidden size of concat/additive.
//   scores  dot:        q . k                         [B,T,S]
//           scaled_dot: q . k / sqrt(Dk)
//           general:    q . (W k)                      W = Linear(Dk -> Dq)
//           concat:     v^T tanh(W [q; k])             W = Linear(Dq+Dk -> A), v = Linear(A -> 1)
//           additive:   v^T tanh(W q + U k)            W = Linear(Dq -> A), U = Linear(Dk -> A)
//   weights = softmax(scores + mask), context = weights @ values.
// The query-independent half of a score (W k, U k, the k column block of the
// concat W) is computed once per source sequence by prepare(); a decoder then
// calls forward() once per step (query [B,Dq]) or once for all steps ([B,T,Dq]).
// Not here: multi-head attention, dropout on the weights, causal masks.
#pragma once
#include <memory>
#include <string>

#include "nn/linear.h"
#include "nn/module.h"

namespace qkv {

class Generator;

enum class Score { dot, scaled_dot, general, concat, additive };
// "dot", "scaled_dot", "general", "concat", "additive"; an Error lists the valid names.
Score score_from_name(const std::string& name);
const char* score_name(Score s);

struct AttentionOptions {
  Score score = Score::dot;
  int64_t query_size = 0;  // Dq
  int64_t key_size = 0;    // Dk (dot/scaled_dot need Dq == Dk)
  int64_t attn_size = 0;   // hidden size A of concat/additive (0: key_size)
  bool bias = false;       // biases in the projections (never in v)
};

// The query-independent part of the scores, computed once per sequence (not
// once per decoder step).
struct AttentionKeys {
  Var keys;     // [B,S,Dk]
  Var proj;     // general: keys W^T [B,S,Dq]; concat: keys W_k^T (+ W.bias) [B,S,A];
                // additive: U keys [B,S,A]; dot/scaled_dot: undefined
  Tensor mask;  // [B,S] additive mask: 0 where valid, -inf where padded (undefined: no padding)
};

struct AttentionResult {
  Var context;  // [B,Dv] for a [B,Dq] query, [B,T,Dv] for [B,T,Dq]
  Var weights;  // [B,S] or [B,T,S]; exactly 0 at padded keys
};

// The additive length mask: [B,S], 0 for s < lengths[b], -inf after.
// lengths: [B] in [1,S]; a length of 0 (nothing to attend to) is an Error
// naming `op` and the row.
Tensor attention_mask(const IntTensor& lengths, int64_t B, int64_t S, const char* op);

class Attention : public Module {
 public:
  Attention(const AttentionOptions& opt, Generator& gen);
  // keys: [B,S,Dk]; lengths: [B] in [1,S] or null. A length of 0 (a fully
  // masked row) is an Error.
  AttentionKeys prepare(const Var& keys, const IntTensor* lengths) const;
  // query: [B,Dq] (one decoder step) or [B,T,Dq] (all steps at once);
  // values: [B,S,Dv].
  AttentionResult forward(const Var& query, const AttentionKeys& keys, const Var& values) const;
  std::string describe() const override;
  // Named forward (nn/forward_io.h): query, keys, values, lengths -> context, weights.
  NamedOutputs forward_named(NamedInputs& in) override;

  AttentionOptions options;
  // Submodules (PyTorch names "W.weight", "U.bias", "v.weight"); null when the
  // score has none: general {W}, concat {W, v}, additive {W, U, v}.
  std::shared_ptr<Linear> W, U, v;
};

}  // namespace qkv

// Attention scores as compositions of autograd ops (see attention.h).
// Shapes: B batch, S keys, T query steps, A hidden size of concat/additive.
#include "nn/attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "engine/rng.h"

namespace qkv {

namespace {

constexpr const char* kScoreNames[] = {"dot", "scaled_dot", "general", "concat", "additive"};
static_assert(std::size(kScoreNames) == size_t(Score::additive) + 1);

bool has_hidden(Score s) { return s == Score::concat || s == Score::additive; }

// v^T tanh(qp + kp): qp [B,T,A], kp [B,S,A] -> scores [B,T,S]. The [B,T,S,A]
// broadcast sum is the one large intermediate (what torch's reference builds too).
Var hidden_scores(const Var& qp, const Var& kp, Linear& v) {
  const int64_t B = qp.size(0), T = qp.size(1), S = kp.size(1), A = qp.size(2);
  Var h = tanh(reshape(qp, {B, T, 1, A}) + reshape(kp, {B, 1, S, A}));  // [B,T,S,A]
  return reshape(v.forward(h), {B, T, S});                              // [B,T,S,1] -> [B,T,S]
}

}  // namespace

Score score_from_name(const std::string& name) {
  for (size_t i = 0; i < std::size(kScoreNames); ++i)
    if (name == kScoreNames[i]) return Score(i);
  fail("attention: unknown score \"", name,
       "\" (valid: dot, scaled_dot, general, concat, additive)");
}

const char* score_name(Score s) {
  const size_t i = size_t(s);
  check(i < std::size(kScoreNames), "attention: invalid Score value ", int(i));
  return kScoreNames[i];
}

Tensor attention_mask(const IntTensor& lengths, int64_t B, int64_t S, const char* op) {
  check(lengths.dim() == 1 && lengths.size(0) == B, op, ": lengths must be [B] = [", B,
        "], got ", lengths.shape());
  Tensor mask = zeros({B, S});
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths.data()[b];
    check(len >= 1 && len <= S, op, ": lengths[", b, "] = ", len, " outside [1,", S, "]",
          len == 0 ? " (a fully masked row has nothing to attend to)" : "");
    for (int64_t s = len; s < S; ++s) mask.data()[b * S + s] = neg_inf;
  }
  return mask;
}

// ---- Attention --------------------------------------------------------------------------

Attention::Attention(const AttentionOptions& opt, Generator& gen) : options(opt) {
  const char* name = score_name(opt.score);
  check(opt.query_size >= 1 && opt.key_size >= 1, "Attention(", name,
        "): query_size and key_size must be >= 1, got ", opt.query_size, " and ", opt.key_size);
  check(opt.attn_size >= 0, "Attention(", name, "): attn_size must be >= 0, got ", opt.attn_size);
  if (opt.score == Score::dot || opt.score == Score::scaled_dot)
    check(opt.query_size == opt.key_size, "Attention(", name,
          "): needs query_size == key_size, got ", opt.query_size, " and ", opt.key_size);
  const int64_t Dq = opt.query_size, Dk = opt.key_size;
  const int64_t A = opt.attn_size > 0 ? opt.attn_size : Dk;
  switch (opt.score) {
    case Score::dot:
    case Score::scaled_dot:
      break;
    case Score::general:
      W = register_module("W", std::make_shared<Linear>(LinearOptions{Dk, Dq, opt.bias}, gen));
      break;
    case Score::concat:
      W = register_module("W", std::make_shared<Linear>(LinearOptions{Dq + Dk, A, opt.bias}, gen));
      v = register_module("v", std::make_shared<Linear>(LinearOptions{A, 1, false}, gen));
      break;
    case Score::additive:
      W = register_module("W", std::make_shared<Linear>(LinearOptions{Dq, A, opt.bias}, gen));
      U = register_module("U", std::make_shared<Linear>(LinearOptions{Dk, A, opt.bias}, gen));
      v = register_module("v", std::make_shared<Linear>(LinearOptions{A, 1, false}, gen));
      break;
  }
}

// keys: [B,S,Dk] -> {keys, proj, mask}
AttentionKeys Attention::prepare(const Var& keys, const IntTensor* lengths) const {
  const char* name = score_name(options.score);
  check(keys.defined() && keys.dim() == 3 && keys.size(2) == options.key_size, "Attention(",
        name, ").prepare: keys must be [B,S,Dk] with Dk=", options.key_size, ", got ",
        keys.defined() ? keys.shape() : Shape{});
  check(keys.size(0) >= 1 && keys.size(1) >= 1, "Attention(", name,
        ").prepare: keys must be non-empty, got ", keys.shape());
  AttentionKeys k;
  k.keys = keys;
  if (lengths) k.mask = attention_mask(*lengths, keys.size(0), keys.size(1), "Attention.prepare");
  switch (options.score) {
    case Score::dot:
    case Score::scaled_dot:
      break;
    case Score::general:   // W k: [B,S,Dq]
      k.proj = W->forward(keys);
      break;
    case Score::concat: {  // W [q; k] = W_q q + W_k k: the k column block (and bias) here
      const int64_t Dq = options.query_size;
      Var w_k = slice(W->weight, 1, Dq, Dq + options.key_size);  // [A,Dk]
      k.proj = matmul(keys, w_k, false, true);                    // [B,S,A]
      if (W->bias.defined()) k.proj = k.proj + W->bias;
      break;
    }
    case Score::additive:  // U k: [B,S,A]
      k.proj = U->forward(keys);
      break;
  }
  return k;
}

// query: [B,Dq] or [B,T,Dq]; values: [B,S,Dv] -> context [B,(T,)Dv], weights [B,(T,)S]
AttentionResult Attention::forward(const Var& query, const AttentionKeys& keys,
                                   const Var& values) const {
  const char* name = score_name(options.score);
  check(keys.keys.defined(), "Attention(", name, "): keys not prepared (call prepare first)");
  const int64_t B = keys.keys.size(0), S = keys.keys.size(1), Dq = options.query_size;
  check(query.defined() && (query.dim() == 2 || query.dim() == 3) && query.size(0) == B &&
            query.size(-1) == Dq,
        "Attention(", name, "): query must be [B,Dq] or [B,T,Dq] with B=", B, ", Dq=", Dq,
        ", got ", query.defined() ? query.shape() : Shape{});
  check(values.defined() && values.dim() == 3 && values.size(0) == B && values.size(1) == S,
        "Attention(", name, "): values must be [B,S,Dv] with B=", B, ", S=", S, ", got ",
        values.defined() ? values.shape() : Shape{});
  check(options.score == Score::dot || options.score == Score::scaled_dot ||
            (keys.proj.defined() && keys.proj.dim() == 3 && keys.proj.size(0) == B &&
             keys.proj.size(1) == S),
        "Attention(", name, "): keys.proj missing (prepare with this module)");
  const bool step = query.dim() == 2;
  Var q = step ? reshape(query, {B, 1, Dq}) : query;  // [B,T,Dq]

  Var scores;  // [B,T,S]
  switch (options.score) {
    case Score::dot:
      scores = matmul(q, keys.keys, false, true);
      break;
    case Score::scaled_dot:
      scores = matmul(q, keys.keys, false, true) * (1.f / std::sqrt(float(options.key_size)));
      break;
    case Score::general:
      scores = matmul(q, keys.proj, false, true);
      break;
    case Score::concat: {
      Var w_q = slice(W->weight, 1, 0, Dq);                   // [A,Dq]
      scores = hidden_scores(matmul(q, w_q, false, true), keys.proj, *v);
      break;
    }
    case Score::additive:
      scores = hidden_scores(W->forward(q), keys.proj, *v);
      break;
  }
  if (keys.mask.defined()) {
    check(keys.mask.shape() == Shape{B, S}, "Attention(", name, "): mask must be [B,S] = [", B,
          ",", S, "], got ", keys.mask.shape());
    scores = scores + Var(keys.mask.view({B, 1, S}));  // -inf: exp gives exactly 0
  }
  Var weights = softmax(scores);               // [B,T,S]
  Var context = matmul(weights, values);       // [B,T,Dv]
  if (step) {
    weights = reshape(weights, {B, S});
    context = reshape(context, {B, values.size(2)});
  }
  return {context, weights};
}

std::string Attention::describe() const {
  std::string s = std::string("Attention(score=") + score_name(options.score) +
                  ", query_size=" + std::to_string(options.query_size) +
                  ", key_size=" + std::to_string(options.key_size);
  if (has_hidden(options.score))
    s += ", attn_size=" +
         std::to_string(options.attn_size > 0 ? options.attn_size : options.key_size);
  if (W) s += std::string(", bias=") + (options.bias ? "true" : "false");
  return s + ")";
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs Attention::forward_named(NamedInputs& in) {
  // query: [B,Dq] or [B,T,Dq]; keys: [B,S,Dk]; values: [B,S,Dv] (default: the keys)
  const Var q = in.tensor("query"), k = in.tensor("keys");
  Var v = in.optional("values");
  if (!v.defined()) v = k;
  const AttentionResult r = forward(q, prepare(k, in.optional_ids("lengths")), v);
  return {{"context", r.context}, {"weights", r.weights}};
}

}  // namespace qkv

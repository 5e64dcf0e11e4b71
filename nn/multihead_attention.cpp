// MultiheadAttention: projections, head split, the fused SDPA, head merge and
// the output projection; plus the one-step attention over a key/value cache
// that incremental decoding uses.
#include "nn/multihead_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/ops.h"
#include "engine/error.h"
#include "engine/kernels/row_moments.h"
#include "engine/rng.h"
#include "nn/decoding.h"
#include "nn/init.h"

namespace qkv {
namespace {

// x: [B,T,NH*HD] -> [B,NH,T,HD]
Var split_heads(const Var& x, int64_t NH) {
  const int64_t B = x.size(0), T = x.size(1), HD = x.size(2) / NH;
  return permute(reshape(x, {B, T, NH, HD}), {0, 2, 1, 3});
}

// x: [B,NH,T,HD] -> [B,T,NH*HD]
Var merge_heads(const Var& x) {
  const int64_t B = x.size(0), NH = x.size(1), T = x.size(2), HD = x.size(3);
  return reshape(permute(x, {0, 2, 1, 3}), {B, T, NH * HD});
}

// A PyTorch-style attn_mask as one broadcastable to [B,NH,T,S]: [B*NH,T,S] -> [B,NH,T,S].
Tensor mask_4d(const Tensor& m, int64_t B, int64_t NH) {
  if (!m.defined() || m.dim() != 3 || m.size(0) != B * NH || NH == 1) return m;
  return m.view({B, NH, m.size(1), m.size(2)});
}

}  // namespace

void KVCache::select_rows(const IntTensor& rows) {
  const bool in_place = selects_in_place(rows);
  qkv::select_rows(k, rows, in_place);
  qkv::select_rows(v, rows, in_place);
}

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& opt, Generator& gen)
    : options(opt), gen_(&gen) {
  const int64_t D = opt.embed_dim;
  check(D >= 1 && opt.num_heads >= 1 && D % opt.num_heads == 0,
        "MultiheadAttention: embed_dim (", D, ") must be a positive multiple of num_heads (",
        opt.num_heads, ")");
  check(opt.dropout >= 0.f && opt.dropout < 1.f, "MultiheadAttention: dropout must be in [0, 1), got ",
        opt.dropout);
  check(opt.kdim >= 0 && opt.vdim >= 0, "MultiheadAttention: kdim and vdim must be >= 0, got ",
        opt.kdim, " and ", opt.vdim);
  if (options.kdim == 0) options.kdim = D;
  if (options.vdim == 0) options.vdim = D;
  // torch: xavier_uniform_ on the projection weights, zero biases.
  if (options.kdim == D && options.vdim == D) {
    Tensor w({3 * D, D});
    init::xavier_uniform(w, gen);
    in_proj_weight = register_parameter("in_proj_weight", w);
  } else {
    Tensor wq({D, D}), wk({D, options.kdim}), wv({D, options.vdim});
    init::xavier_uniform(wq, gen);
    init::xavier_uniform(wk, gen);
    init::xavier_uniform(wv, gen);
    q_proj_weight = register_parameter("q_proj_weight", wq);
    k_proj_weight = register_parameter("k_proj_weight", wk);
    v_proj_weight = register_parameter("v_proj_weight", wv);
  }
  if (opt.bias) in_proj_bias = register_parameter("in_proj_bias", Tensor::zeros({3 * D}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{D, D, opt.bias}, gen));
  if (opt.bias) out_proj->bias.value_mut().fill(0.f);
}

Var MultiheadAttention::proj_weight(int which) const {
  const int64_t D = options.embed_dim;
  if (in_proj_weight.defined()) return slice(in_proj_weight, 0, which * D, (which + 1) * D);
  return which == 0 ? q_proj_weight : which == 1 ? k_proj_weight : v_proj_weight;
}

Var MultiheadAttention::proj_bias(int which) const {
  const int64_t D = options.embed_dim;
  return in_proj_bias.defined() ? slice(in_proj_bias, 0, which * D, (which + 1) * D) : Var();
}

Var MultiheadAttention::project(const Var& x, int which) const {
  // x: [..., in] -> [..., D]
  Var y = matmul(x, proj_weight(which), false, true);
  Var b = proj_bias(which);
  return b.defined() ? y + b : y;
}

MultiheadAttentionOutput MultiheadAttention::forward(const Var& query, const Var& key,
                                                     const Var& value, const AttentionMasks& masks,
                                                     bool need_weights, bool average_attn_weights) {
  check(query.dim() == 3 && key.dim() == 3 && value.dim() == 3,
        "MultiheadAttention: query, key, value must be 3-D, got ", query.shape(), ", ",
        key.shape(), ", ", value.shape());
  if (options.batch_first)
    return attend(query, key, value, masks, need_weights, average_attn_weights);
  // [T,B,D] -> [B,T,D]; keep self-attention recognisable (one transpose for all three).
  const bool self = query.state() == key.state() && key.state() == value.state();
  Var q = transpose(query, 0, 1);
  Var k = self ? q : transpose(key, 0, 1);
  Var v = self ? q : value.state() == key.state() ? k : transpose(value, 0, 1);
  MultiheadAttentionOutput r = attend(q, k, v, masks, need_weights, average_attn_weights);
  r.output = transpose(r.output, 0, 1);
  return r;
}

MultiheadAttentionOutput MultiheadAttention::attend(const Var& query, const Var& key,
                                                    const Var& value, const AttentionMasks& masks,
                                                    bool need_weights, bool average_attn_weights) {
  // query: [B,T,D], key: [B,S,kdim], value: [B,S,vdim] -> output [B,T,D]
  const int64_t D = options.embed_dim, NH = options.num_heads;
  check(query.dim() == 3 && query.size(2) == D && key.dim() == 3 && key.size(2) == options.kdim &&
            value.dim() == 3 && value.size(2) == options.vdim && key.size(0) == query.size(0) &&
            value.size(0) == query.size(0) && value.size(1) == key.size(1),
        "MultiheadAttention: expected query [B,T,", D, "], key [B,S,", options.kdim,
        "], value [B,S,", options.vdim, "] (batch first); got ", query.shape(), ", ", key.shape(),
        ", ", value.shape());
  const int64_t B = query.size(0), T = query.size(1);
  const bool self = query.state() == key.state() && key.state() == value.state();
  const float p = training() ? options.dropout : 0.f;
  const Tensor mask = mask_4d(masks.attn_mask, B, NH);
  if (self && in_proj_weight.defined() && !need_weights) {
    // The fast path: one GEMM (bias folded in) to the packed [B,T,3D], attention
    // reading heads from it and writing [B,T,D] merged, then the out-projection.
    Var qkv = linear(query, in_proj_weight, in_proj_bias);
    Var o = scaled_dot_product_attention_packed(qkv, NH, masks.causal, masks.key_lengths, mask,
                                                0.f, p, gen_);
    MultiheadAttentionOutput r;
    r.output = linear(o, out_proj->weight, out_proj->bias);
    return r;
  }
  Var q, k, v;
  if (self && in_proj_weight.defined()) {
    // One GEMM for the packed projection: [B,T,D] x [3D,D]^T -> [B,T,3D] -> 3 x [B,NH,T,HD]
    Var qkv = matmul(query, in_proj_weight, false, true);
    if (in_proj_bias.defined()) qkv = qkv + in_proj_bias;
    Var heads = permute(reshape(qkv, {B, T, 3, NH, D / NH}), {2, 0, 3, 1, 4});
    auto part = [&](int i) { return reshape(slice(heads, 0, i, i + 1), {B, NH, T, D / NH}); };
    q = part(0), k = part(1), v = part(2);
  } else {
    q = split_heads(project(query, 0), NH);
    k = split_heads(project(key, 1), NH);
    v = split_heads(project(value, 2), NH);
  }
  MultiheadAttentionOutput r;
  Var o;
  if (need_weights) {
    std::vector<Var> ow = scaled_dot_product_attention_weights(q, k, v, masks.causal, masks.key_lengths,
                                                               mask, 0.f, p, gen_);
    o = ow[0];
    r.weights = average_attn_weights ? mean(ow[1], {1}) : ow[1];
  } else {
    o = scaled_dot_product_attention(q, k, v, masks.causal, masks.key_lengths, mask, 0.f, p, gen_);
  }
  r.output = out_proj->forward(merge_heads(o));
  return r;
}

// ---- incremental decoding ----------------------------------------------------------

void MultiheadAttention::attend_cached(const float* q, const KVCache& c,
                                       const IntTensor* key_lengths, float* o, float* w) const {
  // q: [K,NH,HD]; c.k, c.v: [K,NH,cap,HD] (len valid) -> o [K,NH,HD], w [K,NH,len] if not null
  const int64_t K = c.k.size(0), NH = options.num_heads, HD = head_dim(), cap = c.k.size(2);
  const float scale = 1.f / std::sqrt(float(HD));
  std::vector<float> s(static_cast<size_t>(std::max<int64_t>(c.len, 1)));
  for (int64_t r = 0; r < K; ++r) {
    const int64_t L = key_lengths ? key_lengths->data()[r] : c.len;
    for (int64_t h = 0; h < NH; ++h) {
      const float* qr = q + (r * NH + h) * HD;
      const float* kb = c.k.data() + (r * NH + h) * cap * HD;
      const float* vb = c.v.data() + (r * NH + h) * cap * HD;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < L; ++j) {
        s[size_t(j)] = rows::dot(qr, kb + j * HD, HD) * scale;
        m = std::max(m, s[size_t(j)]);
      }
      double z = 0;
      for (int64_t j = 0; j < L; ++j) z += (s[size_t(j)] = std::exp(s[size_t(j)] - m));
      const float inv = float(1.0 / z);
      float* out = o + (r * NH + h) * HD;
      std::fill(out, out + HD, 0.f);
      for (int64_t j = 0; j < L; ++j) {
        const float pj = s[size_t(j)] * inv;
        for (int64_t e = 0; e < HD; ++e) out[e] += pj * vb[j * HD + e];
        if (w) w[(r * NH + h) * c.len + j] = pj;
      }
      if (w)
        for (int64_t j = L; j < c.len; ++j) w[(r * NH + h) * c.len + j] = 0.f;
    }
  }
}

Tensor MultiheadAttention::step_self(const Tensor& x, KVCache& c) {
  // x: [K,D] -> [K,D]
  NoGrad ng;
  const int64_t K = x.size(0), D = options.embed_dim, NH = options.num_heads, HD = head_dim();
  check(x.dim() == 2 && x.size(1) == D && options.kdim == D && options.vdim == D,
        "MultiheadAttention::step_self: x must be [K,", D, "], got ", x.shape());
  Tensor qkv = matmul(Var(x), in_proj_weight, false, true).value();  // [K,3D]
  if (in_proj_bias.defined()) qkv = add(Var(qkv), in_proj_bias).value();
  if (!c.k.defined() || c.len == c.k.size(2)) {  // grow the capacity (doubling: O(1) amortised)
    const int64_t cap = std::max<int64_t>(16, c.len * 2);
    Tensor nk = Tensor::zeros({K, NH, cap, HD}), nv = Tensor::zeros({K, NH, cap, HD});
    for (int64_t r = 0; r < K * NH; ++r)
      for (int64_t j = 0; j < c.len; ++j) {
        const int64_t oc = c.k.size(2);
        std::copy_n(c.k.data() + (r * oc + j) * HD, HD, nk.data() + (r * cap + j) * HD);
        std::copy_n(c.v.data() + (r * oc + j) * HD, HD, nv.data() + (r * cap + j) * HD);
      }
    c.k = nk, c.v = nv;
  }
  check(c.k.size(0) == K, "MultiheadAttention::step_self: cache has ", c.k.size(0), " rows, x has ", K);
  const int64_t cap = c.k.size(2);
  for (int64_t r = 0; r < K; ++r)
    for (int64_t h = 0; h < NH; ++h) {
      std::copy_n(qkv.data() + r * 3 * D + D + h * HD, HD, c.k.data() + ((r * NH + h) * cap + c.len) * HD);
      std::copy_n(qkv.data() + r * 3 * D + 2 * D + h * HD, HD,
                  c.v.data() + ((r * NH + h) * cap + c.len) * HD);
    }
  ++c.len;
  Tensor q({K, NH, HD}), o({K, NH, HD});
  for (int64_t r = 0; r < K; ++r) std::copy_n(qkv.data() + r * 3 * D, D, q.data() + r * D);
  attend_cached(q.data(), c, nullptr, o.data(), nullptr);
  return out_proj->forward(Var(o.view({K, D}))).value();
}

KVCache MultiheadAttention::project_memory(const Tensor& memory) {
  // memory: [K,S,kdim] -> k, v: [K,NH,S,HD]
  NoGrad ng;
  const int64_t NH = options.num_heads;
  KVCache c;
  c.k = split_heads(project(Var(memory), 1), NH).value();
  c.v = split_heads(project(Var(memory), 2), NH).value();
  c.len = memory.size(1);
  return c;
}

Tensor MultiheadAttention::step_cross(const Tensor& x, const KVCache& mem,
                                      const IntTensor* key_lengths, Tensor* weights) {
  // x: [K,D] -> [K,D]; weights: [K,NH,S]
  NoGrad ng;
  const int64_t K = x.size(0), D = options.embed_dim, NH = options.num_heads, HD = head_dim();
  check(x.dim() == 2 && x.size(1) == D && mem.k.size(0) == K,
        "MultiheadAttention::step_cross: x must be [K,", D, "] with the memory's K = ",
        mem.k.size(0), ", got ", x.shape());
  Tensor q = project(Var(x), 0).value();  // [K,D] = [K,NH,HD]
  Tensor o({K, NH, HD});
  if (weights) *weights = Tensor({K, NH, mem.len});
  attend_cached(q.data(), mem, key_lengths, o.data(), weights ? weights->data() : nullptr);
  return out_proj->forward(Var(o.view({K, D}))).value();
}

std::string MultiheadAttention::describe() const {
  std::ostringstream s;
  s << "MultiheadAttention(embed_dim=" << options.embed_dim << ", num_heads=" << options.num_heads
    << ", dropout=" << options.dropout << ", bias=" << (options.bias ? "true" : "false");
  if (options.kdim != options.embed_dim) s << ", kdim=" << options.kdim;
  if (options.vdim != options.embed_dim) s << ", vdim=" << options.vdim;
  s << ", batch_first=" << (options.batch_first ? "true" : "false") << ")";
  return s.str();
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs MultiheadAttention::forward_named(NamedInputs& in) {
  // key and value default to the query (self-attention, one packed projection).
  const Var q = in.tensor("query");
  Var k = in.optional("key"), v = in.optional("value");
  if (!k.defined()) k = q;
  if (!v.defined()) v = k;
  AttentionMasks masks;
  masks.key_lengths = in.optional_ids("key_padding_mask");
  masks.causal = in.flag("is_causal");
  const bool average = in.flag("average_attn_weights", true);
  const MultiheadAttentionOutput o = forward(q, k, v, masks, /*need_weights=*/true, average);
  return {{"output", o.output}, {"weights", o.weights}};
}

}  // namespace qkv

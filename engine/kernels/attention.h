// Fused scaled dot-product attention, softmax(Q K^T * scale + masks) V, and its
// gradient, in the manner of FlashAttention / PyTorch's CPU flash kernel: the
// T x S score matrix is never stored. attention_forward_ref and
// attention_backward_ref are the plain per-row formulas they are tested against.
//
// ---- kernel contract ------------------------------------------------------------
// Operation, per head bh = b*NH + h and query row t (the legend: B batch, NH
// heads, T queries, S keys, HD head size):
//   s[j]  = scale * q[t] . k[j] + mask[b,h,t,j]                      j in [0, S)
//   s[j]  = -inf when j >= key_limit(b, t)                 (lengths, causal)
//   p     = softmax(s);  out[t] = sum_j dropout(p)[j] v[j]
//   lse[t] = log sum_j exp(s[j])      (the one number per row saved for backward)
// Operands: q [B,NH,T,HD], k and v [B,NH,S,HD], out [B,NH,T,HD] as logical
//   shapes; in memory each is addressed through an AttentionLayout: row t of
//   head h of batch b starts at b*sb + h*sh + t*st and its HD floats are
//   contiguous. layout_bhtd is the plain [B,NH,T,HD] tensor; layout_btw reads
//   the packed self-attention projection [B,T,3D] (q | k | v along the last
//   axis, the caller offsets k by D and v by 2D) and writes out as [B,T,D]
//   with the heads merged, without permute or slice copies. Gradients share
//   the layout of their operand. lse: [B*NH*T] contiguous.
// Masks: keys j >= lengths[b] (lengths empty: none); causal: query t sees keys
//   j <= t + S - T (PyTorch's bottom-right alignment; T == S is the usual
//   j <= t; with T > S the first T - S rows see no key); an additive float
//   mask broadcast over [B,NH,T,S] by the strides ms (0 on broadcast axes).
//   A row with every key masked has no softmax: the forward writes zeros and
//   lse = -inf there and returns the smallest such row (bh*T + t); -1 if none.
// Dropout (drop_p > 0): p is dropped after the softmax (lse keeps the
//   undropped sum). Element i = (bh*T + t)*S + j is Philox draw i from counter
//   drop_base under key drop_seed, as dropout() over a [B,NH,T,S] tensor draws
//   it; the backward regenerates the mask.
// Backward: given dout (and optionally dw, the upstream gradient of the
//   weights p, with w = p as attention_weights wrote it), writes dq, dk, dv
//   (any may be null: not needed). It recomputes p block by block from lse:
//   D = rowsum(dO * O) (+ rowsum(dW * W)), dV = dropout(P)^T dO,
//   dP = dropout'(dO V^T) + dW, dS = P * (dP - D), dQ = scale dS K,
//   dK = scale dS^T Q. Keys no query sees get zero gradients.
// Threads: the forward splits (head, 64-row query block) items, the backward
//   whole heads (so dK, dV of a head have one writer, no locks), statically;
//   products inside an item are serial. For a fixed thread count the result is
//   deterministic, and it is the same for 1 and 2 threads (every row is
//   computed whole by one item in a fixed order).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace qkv {

// Row t of head h of batch b starts at b*sb + h*sh + t*st.
struct AttentionLayout {
  int64_t sb = 0, sh = 0, st = 0;
};
// [B,NH,T,HD] contiguous.
inline AttentionLayout layout_bhtd(int64_t NH, int64_t T, int64_t HD) {
  return {NH * T * HD, T * HD, HD};
}
// [B,T,W] with head h at columns [h*HD, (h+1)*HD) (plus the caller's column offset).
inline AttentionLayout layout_btw(int64_t T, int64_t HD, int64_t W) { return {T * W, HD, W}; }

// Everything the kernels need to know about one call (validated by the caller).
struct AttentionCall {
  int64_t B = 0, NH = 0, T = 0, S = 0, HD = 0;
  float scale = 1.f;
  bool causal = false;
  std::vector<int32_t> lengths;           // [B], each in [0, S], or empty
  Tensor mask;                            // additive, or undefined
  int64_t ms[4] = {0, 0, 0, 0};           // broadcast strides of mask over [B,NH,T,S]
  float drop_p = 0.f;                     // attention dropout probability (0: none)
  float drop_scale = 1.f;                 // 1 / (1 - drop_p)
  uint64_t drop_seed = 0, drop_base = 0;  // Philox key and first counter of the mask
  int64_t drop_offset = 0;  // element i draws number drop_offset + i (a slice of a larger batch)
  AttentionLayout lq, lk, lv, lo;         // of q, k, v, out (gradients share them)

  // Offset of row t of head bh (= b*NH + h) in an operand of layout L.
  int64_t at(const AttentionLayout& L, int64_t bh, int64_t t) const {
    return (bh / NH) * L.sb + (bh % NH) * L.sh + t * L.st;
  }
  // Keys [0, limit) can be visible to query row t of batch b (a bound, not a mask).
  int64_t key_limit(int64_t b, int64_t t) const;
  // m[j] = dropout multiplier (0 or drop_scale) of row r = bh*T + t, keys [s0, s0+n).
  void drop_mask(int64_t r, int64_t s0, int64_t n, float* m) const;
};

// out (layout lo), lse [B*NH*T]. Returns the smallest fully masked row, or -1.
int64_t attention_forward(const AttentionCall& a, const float* q, const float* k, const float* v,
                          float* out, float* lse);
// The same, one row at a time in double; also writes the weights p (before
// dropout) to w [B,NH,T,S] when w is not null.
int64_t attention_forward_ref(const AttentionCall& a, const float* q, const float* k,
                              const float* v, float* out, float* lse, float* w = nullptr);

// w [B,NH,T,S] = exp(s - lse), exactly 0 where masked (all of w is written).
void attention_weights(const AttentionCall& a, const float* q, const float* k, const float* lse,
                       float* w);

// dq, dk, dv have the layouts of q, k, v; dout that of out. dw/w: the upstream
// gradient of the weights and the weights ([B,NH,T,S]), or both null. Any of
// dq, dk, dv may be null.
void attention_backward(const AttentionCall& a, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, const float* dout, const float* dw,
                        const float* w, float* dq, float* dk, float* dv);
// The same from the definition, in double: recomputes p per row and ignores
// out, lse and w (the weights' gradient enters through dw alone).
void attention_backward_ref(const AttentionCall& a, const float* q, const float* k, const float* v,
                            const float* out, const float* lse, const float* dout, const float* dw,
                            const float* w, float* dq, float* dk, float* dv);

}  // namespace qkv

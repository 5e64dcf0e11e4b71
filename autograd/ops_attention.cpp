// Fused scaled dot-product attention as autograd ops: shape checks, mask and
// dropout set-up, the tape entry and its backward; the kernels (online-softmax
// forward, weights, backward) and their contract are in engine/kernels/attention.h.
// Attention dropout consumes the generator's draws of a [B,NH,T,S] mask, as
// dropout() over the weights would, so the composite softmax -> dropout ->
// matmul with the same generator state gives the same mask.
// The composite matmul + softmax + matmul is its oracle (tests/autograd/test_attention.cpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "engine/collective.h"
#include "engine/kernels/attention.h"
#include "engine/rng.h"

namespace qkv {
namespace {

// The masks, scale and dropout of a call whose sizes and layouts are set in a.
AttentionCall prepare_rest(const char* op, AttentionCall a, bool causal,
                           const IntTensor* key_lengths, const Tensor& attn_mask, float scale,
                           float dropout_p, Generator* gen) {
  a.causal = causal;
  a.scale = scale > 0.f ? scale : 1.f / std::sqrt(float(std::max<int64_t>(a.HD, 1)));
  if (key_lengths) {
    check(key_lengths->dim() == 1 && key_lengths->size(0) == a.B, op,
          ": key_lengths must be [B] = [", a.B, "]; got ", key_lengths->shape());
    a.lengths.assign(key_lengths->begin(), key_lengths->end());
    for (int32_t L : a.lengths)
      check(L >= 0 && L <= a.S, op, ": key length ", L, " outside [0, ", a.S, "]");
  }
  if (attn_mask.defined()) {
    check(attn_mask.dim() <= 4, op, ": attn_mask ", attn_mask.shape(),
          " does not broadcast to [B,NH,T,S]");
    const Shape full = {a.B, a.NH, a.T, a.S};
    Shape ms(4, 1);
    for (int64_t i = 0; i < attn_mask.dim(); ++i) ms[4 - attn_mask.dim() + i] = attn_mask.size(i);
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      check(ms[i] == full[i] || ms[i] == 1, op, ": attn_mask ", attn_mask.shape(),
            " does not broadcast to ", full);
      a.ms[i] = ms[i] == 1 ? 0 : stride;
      stride *= ms[i];
    }
    a.mask = attn_mask;
  }
  check(dropout_p >= 0.f && dropout_p < 1.f, op, ": dropout_p must be in [0, 1), got ", dropout_p);
  if (dropout_p > 0.f) {
    check(gen != nullptr, op, ": dropout_p = ", dropout_p, " needs a generator");
    a.drop_p = dropout_p;
    a.drop_scale = 1.f / (1.f - dropout_p);
    a.drop_seed = gen->seed();
    a.drop_base = gen->counter();
    // consume the draws of a [B,NH,T,S] mask, as dropout() over the weights would;
    // a data-parallel slice of the batch (rows along B) draws its rows of the whole's
    const BatchRows& rows = batch_rows();
    int64_t B = a.B;
    if (rows.split() && rows.local == a.B) {
      B = rows.global;
      a.drop_offset = rows.offset * a.NH * a.T * a.S;
    }
    const int64_t n = B * a.NH * a.T * a.S;
    gen->set_state(gen->seed(), gen->counter() + uint64_t((n + 3) / 4));
  }
  return a;
}

// q: [B,NH,T,HD], k, v: [B,NH,S,HD]; out [B,NH,T,HD]
AttentionCall prepare(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                      bool causal, const IntTensor* key_lengths, const Tensor& attn_mask,
                      float scale, float dropout_p, Generator* gen) {
  check(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
        ": q, k, v must be [B,NH,T,HD], [B,NH,S,HD], [B,NH,S,HD]; got ", q.shape(), ", ",
        k.shape(), ", ", v.shape());
  AttentionCall a;
  a.B = q.size(0), a.NH = q.size(1), a.T = q.size(2), a.HD = q.size(3), a.S = k.size(2);
  check(k.size(0) == a.B && k.size(1) == a.NH && k.size(3) == a.HD && v.shape() == k.shape(),
        op, ": k and v must be [B,NH,S,HD] matching q ", q.shape(), "; got ", k.shape(), ", ",
        v.shape());
  a.lq = a.lo = layout_bhtd(a.NH, a.T, a.HD);
  a.lk = a.lv = layout_bhtd(a.NH, a.S, a.HD);
  return prepare_rest(op, a, causal, key_lengths, attn_mask, scale, dropout_p, gen);
}

// qkv: [B,T,3D] = q | k | v, each [NH,HD] per row; out [B,T,D]
AttentionCall prepare_packed(const char* op, const Tensor& qkv, int64_t NH, bool causal,
                             const IntTensor* key_lengths, const Tensor& attn_mask, float scale,
                             float dropout_p, Generator* gen) {
  check(qkv.dim() == 3 && NH >= 1 && qkv.size(2) % (3 * NH) == 0, op,
        ": qkv must be [B,T,3*NH*HD] with NH=", NH, "; got ", qkv.shape());
  AttentionCall a;
  a.B = qkv.size(0), a.NH = NH, a.T = a.S = qkv.size(1), a.HD = qkv.size(2) / (3 * NH);
  const int64_t D = NH * a.HD;
  a.lq = a.lk = a.lv = layout_btw(a.T, a.HD, 3 * D);
  a.lo = layout_btw(a.T, a.HD, D);
  return prepare_rest(op, a, causal, key_lengths, attn_mask, scale, dropout_p, gen);
}

// The forward kernel, with a fully masked row reported as an Error naming op.
void forward(const char* op, const AttentionCall& a, const float* q, const float* k, const float* v,
             float* out, float* lse) {
  const int64_t bad_row = attention_forward(a, q, k, v, out, lse);
  if (bad_row >= 0) {
    const int64_t bh = bad_row / a.T, t = bad_row % a.T;
    fail(op, ": query row ", t, " of batch ", bh / a.NH, ", head ", bh % a.NH,
         " has every key masked (its softmax is undefined)");
  }
}

// The shared body of both entry points.
std::vector<Var> sdpa(const char* op, bool with_weights, const Var& q, const Var& k, const Var& v,
                      bool causal, const IntTensor* key_lengths, const Tensor& attn_mask,
                      float scale, float dropout_p, Generator* gen) {
  const Tensor qt = q.value(), kt = k.value(), vt = v.value();
  const AttentionCall a =
      prepare(op, qt, kt, vt, causal, key_lengths, attn_mask, scale, dropout_p, gen);
  Tensor out(qt.shape());
  Tensor lse({a.B, a.NH, a.T});
  forward(op, a, qt.data(), kt.data(), vt.data(), out.data(), lse.data());
  std::vector<Tensor> outs{out};
  Tensor w;
  if (with_weights) {
    w = Tensor({a.B, a.NH, a.T, a.S});
    attention_weights(a, qt.data(), kt.data(), lse.data(), w.data());
    outs.push_back(w);
  }
  return record_multi(
      op, outs, {q, k, v},
      [a, qt, kt, vt, out, lse, w](const std::vector<Tensor>& douts, const std::vector<bool>& needs) {
        Tensor dO = douts[0].defined() ? douts[0] : Tensor::zeros(out.shape());
        const Tensor* dW = douts.size() > 1 && douts[1].defined() ? &douts[1] : nullptr;
        Tensor dq = needs[0] ? Tensor(qt.shape()) : Tensor();
        Tensor dk = needs[1] ? Tensor(kt.shape()) : Tensor();
        Tensor dv = needs[2] ? Tensor(vt.shape()) : Tensor();
        attention_backward(a, qt.data(), kt.data(), vt.data(), out.data(), lse.data(), dO.data(),
                           dW ? dW->data() : nullptr, dW ? w.data() : nullptr,
                           needs[0] ? dq.data() : nullptr, needs[1] ? dk.data() : nullptr,
                           needs[2] ? dv.data() : nullptr);
        return std::vector<Tensor>{dq, dk, dv};
      });
}

// Self-attention on the packed projection: q, k, v are column blocks of one
// tensor, and so are their gradients (one [B,T,3D] buffer, each head's
// columns written by the thread that owns the head).
Var sdpa_packed(const char* op, const Var& qkv, int64_t NH, bool causal,
                const IntTensor* key_lengths, const Tensor& attn_mask, float scale,
                float dropout_p, Generator* gen) {
  const Tensor x = qkv.value();
  const AttentionCall a =
      prepare_packed(op, x, NH, causal, key_lengths, attn_mask, scale, dropout_p, gen);
  const int64_t D = a.NH * a.HD;
  Tensor out({a.B, a.T, D});
  Tensor lse({a.B, a.NH, a.T});
  forward(op, a, x.data(), x.data() + D, x.data() + 2 * D, out.data(), lse.data());
  return record(op, out, {qkv},
                [a, x, out, lse, D](const Tensor& dO, const std::vector<bool>&) {
                  Tensor dx(x.shape());
                  attention_backward(a, x.data(), x.data() + D, x.data() + 2 * D, out.data(),
                                     lse.data(), dO.data(), nullptr, nullptr, dx.data(),
                                     dx.data() + D, dx.data() + 2 * D);
                  return std::vector<Tensor>{dx};
                });
}

}  // namespace

Var scaled_dot_product_attention_packed(const Var& qkv, int64_t num_heads, bool causal,
                                        const IntTensor* key_lengths, const Tensor& attn_mask,
                                        float scale, float dropout_p, Generator* gen) {
  return sdpa_packed("scaled_dot_product_attention_packed", qkv, num_heads, causal, key_lengths,
                     attn_mask, scale, dropout_p, gen);
}

Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, bool causal,
                                 const IntTensor* key_lengths, const Tensor& attn_mask,
                                 float scale, float dropout_p, Generator* gen) {
  return sdpa("scaled_dot_product_attention", false, q, k, v, causal, key_lengths, attn_mask,
              scale, dropout_p, gen)[0];
}

std::vector<Var> scaled_dot_product_attention_weights(const Var& q, const Var& k, const Var& v,
                                                      bool causal, const IntTensor* key_lengths,
                                                      const Tensor& attn_mask, float scale,
                                                      float dropout_p, Generator* gen) {
  return sdpa("scaled_dot_product_attention_weights", true, q, k, v, causal, key_lengths,
              attn_mask, scale, dropout_p, gen);
}

}  // namespace qkv

// One decoder step's classic attention for each of B rows over that row's own
// S keys: scores, masked softmax and context in one pass per row (forward),
// and their gradients in one pass per row (backward). The per-row products
// are matrix-vector shaped (one query against S keys): done in place, with no
// [B,1,S] batched GEMM, tape node or temporary per step. The recurrent GEMMs
// around it live in the fused decoder op (autograd/ops_decoder.cpp).
// The additive (Bahdanau) score has its own pair below.
// Legend: B batch, S source, D query/score-key size, K value size, A additive hidden size.
#pragma once
#include <cstdint>

namespace qkv {

// q: [B,D] rows ldq apart; P: [B,S,D] score keys (Luong general: W k; dot:
// the keys); V: [B,S,K] values; mask: [B,S] additive (0 or -inf) or null.
//   w[b,:]   = softmax(scale * P[b] q[b] + mask[b])        w: [B,S], rows ldw apart
//   ctx[b,:] = w[b,:] V[b]                                 ctx: [B,K], rows ldc apart
// A row whose keys are all masked gives NaN (the callers reject it earlier).
void step_attention_forward(int64_t B, int64_t S, int64_t D, int64_t K, const float* q, int64_t ldq,
                            const float* P, const float* V, const float* mask, float scale,
                            float* w, int64_t ldw, float* ctx, int64_t ldc);
void step_attention_forward_ref(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                                int64_t ldq, const float* P, const float* V, const float* mask,
                                float scale, float* w, int64_t ldw, float* ctx, int64_t ldc);

// Given dctx: [B,K] (rows lddc apart) and dw: [B,S] (rows lddw apart; the
// gradient of the weights themselves, or null for none), accumulates (+=)
//   dq: [B,D] (rows lddq apart), dP: [B,S,D], dV: [B,S,K]   (any may be null)
// through ctx = w V and w = softmax(scale * P q + mask):
//   da = V dctx + dw, ds = scale * w * (da - sum(w * da)), dq += P^T ds, dP += ds q^T, dV += w
//   dctx^T.
// ds: [B,S] scratch. Rows are independent (threads split them), so every sum
// has one fixed order: the same bits for any thread count.
void step_attention_backward(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                             int64_t ldq, const float* P, const float* V, const float* w,
                             int64_t ldw, const float* dctx, int64_t lddc, const float* dw,
                             int64_t lddw, float scale, float* dq, int64_t lddq, float* dP,
                             float* dV, float* ds);
void step_attention_backward_ref(int64_t B, int64_t S, int64_t D, int64_t K, const float* q,
                                 int64_t ldq, const float* P, const float* V, const float* w,
                                 int64_t ldw, const float* dctx, int64_t lddc, const float* dw,
                                 int64_t lddw, float scale, float* dq, int64_t lddq, float* dP,
                                 float* dV, float* ds);

// ---- additive (Bahdanau) score ---------------------------------------------------------
// qp: [B,A] the projected query W q (rows ldq apart); KP: [B,S,A] the projected
// keys U k; v: [A]; V: [B,S,K]; mask: [B,S] additive (0 or -inf) or null.
//   w[b,s]   = softmax_s(v . tanh(qp[b] + KP[b,s]) + mask[b,s])   w: [B,S], rows ldw apart
//   ctx[b,:] = w[b,:] V[b]                                        ctx: [B,K], rows ldc apart
// Masked keys skip their tanh row (their weight is exactly 0).
void additive_attention_forward(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                int64_t ldq, const float* KP, const float* v, const float* V,
                                const float* mask, float* w, int64_t ldw, float* ctx, int64_t ldc);
void additive_attention_forward_ref(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                    int64_t ldq, const float* KP, const float* v, const float* V,
                                    const float* mask, float* w, int64_t ldw, float* ctx,
                                    int64_t ldc);

// Given dctx: [B,K] (rows lddc apart) and dw: [B,S] (or null), accumulates (+=)
//   dqp: [B,A] (rows lddq apart), dKP: [B,S,A], dV: [B,S,K], dv_rows: [B,A]
// (each may be null; dv_rows is per row so that threads never share a sum: the
// caller adds its rows up in a fixed order). With u = tanh(qp + KP[s]):
//   ds = w * (da - sum(w * da)), da = V dctx + dw;   dpre[s] = ds[s] v (1 - u^2)
//   dqp += sum_s dpre[s], dKP[s] += dpre[s], dv_rows += sum_s ds[s] u, dV += w dctx^T.
// The tanh rows are recomputed (saving them would take T*B*S*A floats). ds: [B,S] scratch.
void additive_attention_backward(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                 int64_t ldq, const float* KP, const float* v, const float* V,
                                 const float* w, int64_t ldw, const float* dctx, int64_t lddc,
                                 const float* dw, int64_t lddw, float* dqp, int64_t lddq,
                                 float* dKP, float* dV, float* dv_rows, float* ds);
void additive_attention_backward_ref(int64_t B, int64_t S, int64_t A, int64_t K, const float* qp,
                                     int64_t ldq, const float* KP, const float* v, const float* V,
                                     const float* w, int64_t ldw, const float* dctx, int64_t lddc,
                                     const float* dw, int64_t lddw, float* dqp, int64_t lddq,
                                     float* dKP, float* dV, float* dv_rows, float* ds);

}  // namespace qkv

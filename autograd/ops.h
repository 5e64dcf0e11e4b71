// The differentiable ops on Vars. Each is defined in one place with its
// forward and backward (autograd/ops_<family>.cpp); the forward runs the
// engine's SIMD kernels, the backward closure captures only what it needs.
// Axes may be negative. Shape comments use the legend of the README.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/var.h"
#include "engine/kernels/binary.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/unary.h"

namespace qkv {

class Generator;

// The gradient of a broadcast operand: g summed back to `shape` (over leading
// extra axes, then over axes where `shape` has size 1). Returns g itself when
// the shapes already match.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// Its adjoint: t broadcast to `shape` as a contiguous copy (t itself when the
// shapes already match).
Tensor expand_to(const Tensor& t, const Shape& shape);

// ---- elementwise (ops_elementwise.cpp) -------------------------------------------
// Broadcasting binary ops; gradients of broadcast inputs are summed back to
// the input's shape. maximum/minimum send the gradient to the larger/smaller
// input (ties: to the first).
Var binary(BinaryOp op, const Var& a, const Var& b);
Var unary(UnaryOp op, const Var& x);
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var maximum(const Var& a, const Var& b);
Var minimum(const Var& a, const Var& b);
Var add_scalar(const Var& a, float s);  // a + s
Var mul_scalar(const Var& a, float s);  // a * s
Var rsub_scalar(const Var& a, float s); // s - a
Var pow_scalar(const Var& a, float p);  // a^p (a > 0 unless p is an integer)
Var neg(const Var& x);
Var exp(const Var& x);
Var log(const Var& x);
Var sqrt(const Var& x);
Var rsqrt(const Var& x);
Var abs(const Var& x);
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var relu(const Var& x);
Var gelu(const Var& x);

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& a) { return neg(a); }
inline Var operator+(const Var& a, float s) { return add_scalar(a, s); }
inline Var operator-(const Var& a, float s) { return add_scalar(a, -s); }
inline Var operator*(const Var& a, float s) { return mul_scalar(a, s); }
inline Var operator/(const Var& a, float s) { return mul_scalar(a, 1.f / s); }
inline Var operator*(float s, const Var& a) { return mul_scalar(a, s); }
inline Var operator-(float s, const Var& a) { return rsub_scalar(a, s); }

// ---- reductions (ops_reduce.cpp) ----------------------------------------------------
// Over the listed axes (empty list: all axes), keepdim keeps size-1 axes.
Var sum(const Var& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Var mean(const Var& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Max over one axis; the gradient goes to the first maximal element.
Var max(const Var& x, int64_t axis, bool keepdim = false);

// ---- matmul (ops_matmul.cpp) ---------------------------------------------------------
// a: [..., M, K] ([..., K, M] if ta), b: [..., K, N] ([..., N, K] if tb) -> [..., M, N]
Var matmul(const Var& a, const Var& b, bool ta = false, bool tb = false);
// x: [..., K], w: [N, K], b: [N] or undefined -> [..., N] = x w^T + b, the bias
// folded into the GEMM (as matmul(x, w, false, true) + b, one pass less each way).
Var linear(const Var& x, const Var& w, const Var& b);
// relu(linear(x, w, b)), the ReLU applied in place on the GEMM's output.
Var linear_relu(const Var& x, const Var& w, const Var& b);
// The Transformer's position-wise feed-forward block with ReLU and no dropout:
// x: [..., K], w1: [F, K], b1: [F], w2: [N, F], b2: [N] -> [..., N]
//   = linear(linear_relu(x, w1, b1), w2, b2)
// as one op, so that its backward takes the first Linear's dz straight out of
// the GEMM dy w2 through the ReLU gate, with no ReLU-backward pass over the
// [..., F] hidden activations (the widest tensor of the block).
Var feed_forward_relu(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2);

// ---- layout (ops_layout.cpp) ----------------------------------------------------------
Var reshape(const Var& x, Shape shape);  // free view; one -1 allowed
Var permute(const Var& x, const std::vector<int>& dims);
Var transpose(const Var& x, int64_t a, int64_t b);
Var slice(const Var& x, int64_t axis, int64_t start, int64_t end);
Var concat(const std::vector<Var>& xs, int64_t axis);
Var stack(const std::vector<Var>& xs, int64_t axis);
// Rows of x ([N, ...]) picked by ids (any shape) -> ids.shape + x.shape[1:].
// Rows whose id equals padding_idx receive no gradient (-1: none).
Var index_select(const Var& x, const IntTensor& ids, int64_t padding_idx = -1);

// ---- softmax (ops_softmax.cpp): fused SIMD forward and backward, last axis ----------
Var softmax(const Var& x);
Var log_softmax(const Var& x);

// ---- normalisation (ops_norm.cpp) ----------------------------------------------------------
// Over the last axis; gamma, beta: [D] or undefined (no affine).
Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps = 1e-5f);

// ---- dropout (ops_dropout.cpp) --------------------------------------------------------------
// Zeroes each element with probability p and scales the rest by 1/(1-p)
// (inverted dropout); identity when !training or p == 0. The mask comes from gen.
Var dropout(const Var& x, float p, bool training, Generator& gen);

// ---- recurrent layers (ops_rnn.cpp): one layer, one direction, whole sequence ----
// x: [T,B,I]; h0, c0: [B,H] (undefined = zeros); w_ih: [G,I], w_hh: [G,H],
// biases [G] (undefined = none), G = 4H (LSTM, gates i,f,g,o) or 3H (GRU,
// r,z,n); lengths: [B] in [1,T] or null; reverse: run from each sequence's
// last step back to 0. Returns {output [T,B,H], h_n [B,H], c_n [B,H]} for the
// LSTM and {output, h_n} for the GRU; output is zero at padded steps.
std::vector<Var> lstm_layer(const Var& x, const Var& h0, const Var& c0, const Var& w_ih,
                            const Var& w_hh, const Var& b_ih, const Var& b_hh,
                            const IntTensor* lengths, bool reverse);
std::vector<Var> gru_layer(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh,
                           const Var& b_ih, const Var& b_hh, const IntTensor* lengths,
                           bool reverse);
// The LSTM layer with the input's share of the gates made outside: xg: [T,B,4H]
// = x W_ih^T + b_ih + b_hh (input_gates: a lookup in a projected embedding
// table for a small vocabulary). Returns {output, h_n, c_n} as lstm_layer.
std::vector<Var> lstm_layer_gates(const Var& xg, const Var& h0, const Var& c0, const Var& w_hh,
                                  const IntTensor* lengths, bool reverse);
// The same, cell by cell from autograd primitives: the fused ops' oracle
// (h0, c0 and biases must be defined).
std::vector<Var> lstm_layer_ref(const Var& x, const Var& h0, const Var& c0, const Var& w_ih,
                                const Var& w_hh, const Var& b_ih, const Var& b_hh,
                                const IntTensor* lengths, bool reverse);
std::vector<Var> gru_layer_ref(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh,
                               const Var& b_ih, const Var& b_hh, const IntTensor* lengths,
                               bool reverse);

// ---- fused Luong attention decoder (ops_decoder.cpp) ------------------------------
// Luong's attention decoder with an LSTM cell over a whole target sequence
// (teacher forcing) or one step (decoding), as one op: per step t
//   g_t   = xg_t + f_{t-1} W_f^T + h_{t-1} W_hh^T     (f: the fed h~; none without input feeding)
//   h_t, c_t = lstm(g_t, c_{t-1})                     (gates i, f, g, o as lstm_layer)
//   a_t   = softmax(scale * P h_t + mask),   ctx_t = a_t V
//   h~_t  = tanh([ctx_t | h_t] W_c^T),       f_t = h~_t
// xg = x W_x^T + b_ih + b_hh, the input's share of the gates, comes in made
// (input_gates() below): for a small vocabulary it is a lookup in a projected
// embedding table, V rows instead of B*T. W_f and W_hh are packed once per
// call as one [F+H, 4H] operand, so a step's recurrent gates are one GEMM; the
// attention runs per row in place (engine/kernels/step_attention.h); backward
// walks the steps once in reverse and gets the weight gradients from one GEMM
// over all T*B rows.
// xg: [T,B,4H] (time-major, as lstm_layer_gates); h0, c0: [B,H]; feed0: [B,H],
// or undefined without input feeding;
// w_ih: [4H, E (+H with feeding)], of which the op reads (and differentiates)
// only the F fed columns after the first E; w_hh: [4H,H]; P: [B,S,H] score keys
// (general: W k; dot: the keys); V: [B,S,K]; mask: [B,S] additive (0 / -inf)
// or undefined; w_c: [H, K+H].
// The composite (LSTMCell + Attention + Linear + tanh per step) is its oracle.
struct LuongDecoderOutput {
  Var ht;       // [B,T,H] h~ of every step
  Var weights;  // [B,T,S] attention
  Var h, c;     // [B,H] the last step's state
};

// xg = x W_x^T + b_ih + b_hh for ids: [T,B] embedded by emb ([V,E], its row
// padding_idx gets no gradient) -> [T,B,4H], where W_x = w_ih[:, :E]. When
// project_table, the V rows of emb are projected once and xg is a lookup
// (V < B*T rows: fewer FLOPs each way); otherwise the B*T embedded rows are,
// after dropout (p > 0 only with !project_table).
Var input_gates(const IntTensor& ids, const Var& emb, int64_t padding_idx, const Var& w_ih,
                const Var& b_ih, const Var& b_hh, bool project_table, float dropout_p,
                Generator* gen);
// The projected table itself: emb W_x^T + b_ih + b_hh -> [V,4H] (decoding keeps
// one per decode and looks each step's rows up in it).
Var input_gate_table(const Var& emb, int64_t padding_idx, const Var& w_ih, const Var& b_ih,
                     const Var& b_hh);

// A recurrent cell's weights [W_y | W_hh] ([4H, Y+H]: W_y the Y columns of w_ih
// after the first E) packed once as one right operand [Y+H, 4H] for many calls
// (decoding: every step of a sequence). It copies what it packs.
struct CellPack {
  CellPack(const Var& w_ih, const Var& w_hh, int64_t E);
  const float* w_ih_src;  // the weights it was made from (checked at use)
  const float* w_hh_src;
  Tensor w_yh;            // [4H, Y+H]
  PackedB w_yh_t;         // [Y+H, 4H]
};
// The weights W_f|W_hh and W_c^T packed once for many calls. It points into w_c:
// the weights must outlive it, unchanged (no optimizer step in between).
struct LuongDecoderPack {
  LuongDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_c, int64_t E);
  CellPack cell;
  PackedB w_c_t;  // [K+H, H]
};
LuongDecoderOutput luong_decoder(const Var& xg, const Var& h0, const Var& c0, const Var& feed0,
                                 const Var& w_ih, const Var& w_hh, const Var& P, const Var& V,
                                 const Tensor& mask, const Var& w_c, float scale = 1.f,
                                 const LuongDecoderPack* pack = nullptr);

// ---- fused Bahdanau attention decoder (ops_decoder.cpp) ---------------------------
// Bahdanau's decoder with an LSTM cell, the additive score attending from the
// previous state, as one op over T steps (or one step when decoding): per step t
//   a_t   = softmax(v . tanh(h_{t-1} W^T + KP[s]) + mask),   ctx_t = a_t V
//   g_t   = xg_t + ctx_t W_ctx^T + h_{t-1} W_hh^T
//   h_t, c_t = lstm(g_t, c_{t-1}),                          out_t = [h_t | ctx_t]
// It shares luong_decoder's cell code (xg made outside by input_gates, [W_ctx |
// W_hh] packed as one operand, one-pass backward, weight gradients from one
// GEMM); the score per row is engine/kernels/step_attention.h's additive pair.
// xg: [T,B,4H]; h0, c0: [B,H]; w_ih: [4H,E+K], of which the op reads only the K
// context columns after the first E; w_hh: [4H,H]; w_q: [A,H] (the score's W,
// no bias); KP: [B,S,A] the projected keys U k; v: [1,A]; V: [B,S,K]; mask:
// [B,S] additive (0 / -inf) or undefined.
// The composite (Attention + LSTMCell per step) is its oracle.
struct BahdanauDecoderOutput {
  Var out;      // [B,T,H+K] [h_t | ctx_t] of every step: the output layer's input
  Var weights;  // [B,T,S] attention
  Var h, c;     // [B,H] the last step's state
};
// W_ctx|W_hh and W^T packed once for many calls (see LuongDecoderPack).
struct BahdanauDecoderPack {
  BahdanauDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_q, int64_t E);
  CellPack cell;
  PackedB w_q_t;  // [H, A]
};
BahdanauDecoderOutput bahdanau_decoder(const Var& xg, const Var& h0, const Var& c0,
                                       const Var& w_ih, const Var& w_hh, const Var& w_q,
                                       const Var& KP, const Var& v, const Var& V,
                                       const Tensor& mask,
                                       const BahdanauDecoderPack* pack = nullptr);

// ---- losses (ops_loss.cpp) ---------------------------------------------------------------------
enum class Reduction { mean, sum, none };
// logits: [N, C] (or [..., C]), target: [N] (or [...]) class ids. Targets equal
// to ignore_index contribute nothing and are not counted in the mean.
// label_smoothing in [0, 1): the target distribution is (1-ls) one-hot + ls/C.
// Fused: one log-softmax pass forward; d logits = softmax - target dist.
Var cross_entropy(const Var& logits, const IntTensor& target, int64_t ignore_index = -100,
                  float label_smoothing = 0.f, Reduction reduction = Reduction::mean);
// logp: [..., C] log-probabilities, target: [...] class ids (as cross_entropy).
Var nll_loss(const Var& logp, const IntTensor& target, int64_t ignore_index = -100,
             Reduction reduction = Reduction::mean);
Var mse_loss(const Var& pred, const Var& target, Reduction reduction = Reduction::mean);
// Numerically stable: max(x,0) - x*y + log(1 + exp(-|x|)).
Var bce_with_logits(const Var& logits, const Var& target, Reduction reduction = Reduction::mean);

// ---- fused attention (ops_attention.cpp) ----------------------------------------
// softmax(Q K^T * scale + mask) V over q: [B,NH,T,HD], k, v: [B,NH,S,HD] -> [B,NH,T,HD].
// causal: query t sees keys j <= t + S - T (PyTorch's bottom-right alignment; with T > S the first T - S rows see
// no key, which is an Error like any fully masked row).
// key_lengths: [B] (keys >= length masked) or null; attn_mask: undefined or an additive float mask broadcastable to [B,NH,T,S].
// scale <= 0 means 1/sqrt(HD). Streams over key blocks with an online softmax: the T x S score matrix is never stored
// (only the per-row log-sum-exp, for the backward, which recomputes the scores block by block).
// dropout_p > 0: attention dropout on the weights, drawn from gen (required then) exactly as
// dropout(weights [B,NH,T,S], dropout_p, true, *gen) would draw it; the caller passes 0 in eval.
Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, bool causal = false,
                                 const IntTensor* key_lengths = nullptr, const Tensor& attn_mask = Tensor(),
                                 float scale = 0.f, float dropout_p = 0.f, Generator* gen = nullptr);
// The same with the weights [B,NH,T,S] materialised and returned (for visualisation): {out, weights}.
// The weights returned are the softmax before dropout.
std::vector<Var> scaled_dot_product_attention_weights(const Var& q, const Var& k, const Var& v, bool causal = false,
                                                      const IntTensor* key_lengths = nullptr, const Tensor& attn_mask = Tensor(),
                                                      float scale = 0.f, float dropout_p = 0.f,
                                                      Generator* gen = nullptr);
// Self-attention straight from the packed in-projection, heads split and merged
// by addressing (no permute or slice copies): qkv: [B,T,3D] = q | k | v along the
// last axis, each D = NH*HD head-major as PyTorch's in_proj -> [B,T,D] (heads
// merged). Otherwise as scaled_dot_product_attention on the split heads.
Var scaled_dot_product_attention_packed(const Var& qkv, int64_t num_heads, bool causal = false,
                                        const IntTensor* key_lengths = nullptr,
                                        const Tensor& attn_mask = Tensor(), float scale = 0.f,
                                        float dropout_p = 0.f, Generator* gen = nullptr);

// ---- convolution and pooling (ops_conv.cpp), NCHW ----------------------------------
struct Conv2dParams { int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1; };
// x: [N,C,IH,IW], w: [O, C/groups, KH, KW], b: [O] or undefined -> [N,O,OH,OW]
Var conv2d(const Var& x, const Var& w, const Var& b, const Conv2dParams& p = {});
struct Pool2dParams { int64_t kh = 2, kw = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0; };
Var max_pool2d(const Var& x, const Pool2dParams& p);   // ties: first max in window order; padding never wins
Var avg_pool2d(const Var& x, const Pool2dParams& p);   // count_include_pad = true (PyTorch default)
// x: [N,C,IH,IW] -> [N,C,OH,OW] with PyTorch's adaptive windows
// [floor(o*I/O), ceil((o+1)*I/O)); OH = OW = 1 is global pooling (SIMD one pass).
Var adaptive_avg_pool2d(const Var& x, int64_t OH, int64_t OW);
Var adaptive_max_pool2d(const Var& x, int64_t OH, int64_t OW);  // ties: first max
// Over the channels of x: [N,C,IH,IW] -> [N,1,IH,IW]; max's gradient goes to the
// first maximal channel. channel_pool is both in one pass, concatenated as
// [N,2,IH,IW] = [mean, max] (CBAM's spatial-attention input).
Var channel_mean(const Var& x);
Var channel_max(const Var& x);
Var channel_pool(const Var& x);
// CBAM's gates without the product tensors (engine/kernels/gate.h), for
// x [N,C,IH,IW], a channel gate s [N,C,1,1] and a spatial gate m [N,1,IH,IW]:
// channel_pool_scaled(x, s) = channel_pool(x * s), gate(x, s, m) = x * s * m.
Var channel_pool_scaled(const Var& x, const Var& s);
Var gate(const Var& x, const Var& s, const Var& m);

// ---- batch normalisation (ops_batchnorm.cpp) -------------------------------------------
// x: [N,C] or [N,C,*]; weight, bias: [C] or undefined; running_mean/var: [C]
// tensors (handles, updated in place) or undefined. training: normalise with
// the batch's mean and biased variance, then (if running stats are given)
// running = (1 - momentum) * running + momentum * batch, with the unbiased
// variance for running_var (as torch). Eval: normalise with the running stats.
Var batch_norm(const Var& x, const Var& weight, const Var& bias, Tensor running_mean,
               Tensor running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

}  // namespace qkv

// Luong's attention decoder (LSTM cell, attention, W_c, tanh) over a whole
// target sequence as one autograd op with a hand-written backward through
// time (see ops.h). What it saves per call instead of per step: tape nodes
// (about 20 a step in the composite), temporaries, packs of the recurrent and
// combine weights, and per-step weight-gradient GEMMs with K = B that the
// tape then summed into the parameters. Layout inside is time-major
// ([T,B,...]) so that the merged GEMMs see plain 2-D matrices.
// Legend: B batch, T target, S source, E embed, H hidden, K value (key) size,
// G = 4H gates, F = H with input feeding (else 0).
#include <cstring>
#include <memory>

#include "autograd/ops.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/rnn_cell.h"
#include "engine/kernels/step_attention.h"

namespace qkv {
namespace {

Var zeros_var(Shape s) { return Var(Tensor::zeros(std::move(s)), false); }

// dst[t,b,:w] = src[b,t,:w] (src rows w apart in [B,T,w], dst rows ld apart).
void to_time_major(const float* src, int64_t B, int64_t T, int64_t w, float* dst, int64_t ld) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(dst + (t * B + b) * ld, src + (b * T + t) * w, size_t(w) * sizeof(float));
}

// [T,B,w] -> [B,T,w]
Tensor to_batch_major(const float* src, int64_t T, int64_t B, int64_t w) {
  Tensor r({B, T, w});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(r.data() + (b * T + t) * w, src + (t * B + b) * w, size_t(w) * sizeof(float));
  return r;
}

// rows of dst (ld apart) = rows of src ([B,w] contiguous)
void copy_rows(float* dst, int64_t ld, const float* src, int64_t B, int64_t w) {
  for (int64_t b = 0; b < B; ++b) std::memcpy(dst + b * ld, src + b * w, size_t(w) * sizeof(float));
}

struct Dims {
  int64_t B, T, E, H, G, F, S, K;
};

Dims check_dims(const Var& x, const Var& h0, const Var& c0, const Var& feed0, const Var& w_ih,
                const Var& w_hh, const Var& b_ih, const Var& b_hh, const Var& P, const Var& V,
                const Tensor& mask, const Var& w_c) {
  const char* op = "luong_decoder";
  check(x.defined() && x.dim() == 3, op, ": x must be [B,T,E], got ",
        x.defined() ? x.shape() : Shape{});
  const int64_t B = x.size(0), T = x.size(1), E = x.size(2);
  check(w_hh.defined() && w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1), op,
        ": weight_hh must be [4H,H], got ", w_hh.defined() ? w_hh.shape() : Shape{});
  const int64_t H = w_hh.size(1), G = 4 * H, F = feed0.defined() ? H : 0;
  check(T >= 1 && B >= 1, op, ": x must have B, T >= 1, got ", x.shape());
  check(w_ih.shape() == Shape{G, E + F}, op, ": weight_ih has shape ", w_ih.shape(), ", expected [",
        G, ",", E + F, "] (E = ", E, F ? " + fed H)" : ", no input feeding)");
  for (const Var* s : {&h0, &c0})
    check(s->defined() && s->shape() == Shape{B, H}, op, ": h0, c0 must be [", B, ",", H, "], got ",
          s->defined() ? s->shape() : Shape{});
  check(!feed0.defined() || feed0.shape() == Shape{B, H}, op, ": feed0 must be [", B, ",", H,
        "], got ", feed0.defined() ? feed0.shape() : Shape{});
  for (const Var* b : {&b_ih, &b_hh})
    check(!b->defined() || b->shape() == Shape{G}, op, ": biases must be [", G, "], got ",
          b->shape());
  check(P.defined() && P.dim() == 3 && P.size(0) == B && P.size(2) == H, op,
        ": score keys must be [B,S,H] = [", B, ",S,", H, "], got ",
        P.defined() ? P.shape() : Shape{});
  const int64_t S = P.size(1);
  check(V.defined() && V.dim() == 3 && V.size(0) == B && V.size(1) == S, op,
        ": values must be [B,S,K] with B=", B, ", S=", S, ", got ",
        V.defined() ? V.shape() : Shape{});
  const int64_t K = V.size(2);
  check(!mask.defined() || mask.shape() == Shape{B, S}, op, ": mask must be [", B, ",", S,
        "], got ", mask.defined() ? mask.shape() : Shape{});
  check(w_c.defined() && w_c.shape() == Shape{H, K + H}, op, ": W_c must be [", H, ",", K + H,
        "], got ", w_c.defined() ? w_c.shape() : Shape{});
  return {B, T, E, H, G, F, S, K};
}

// ---- the LSTM part both decoders share ---------------------------------------------
// Each step's cell input is xyh's row [x_t | y_t | h_{t-1}] ([T,B,E+Y+H]): y is
// Luong's fed h~_{t-1} or Bahdanau's context c_t, written as the steps run.

// act[t] = x_t W_x^T + b_ih + b_hh for all steps in one GEMM (the biases folded
// in as a column bias); with a pack (decoding) each step does it with y instead.
void cell_input_projection(const Tensor& xyh, const float* Wih, int64_t ldw, int64_t T, int64_t B,
                           int64_t E, int64_t G, const GemmEpilogue& with_bias, Tensor& act) {
  gemm(false, true, T * B, G, E, 1.f, xyh.data(), xyh.size(2), Wih, ldw, 0.f, act.data(), G,
       with_bias);
}

// g += y W_y^T + h_prev W_hh^T (or, with the whole W_ih^T packed, g = [x | y] W_ih^T + b first),
// then the cell: c, h from g and c_prev.
void cell_step(float* g, const float* row, int64_t XW, int64_t E, int64_t Y, int64_t B, int64_t H,
               const PackedB* w_ih_t, const PackedB* w_y_t, const PackedB& w_hh_t,
               const GemmEpilogue& with_bias, const float* c_prev, float* c, float* h) {
  const int64_t G = 4 * H;
  if (w_ih_t)
    gemm(B, 1.f, row, XW, *w_ih_t, 0.f, g, G, with_bias);
  else if (Y)
    gemm(B, 1.f, row + E, XW, *w_y_t, 1.f, g, G);
  gemm(B, 1.f, row + E + Y, XW, w_hh_t, 1.f, g, G);
  lstm_cell_forward(g, c_prev, c, h, B, H, nullptr);
}

// After the reverse walk: dx = dG W_x ([B,T,E]), and [dW_ih | dW_hh] = dG^T xyh
// in one GEMM over all T*B rows, whose packing of dG^T sums dG's columns: the
// bias gradient. g[i0..i0+4) = dW_ih, dW_hh, db_ih, db_hh; g[ix] = dx.
void cell_weight_grads(const Tensor& dG, const Tensor& xyh, const Tensor& Wi, int64_t T, int64_t B,
                       int64_t E, int64_t G, const std::vector<bool>& needs, size_t ix, size_t i0,
                       std::vector<Tensor>& g) {
  const int64_t XW = xyh.size(2), IW = Wi.size(1);
  if (needs[ix]) {
    Tensor dx({T, B, E});
    gemm(false, false, T * B, E, G, 1.f, dG.data(), G, Wi.data(), IW, 0.f, dx.data(), E);
    g[ix] = to_batch_major(dx.data(), T, B, E);
  }
  if (!(needs[i0] || needs[i0 + 1] || needs[i0 + 2] || needs[i0 + 3])) return;
  Tensor dw({G, XW}), db({G});
  GemmEpilogue sums;
  sums.row_sums = db.data();
  gemm(true, false, G, XW, T * B, 1.f, dG.data(), G, xyh.data(), XW, 0.f, dw.data(), XW, sums);
  if (needs[i0]) g[i0] = qkv::slice(dw, 1, 0, IW);
  if (needs[i0 + 1]) g[i0 + 1] = qkv::slice(dw, 1, IW, XW);
  if (needs[i0 + 2]) g[i0 + 2] = db;
  if (needs[i0 + 3]) g[i0 + 3] = needs[i0 + 2] ? db.clone() : db;
}

}  // namespace

LuongDecoderPack::LuongDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_c)
    : w_ih_t(true, w_ih.size(1), w_ih.size(0), w_ih.value().data(), w_ih.size(1)),
      w_hh_t(true, w_hh.size(1), w_hh.size(0), w_hh.value().data(), w_hh.size(1)),
      w_c_t(true, w_c.size(1), w_c.size(0), w_c.value().data(), w_c.size(1)) {}

LuongDecoderOutput luong_decoder(const Var& x, const Var& h0, const Var& c0, const Var& feed0,
                                 const Var& w_ih, const Var& w_hh, const Var& b_ih_in,
                                 const Var& b_hh_in, const Var& P, const Var& V, const Tensor& mask,
                                 const Var& w_c, float scale, const LuongDecoderPack* pack) {
  const auto [B, T, E, H, G, F, S, K] =
      check_dims(x, h0, c0, feed0, w_ih, w_hh, b_ih_in, b_hh_in, P, V, mask, w_c);
  const Var b_ih = b_ih_in.defined() ? b_ih_in : zeros_var({G});
  const Var b_hh = b_hh_in.defined() ? b_hh_in : zeros_var({G});
  const Var f0 = feed0.defined() ? feed0 : zeros_var({B, H});
  const int64_t XW = E + F + H, CW = K + H;  // row widths of xfh and cat
  const float *Wih = w_ih.value().data(), *Whh = w_hh.value().data(), *Wc = w_c.value().data();
  const float *Pd = P.value().data(), *Vd = V.value().data();
  const float* Md = mask.defined() ? mask.data() : nullptr;

  // xfh: [T,B,E+F+H] rows [x_t | f_{t-1} | h_{t-1}] (f, h written as the steps
  // run): the A of every gate GEMM, and backward's dW_ih | dW_hh in one GEMM.
  Tensor xfh({T, B, XW});
  to_time_major(x.value().data(), B, T, E, xfh.data(), XW);
  copy_rows(xfh.data() + E, XW, f0.value().data(), B, F);
  copy_rows(xfh.data() + E + F, XW, h0.value().data(), B, H);
  // act: pre-activations of all steps, b_ih + b_hh + x W_x^T in one GEMM
  // (the bias folded in as a column bias), then activated step by step.
  Tensor bias = qkv::add(b_ih.value(), b_hh.value());
  Tensor act({T, B, G});
  GemmEpilogue with_bias;
  with_bias.col_bias = bias.data();
  // Without a pack: the recurrent weights and W_c packed once for all steps
  // here. With one (decoding), each step's [x | f] W_ih^T is one GEMM on it.
  if (pack)
    check(pack->w_ih_t.B == Wih && pack->w_hh_t.B == Whh && pack->w_c_t.B == Wc &&
              pack->w_ih_t.K == E + F && pack->w_c_t.K == CW,
          "luong_decoder: the pack was made for other weights");
  else
    cell_input_projection(xfh, Wih, E + F, T, B, E, G, with_bias, act);
  std::unique_ptr<PackedB> own_f, own_hh, own_c;
  if (!pack) {
    own_f = std::make_unique<PackedB>(true, F, G, Wih + E, E + F);  // W_f^T [F,G] (F = 0: empty)
    own_hh = std::make_unique<PackedB>(true, H, G, Whh, H);         // W_hh^T [H,G]
    own_c = std::make_unique<PackedB>(true, CW, H, Wc, CW);         // W_c^T [K+H,H]
  }
  const PackedB& whh_t = pack ? pack->w_hh_t : *own_hh;
  const PackedB& wc_t = pack ? pack->w_c_t : *own_c;

  Tensor c_all({T, B, H}), h_all({T, B, H}), cat({T, B, CW}), ht_all({T, B, H}), w_all({T, B, S});
  for (int64_t t = 0; t < T; ++t) {
    const float* c_prev = t ? c_all.data() + (t - 1) * B * H : c0.value().data();
    float *ht = h_all.data() + t * B * H, *cat_t = cat.data() + t * B * CW;
    cell_step(act.data() + t * B * G, xfh.data() + t * B * XW, XW, E, F, B, H,
              pack ? &pack->w_ih_t : nullptr, own_f.get(), whh_t, with_bias, c_prev,
              c_all.data() + t * B * H, ht);
    step_attention_forward(B, S, H, K, ht, H, Pd, Vd, Md, scale, w_all.data() + t * B * S, S, cat_t,
                           CW);
    copy_rows(cat_t + K, CW, ht, B, H);
    float* z = ht_all.data() + t * B * H;
    gemm(B, 1.f, cat_t, CW, wc_t, 0.f, z, H);
    unary_forward(UnaryOp::tanh, z, z, B * H);
    if (t + 1 < T) {
      float* next = xfh.data() + (t + 1) * B * XW;
      copy_rows(next + E, XW, z, B, F);
      copy_rows(next + E + F, XW, ht, B, H);
    }
  }

  LuongDecoderOutput r;
  Tensor h_T({B, H}), c_T({B, H});
  std::memcpy(h_T.data(), h_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::memcpy(c_T.data(), c_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::vector<Var> outs = record_multi(
      "luong_decoder",
      {to_batch_major(ht_all.data(), T, B, H), to_batch_major(w_all.data(), T, B, S), h_T, c_T},
      {x, h0, c0, f0, w_ih, w_hh, b_ih, b_hh, P, V, w_c},
      [xfh, act, c_all, h_all, cat, ht_all, w_all, C0 = c0.value(), Pt = P.value(), Vt = V.value(),
       Wi = w_ih.value(), Wh = w_hh.value(), Wct = w_c.value(), scale, B = B, T = T, E = E, H = H,
       G = G, F = F, S = S, K = K](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
        const int64_t XW = E + F + H, CW = K + H;
        const float* dout = d[0].defined() ? d[0].data() : nullptr;
        // d[1]: the weights' gradient [B,T,S], joined per step to the scores' via the context
        Tensor dw_all = d[1].defined() ? Tensor({T, B, S}) : Tensor();
        if (d[1].defined()) to_time_major(d[1].data(), B, T, S, dw_all.data(), S);
        Tensor dh = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
        Tensor dc = d[3].defined() ? d[3].clone() : Tensor::zeros({B, H});
        Tensor dfeed = Tensor::zeros({B, H});
        Tensor dG({T, B, G}), dZ({T, B, H}), dcat({B, CW}), ds({B, S});
        Tensor dP = needs[8] ? Tensor::zeros(Pt.shape()) : Tensor();
        Tensor dV = needs[9] ? Tensor::zeros(Vt.shape()) : Tensor();
        const PackedB wf(false, G, F, Wi.data() + E, E + F);  // W_f [G,F]
        const PackedB whh(false, G, H, Wh.data(), H);         // W_hh [G,H]
        const PackedB wc(false, H, CW, Wct.data(), CW);       // W_c [H,K+H]
        for (int64_t t = T - 1; t >= 0; --t) {
          // h~ = tanh(z): dz = (d h~ from the output + from the next step's input) (1 - h~^2)
          const float* ht = ht_all.data() + t * B * H;
          float* dz = dZ.data() + t * B * H;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) {
              const float y = ht[b * H + j];
              const float g = (dout ? dout[(b * T + t) * H + j] : 0.f) + dfeed.data()[b * H + j];
              dz[b * H + j] = g * (1.f - y * y);
            }
          // z = [ctx | h] W_c^T: d[ctx | h] = dz W_c
          gemm(B, 1.f, dz, H, wc, 0.f, dcat.data(), CW);
          float* dht = dh.data();  // d h_t: the next step's recurrence + W_c's + attention's
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) dht[b * H + j] += dcat.data()[b * CW + K + j];
          const float* h_t = h_all.data() + t * B * H;
          step_attention_backward(
              B, S, H, K, h_t, H, Pt.data(), Vt.data(), w_all.data() + t * B * S, S, dcat.data(),
              CW, dw_all.defined() ? dw_all.data() + t * B * S : nullptr, S, scale, dht, H,
              needs[8] ? dP.data() : nullptr, needs[9] ? dV.data() : nullptr, ds.data());
          const float* c_prev = t ? c_all.data() + (t - 1) * B * H : C0.data();
          float* dg = dG.data() + t * B * G;
          lstm_cell_backward(act.data() + t * B * G, c_prev, c_all.data() + t * B * H, dht,
                             dc.data(), dg, B, H, nullptr);
          // g = [x | f] W_ih^T + h W_hh^T: d f_{t-1} = dg W_f, d h_{t-1} = dg W_hh
          if (F) gemm(B, 1.f, dg, G, wf, 0.f, dfeed.data(), H);
          gemm(B, 1.f, dg, G, whh, 0.f, dh.data(), H);
        }
        std::vector<Tensor> g(11);
        cell_weight_grads(dG, xfh, Wi, T, B, E, G, needs, 0, 4, g);
        if (needs[1]) g[1] = dh;
        if (needs[2]) g[2] = dc;
        if (needs[3] && F) g[3] = dfeed;
        if (needs[8]) g[8] = dP;
        if (needs[9]) g[9] = dV;
        if (needs[10]) {  // dW_c = dZ^T [ctx | h]
          g[10] = Tensor({H, CW});
          gemm(true, false, H, CW, T * B, 1.f, dZ.data(), H, cat.data(), CW, 0.f, g[10].data(), CW);
        }
        return g;
      });
  r.ht = outs[0];
  r.weights = outs[1];
  r.h = outs[2];
  r.c = outs[3];
  return r;
}

}  // namespace qkv

// ---- Bahdanau ----------------------------------------------------------------------------

namespace qkv {
namespace {

struct BahdanauDims {
  int64_t B, T, E, H, G, S, A, K;
};

BahdanauDims check_bahdanau(const Var& x, const Var& h0, const Var& c0, const Var& w_ih,
                            const Var& w_hh, const Var& b_ih, const Var& b_hh, const Var& w_q,
                            const Var& KP, const Var& v, const Var& V, const Tensor& mask) {
  const char* op = "bahdanau_decoder";
  check(x.defined() && x.dim() == 3 && x.size(0) >= 1 && x.size(1) >= 1, op,
        ": x must be [B,T,E] with B, T >= 1, got ", x.defined() ? x.shape() : Shape{});
  const int64_t B = x.size(0), T = x.size(1), E = x.size(2);
  check(w_hh.defined() && w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1), op,
        ": weight_hh must be [4H,H], got ", w_hh.defined() ? w_hh.shape() : Shape{});
  const int64_t H = w_hh.size(1), G = 4 * H;
  for (const Var* s : {&h0, &c0})
    check(s->defined() && s->shape() == Shape{B, H}, op, ": h0, c0 must be [", B, ",", H, "], got ",
          s->defined() ? s->shape() : Shape{});
  for (const Var* b : {&b_ih, &b_hh})
    check(!b->defined() || b->shape() == Shape{G}, op, ": biases must be [", G, "], got ",
          b->shape());
  check(KP.defined() && KP.dim() == 3 && KP.size(0) == B, op,
        ": projected keys must be [B,S,A] with B=", B, ", got ",
        KP.defined() ? KP.shape() : Shape{});
  const int64_t S = KP.size(1), A = KP.size(2);
  check(w_q.defined() && w_q.shape() == Shape{A, H}, op, ": W (query) must be [", A, ",", H,
        "], got ", w_q.defined() ? w_q.shape() : Shape{});
  check(v.defined() && v.numel() == A && v.size(-1) == A, op, ": v must be [1,", A, "], got ",
        v.defined() ? v.shape() : Shape{});
  check(V.defined() && V.dim() == 3 && V.size(0) == B && V.size(1) == S, op,
        ": values must be [B,S,K] with B=", B, ", S=", S, ", got ",
        V.defined() ? V.shape() : Shape{});
  const int64_t K = V.size(2);
  check(w_ih.defined() && w_ih.shape() == Shape{G, E + K}, op, ": weight_ih must be [", G, ",",
        E + K, "] (E = ", E, " + context K = ", K, "), got ",
        w_ih.defined() ? w_ih.shape() : Shape{});
  check(!mask.defined() || mask.shape() == Shape{B, S}, op, ": mask must be [", B, ",", S,
        "], got ", mask.defined() ? mask.shape() : Shape{});
  return {B, T, E, H, G, S, A, K};
}

}  // namespace

BahdanauDecoderPack::BahdanauDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_q)
    : w_ih_t(true, w_ih.size(1), w_ih.size(0), w_ih.value().data(), w_ih.size(1)),
      w_hh_t(true, w_hh.size(1), w_hh.size(0), w_hh.value().data(), w_hh.size(1)),
      w_q_t(true, w_q.size(1), w_q.size(0), w_q.value().data(), w_q.size(1)) {}

BahdanauDecoderOutput bahdanau_decoder(const Var& x, const Var& h0, const Var& c0, const Var& w_ih,
                                       const Var& w_hh, const Var& b_ih_in, const Var& b_hh_in,
                                       const Var& w_q, const Var& KP, const Var& v, const Var& V,
                                       const Tensor& mask, const BahdanauDecoderPack* pack) {
  const auto [B, T, E, H, G, S, A, K] =
      check_bahdanau(x, h0, c0, w_ih, w_hh, b_ih_in, b_hh_in, w_q, KP, v, V, mask);
  const Var b_ih = b_ih_in.defined() ? b_ih_in : zeros_var({G});
  const Var b_hh = b_hh_in.defined() ? b_hh_in : zeros_var({G});
  const int64_t XW = E + K + H, OW = H + K;  // row widths of xch and of the output
  const float *Wih = w_ih.value().data(), *Whh = w_hh.value().data(), *Wq = w_q.value().data();
  const float *KPd = KP.value().data(), *vd = v.value().data(), *Vd = V.value().data();
  const float* Md = mask.defined() ? mask.data() : nullptr;

  // xch: [T,B,E+K+H] rows [x_t | ctx_t | h_{t-1}] (ctx, h written as the steps run)
  Tensor xch({T, B, XW});
  to_time_major(x.value().data(), B, T, E, xch.data(), XW);
  copy_rows(xch.data() + E + K, XW, h0.value().data(), B, H);
  Tensor bias = qkv::add(b_ih.value(), b_hh.value());
  Tensor act({T, B, G});
  GemmEpilogue with_bias;
  with_bias.col_bias = bias.data();
  if (pack)
    check(pack->w_ih_t.B == Wih && pack->w_hh_t.B == Whh && pack->w_q_t.B == Wq &&
              pack->w_ih_t.K == E + K && pack->w_q_t.N == A,
          "bahdanau_decoder: the pack was made for other weights");
  else
    cell_input_projection(xch, Wih, E + K, T, B, E, G, with_bias, act);
  std::unique_ptr<PackedB> own_c, own_hh, own_q;
  if (!pack) {
    own_c = std::make_unique<PackedB>(true, K, G, Wih + E, E + K);  // W_ctx^T [K,G]
    own_hh = std::make_unique<PackedB>(true, H, G, Whh, H);         // W_hh^T [H,G]
    own_q = std::make_unique<PackedB>(true, H, A, Wq, H);           // W^T [H,A]
  }
  const PackedB& whh_t = pack ? pack->w_hh_t : *own_hh;
  const PackedB& wq_t = pack ? pack->w_q_t : *own_q;

  Tensor c_all({T, B, H}), h_all({T, B, H}), qp_all({T, B, A}), w_all({T, B, S});
  for (int64_t t = 0; t < T; ++t) {
    float* row = xch.data() + t * B * XW;
    float* qp = qp_all.data() + t * B * A;
    // attend from s_{t-1}: qp = h_{t-1} W^T, ctx_t into the row's context columns
    gemm(B, 1.f, row + E + K, XW, wq_t, 0.f, qp, A);
    additive_attention_forward(B, S, A, K, qp, A, KPd, vd, Vd, Md, w_all.data() + t * B * S, S,
                               row + E, XW);
    const float* c_prev = t ? c_all.data() + (t - 1) * B * H : c0.value().data();
    float* ht = h_all.data() + t * B * H;
    cell_step(act.data() + t * B * G, row, XW, E, K, B, H, pack ? &pack->w_ih_t : nullptr,
              own_c.get(), whh_t, with_bias, c_prev, c_all.data() + t * B * H, ht);
    if (t + 1 < T) copy_rows(xch.data() + (t + 1) * B * XW + E + K, XW, ht, B, H);
  }

  // out[b,t] = [h_t | ctx_t]: the output layer's input
  Tensor out({B, T, OW});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* o = out.data() + (b * T + t) * OW;
      std::memcpy(o, h_all.data() + (t * B + b) * H, size_t(H) * sizeof(float));
      std::memcpy(o + H, xch.data() + (t * B + b) * XW + E, size_t(K) * sizeof(float));
    }
  Tensor h_T({B, H}), c_T({B, H});
  std::memcpy(h_T.data(), h_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::memcpy(c_T.data(), c_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::vector<Var> outs =
      record_multi("bahdanau_decoder", {out, to_batch_major(w_all.data(), T, B, S), h_T, c_T},
                   {x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_q, KP, v, V},
                   [xch, act, c_all, qp_all, w_all, C0 = c0.value(), KPt = KP.value(),
                    vt = v.value(), Vt = V.value(), Wi = w_ih.value(), Wh = w_hh.value(),
                    Wqt = w_q.value(), B = B, T = T, E = E, H = H, G = G, S = S, A = A,
                    K = K](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
                     const int64_t XW = E + K + H, OW = H + K;
                     const float* dout = d[0].defined() ? d[0].data() : nullptr;
                     Tensor dw_all = d[1].defined() ? Tensor({T, B, S}) : Tensor();
                     if (d[1].defined()) to_time_major(d[1].data(), B, T, S, dw_all.data(), S);
                     Tensor dh = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
                     Tensor dc = d[3].defined() ? d[3].clone() : Tensor::zeros({B, H});
                     Tensor dG({T, B, G}), dQP = Tensor::zeros({T, B, A}), dctx({B, K}), ds({B, S});
                     Tensor dv_rows = Tensor::zeros({B, A});
                     Tensor dKP = needs[8] ? Tensor::zeros(KPt.shape()) : Tensor();
                     Tensor dV = needs[10] ? Tensor::zeros(Vt.shape()) : Tensor();
                     const PackedB wc(false, G, K, Wi.data() + E, E + K);  // W_ctx [G,K]
                     const PackedB whh(false, G, H, Wh.data(), H);         // W_hh [G,H]
                     const PackedB wq(false, A, H, Wqt.data(), H);         // W [A,H]
                     for (int64_t t = T - 1; t >= 0; --t) {
                       // out_t = [h_t | ctx_t]: d h_t += its h part; d ctx_t = its ctx part + the
                       // cell's
                       for (int64_t b = 0; b < B; ++b) {
                         const float* o = dout ? dout + (b * T + t) * OW : nullptr;
                         float* dhb = dh.data() + b * H;
                         float* dcb = dctx.data() + b * K;
                         for (int64_t j = 0; j < H; ++j) dhb[j] += o ? o[j] : 0.f;
                         for (int64_t k = 0; k < K; ++k) dcb[k] = o ? o[H + k] : 0.f;
                       }
                       const float* c_prev = t ? c_all.data() + (t - 1) * B * H : C0.data();
                       float* dg = dG.data() + t * B * G;
                       lstm_cell_backward(act.data() + t * B * G, c_prev, c_all.data() + t * B * H,
                                          dh.data(), dc.data(), dg, B, H, nullptr);
                       // g = [x | ctx] W_ih^T + h_{t-1} W_hh^T: d ctx += dg W_ctx, d h_{t-1} = dg
                       // W_hh
                       gemm(B, 1.f, dg, G, wc, 1.f, dctx.data(), K);
                       gemm(B, 1.f, dg, G, whh, 0.f, dh.data(), H);
                       float* dqp = dQP.data() + t * B * A;
                       additive_attention_backward(
                           B, S, A, K, qp_all.data() + t * B * A, A, KPt.data(), vt.data(),
                           Vt.data(), w_all.data() + t * B * S, S, dctx.data(), K,
                           dw_all.defined() ? dw_all.data() + t * B * S : nullptr, S, dqp, A,
                           needs[8] ? dKP.data() : nullptr, needs[10] ? dV.data() : nullptr,
                           needs[9] ? dv_rows.data() : nullptr, ds.data());
                       gemm(B, 1.f, dqp, A, wq, 1.f, dh.data(), H);  // qp = h_{t-1} W^T
                     }
                     std::vector<Tensor> g(11);
                     cell_weight_grads(dG, xch, Wi, T, B, E, G, needs, 0, 3, g);
                     if (needs[1]) g[1] = dh;
                     if (needs[2]) g[2] = dc;
                     if (needs[7]) {  // dW = dQP^T h_prev over all T*B rows
                       g[7] = Tensor({A, H});
                       gemm(true, false, A, H, T * B, 1.f, dQP.data(), A, xch.data() + E + K, XW,
                            0.f, g[7].data(), H);
                     }
                     if (needs[8]) g[8] = dKP;
                     if (needs[9]) {  // dv = the rows' sums, in row order
                       g[9] = Tensor::zeros(vt.shape());
                       for (int64_t b = 0; b < B; ++b)
                         for (int64_t a = 0; a < A; ++a)
                           g[9].data()[a] += dv_rows.data()[b * A + a];
                     }
                     if (needs[10]) g[10] = dV;
                     return g;
                   });
  BahdanauDecoderOutput r;
  r.out = outs[0];
  r.weights = outs[1];
  r.h = outs[2];
  r.c = outs[3];
  return r;
}

}  // namespace qkv

// Luong's attention decoder (LSTM cell, attention, W_c, tanh) over a whole
// target sequence as one autograd op with a hand-written backward through
// time (see ops.h). What it saves per call instead of per step: tape nodes
// (about 20 a step in the composite), temporaries, packs of the recurrent and
// combine weights, and per-step weight-gradient GEMMs with K = B that the
// tape then summed into the parameters. Layout inside is time-major
// ([T,B,...]) so that the merged GEMMs see plain 2-D matrices.
// Legend: B batch, T target, S source, E embed, H hidden, K value (key) size,
// G = 4H gates, F = H with input feeding (else 0), Y the cell's recurrent
// input besides h (Luong: F; Bahdanau: K), V vocabulary.
#include <array>
#include <cstring>
#include <memory>
#include <utility>

#include "autograd/ops.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/rnn_cell.h"
#include "engine/kernels/step_attention.h"
#include "engine/threads.h"

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

// The gates' input xg: [T,B,G] with G = 4H from w_hh: [4H,H]; -> {B, T, H}.
std::array<int64_t, 3> check_cell(const char* op, const Var& xg, const Var& h0, const Var& c0,
                                  const Var& w_hh) {
  check(w_hh.defined() && w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1), op,
        ": weight_hh must be [4H,H], got ", w_hh.defined() ? w_hh.shape() : Shape{});
  const int64_t H = w_hh.size(1);
  check(xg.defined() && xg.dim() == 3 && xg.size(0) >= 1 && xg.size(1) >= 1 && xg.size(2) == 4 * H,
        op, ": the input gates xg must be [T,B,4H] with T, B >= 1 and 4H = ", 4 * H, ", got ",
        xg.defined() ? xg.shape() : Shape{});
  const int64_t T = xg.size(0), B = xg.size(1);
  for (const Var* s : {&h0, &c0})
    check(s->defined() && s->shape() == Shape{B, H}, op, ": h0, c0 must be [", B, ",", H, "], got ",
          s->defined() ? s->shape() : Shape{});
  return {B, T, H};
}

// w_ih: [4H, E+Y] with E >= 0 -> E.
int64_t check_w_ih(const char* op, const Var& w_ih, int64_t G, int64_t Y, const char* what) {
  check(w_ih.defined() && w_ih.dim() == 2 && w_ih.size(0) == G && w_ih.size(1) >= Y, op,
        ": weight_ih must be [", G, ", E + ", Y, "] (", what, "), got ",
        w_ih.defined() ? w_ih.shape() : Shape{});
  return w_ih.size(1) - Y;
}

struct Dims {
  int64_t B, T, E, H, G, F, S, K;
};

Dims check_dims(const Var& xg, const Var& h0, const Var& c0, const Var& feed0, const Var& w_ih,
                const Var& w_hh, const Var& P, const Var& V, const Tensor& mask, const Var& w_c) {
  const char* op = "luong_decoder";
  const auto [B, T, H] = check_cell(op, xg, h0, c0, w_hh);
  const int64_t G = 4 * H, F = feed0.defined() ? H : 0;
  const int64_t E = check_w_ih(op, w_ih, G, F, F ? "the fed h~ last" : "no input feeding");
  check(!feed0.defined() || feed0.shape() == Shape{B, H}, op, ": feed0 must be [", B, ",", H,
        "], got ", feed0.defined() ? feed0.shape() : Shape{});
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
// Each step's recurrent input is yh's row [y_{t} | h_{t-1}] ([T,B,Y+H]): y is
// Luong's fed h~_{t-1} or Bahdanau's context c_t, written as the steps run;
// the gates start as xg_t (act, time-major).

// [W_y | W_hh]: the Y columns of w_ih after its first E, then w_hh -> [G, Y+H]
Tensor cell_weights(const Tensor& w_ih, const Tensor& w_hh, int64_t E) {
  const int64_t G = w_hh.size(0), H = w_hh.size(1), IW = w_ih.size(1), Y = IW - E;
  Tensor w({G, Y + H});
  for (int64_t r = 0; r < G; ++r) {
    std::memcpy(w.data() + r * (Y + H), w_ih.data() + r * IW + E, size_t(Y) * sizeof(float));
    std::memcpy(w.data() + r * (Y + H) + Y, w_hh.data() + r * H, size_t(H) * sizeof(float));
  }
  return w;
}

// g = xg_t + [y | h_{t-1}] W_yh^T in one GEMM (xg_t added as it writes g: no
// copy of the input gates first), then the cell: c, h from g and c_prev.
void cell_step(const float* xg, float* g, const float* yh, int64_t ld, int64_t B, int64_t H,
               const PackedB& w_yh_t, const float* c_prev, float* c, float* h) {
  GemmEpilogue in;
  in.add = xg, in.ld_add = 4 * H;
  gemm(B, 1.f, yh, ld, w_yh_t, 0.f, g, 4 * H, in);
  lstm_cell_forward(g, c_prev, c, h, B, H, nullptr);
}

// After the reverse walk: d xg = dG, and [dW_y | dW_hh] = dG^T yh
// in one GEMM over all T*B rows, given as w_ih's gradient (zero in its first E
// columns: input_gates differentiates those) and w_hh's. Indices into g / needs:
// ixg (xg), iih (w_ih), ihh (w_hh).
void cell_grads(const Tensor& dG, const Tensor& yh, int64_t T, int64_t B, int64_t E, int64_t H,
                const std::vector<bool>& needs, size_t ixg, size_t iih, size_t ihh,
                std::vector<Tensor>& g) {
  const int64_t G = 4 * H, YW = yh.size(2), Y = YW - H;
  if (needs[ixg]) g[ixg] = dG;  // xg is time-major as dG: [T,B,G]
  if (!(needs[iih] || needs[ihh])) return;
  Tensor dw({G, YW});
  gemm(true, false, G, YW, T * B, 1.f, dG.data(), G, yh.data(), YW, 0.f, dw.data(), YW);
  if (needs[iih]) {
    g[iih] = Tensor::zeros({G, E + Y});  // [G, E+Y]
    for (int64_t r = 0; r < G; ++r)
      std::memcpy(g[iih].data() + r * (E + Y) + E, dw.data() + r * YW, size_t(Y) * sizeof(float));
  }
  if (needs[ihh]) g[ihh] = qkv::slice(dw, 1, Y, YW);
}

}  // namespace

namespace {

// W_x = w_ih[:, :E] ([G,E]) and b_ih + b_hh (either may be undefined), for emb: [V,E].
std::pair<Var, Var> x_projection(const char* op, const Var& emb, const Var& w_ih, const Var& b_ih,
                                 const Var& b_hh) {
  check(emb.defined() && emb.dim() == 2 && w_ih.defined() && w_ih.dim() == 2 &&
            w_ih.size(1) >= emb.size(1),
        op, ": embedding [V,E] and weight_ih [4H, E + Y] do not fit: ",
        emb.defined() ? emb.shape() : Shape{}, " and ", w_ih.defined() ? w_ih.shape() : Shape{});
  const Var bias = b_ih.defined() && b_hh.defined() ? b_ih + b_hh : b_ih.defined() ? b_ih : b_hh;
  return {slice(w_ih, 1, 0, emb.size(1)), bias};
}

}  // namespace

Var input_gate_table(const Var& emb, int64_t padding_idx, const Var& w_ih, const Var& b_ih,
                     const Var& b_hh) {
  const auto [w_x, bias] = x_projection("input_gate_table", emb, w_ih, b_ih, b_hh);
  // the padding row is taken from emb without a gradient, as Embedding does
  const int64_t V = emb.size(0);
  IntTensor all({V});
  for (int64_t v = 0; v < V; ++v) all.data()[v] = int32_t(v);
  return linear(index_select(emb, all, padding_idx), w_x, bias);
}

Var input_gates(const IntTensor& ids, const Var& emb, int64_t padding_idx, const Var& w_ih,
                const Var& b_ih, const Var& b_hh, bool project_table, float dropout_p,
                Generator* gen) {
  check(!project_table || dropout_p == 0.f, "input_gates: a projected table cannot drop out");
  if (project_table) return index_select(input_gate_table(emb, padding_idx, w_ih, b_ih, b_hh), ids);
  const auto [w_x, bias] = x_projection("input_gates", emb, w_ih, b_ih, b_hh);
  Var x = index_select(emb, ids, padding_idx);  // [...,E]
  if (dropout_p > 0.f) x = dropout(x, dropout_p, true, *gen);
  return linear(x, w_x, bias);
}

CellPack::CellPack(const Var& w_ih, const Var& w_hh, int64_t E)
    : w_ih_src(w_ih.value().data()),
      w_hh_src(w_hh.value().data()),
      w_yh(cell_weights(w_ih.value(), w_hh.value(), E)),
      w_yh_t(true, w_yh.size(1), w_yh.size(0), w_yh.data(), w_yh.size(1)) {}

LuongDecoderPack::LuongDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_c, int64_t E)
    : cell(w_ih, w_hh, E), w_c_t(true, w_c.size(1), w_c.size(0), w_c.value().data(), w_c.size(1)) {}

LuongDecoderOutput luong_decoder(const Var& xg, const Var& h0, const Var& c0, const Var& feed0,
                                 const Var& w_ih, const Var& w_hh, const Var& P, const Var& V,
                                 const Tensor& mask, const Var& w_c, float scale,
                                 const LuongDecoderPack* pack) {
  // plain names, not a structured binding: the lambdas below capture them (clang refuses bindings)
  const Dims dm = check_dims(xg, h0, c0, feed0, w_ih, w_hh, P, V, mask, w_c);
  const int64_t B = dm.B, T = dm.T, E = dm.E, H = dm.H, G = dm.G, F = dm.F, S = dm.S, K = dm.K;
  const Var f0 = feed0.defined() ? feed0 : zeros_var({B, H});
  const int64_t YW = F + H, CW = K + H;  // row widths of fh and cat
  const float *Pd = P.value().data(), *Vd = V.value().data();
  const float* Md = mask.defined() ? mask.data() : nullptr;
  // [W_f | W_hh] and W_c packed: once per call here, or once per decode (pack)
  if (pack)
    check(pack->cell.w_ih_src == w_ih.value().data() &&
              pack->cell.w_hh_src == w_hh.value().data() && pack->cell.w_yh.size(1) == YW &&
              pack->w_c_t.B == w_c.value().data() && pack->w_c_t.K == CW,
          "luong_decoder: the pack was made for other weights");
  std::unique_ptr<CellPack> own_cell;
  std::unique_ptr<PackedB> own_c;
  if (!pack) {
    own_cell = std::make_unique<CellPack>(w_ih, w_hh, E);
    own_c = std::make_unique<PackedB>(true, CW, H, w_c.value().data(), CW);  // W_c^T [K+H,H]
  }
  const PackedB& wyh_t = pack ? pack->cell.w_yh_t : own_cell->w_yh_t;
  const PackedB& wc_t = pack ? pack->w_c_t : *own_c;

  // fh: [T,B,F+H] rows [f_{t-1} | h_{t-1}] (written as the steps run): the A of
  // every recurrent gate GEMM, and backward's dW_f | dW_hh in one GEMM.
  Tensor fh({T, B, YW});
  copy_rows(fh.data(), YW, f0.value().data(), B, F);
  copy_rows(fh.data() + F, YW, h0.value().data(), B, H);
  Tensor act({T, B, G});  // pre-activations: xg + the recurrent part, by step
  const float* xgd = xg.value().data();

  Tensor c_all({T, B, H}), h_all({T, B, H}), cat({T, B, CW}), ht_all({T, B, H}), w_all({T, B, S});
  // Rows never meet in the recurrence: each thread runs every step on its own block of rows.
  parallel_row_blocks(B, T * B * G * YW, [&](int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    const float *Pb = Pd + r0 * S * H, *Vb = Vd + r0 * S * K, *Mb = Md ? Md + r0 * S : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t row = t * B + r0;  // the block's first row at step t
      const float* c_prev = t ? c_all.data() + (row - B) * H : c0.value().data() + r0 * H;
      float *ht = h_all.data() + row * H, *cat_t = cat.data() + row * CW;
      cell_step(xgd + row * G, act.data() + row * G, fh.data() + row * YW, YW, n, H, wyh_t,
                c_prev, c_all.data() + row * H, ht);
      step_attention_forward(n, S, H, K, ht, H, Pb, Vb, Mb, scale, w_all.data() + row * S, S,
                             cat_t, CW);
      copy_rows(cat_t + K, CW, ht, n, H);
      float* z = ht_all.data() + row * H;
      gemm(n, 1.f, cat_t, CW, wc_t, 0.f, z, H);
      unary_forward(UnaryOp::tanh, z, z, n * H);
      if (t + 1 < T) {
        float* next = fh.data() + (row + B) * YW;
        copy_rows(next, YW, z, n, F);
        copy_rows(next + F, YW, ht, n, H);
      }
    }
  });

  LuongDecoderOutput r;
  Tensor h_T({B, H}), c_T({B, H});
  std::memcpy(h_T.data(), h_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::memcpy(c_T.data(), c_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::vector<Var> outs = record_multi(
      "luong_decoder",
      {to_batch_major(ht_all.data(), T, B, H), to_batch_major(w_all.data(), T, B, S), h_T, c_T},
      {xg, h0, c0, f0, w_ih, w_hh, P, V, w_c},
      [fh, act, c_all, h_all, cat, ht_all, w_all, C0 = c0.value(), Pt = P.value(), Vt = V.value(),
       Wi = w_ih.value(), Wh = w_hh.value(), Wct = w_c.value(), scale, B = B, T = T, E = E, H = H,
       G = G, F = F, S = S, K = K](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
        const int64_t CW = K + H;
        const float* dout = d[0].defined() ? d[0].data() : nullptr;
        // d[1]: the weights' gradient [B,T,S], joined per step to the scores' via the context
        Tensor dw_all = d[1].defined() ? Tensor({T, B, S}) : Tensor();
        if (d[1].defined()) to_time_major(d[1].data(), B, T, S, dw_all.data(), S);
        Tensor dh = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
        Tensor dc = d[3].defined() ? d[3].clone() : Tensor::zeros({B, H});
        Tensor dfeed = Tensor::zeros({B, H});
        Tensor dG({T, B, G}), dZ({T, B, H}), dcat({B, CW}), ds({B, S});
        Tensor dP = needs[6] ? Tensor::zeros(Pt.shape()) : Tensor();
        Tensor dV = needs[7] ? Tensor::zeros(Vt.shape()) : Tensor();
        const PackedB wf(false, G, F, Wi.data() + E, E + F);  // W_f [G,F]
        const PackedB whh(false, G, H, Wh.data(), H);         // W_hh [G,H]
        const PackedB wc(false, H, CW, Wct.data(), CW);       // W_c [H,K+H]
        // rows are independent here too: one block of rows per thread, every step
        parallel_row_blocks(B, 2 * T * B * G * (F + H), [&](int64_t r0, int64_t r1) {
          const int64_t n = r1 - r0;
          const float* Pb = Pt.data() + r0 * S * H;
          const float* Vb = Vt.data() + r0 * S * K;
          float* dPb = needs[6] ? dP.data() + r0 * S * H : nullptr;
          float* dVb = needs[7] ? dV.data() + r0 * S * K : nullptr;
          float *dht = dh.data() + r0 * H, *dcb = dc.data() + r0 * H, *dfb = dfeed.data() + r0 * H;
          float *dcatb = dcat.data() + r0 * CW, *dsb = ds.data() + r0 * S;
          for (int64_t t = T - 1; t >= 0; --t) {
            const int64_t row = t * B + r0;
            // h~ = tanh(z): dz = (d h~ from the output + from the next step's input) (1 - h~^2)
            const float* ht = ht_all.data() + row * H;
            float* dz = dZ.data() + row * H;
            for (int64_t b = 0; b < n; ++b)
              for (int64_t j = 0; j < H; ++j) {
                const float y = ht[b * H + j];
                const float o = dout ? dout[((r0 + b) * T + t) * H + j] : 0.f;
                dz[b * H + j] = (o + dfb[b * H + j]) * (1.f - y * y);
              }
            // z = [ctx | h] W_c^T: d[ctx | h] = dz W_c
            gemm(n, 1.f, dz, H, wc, 0.f, dcatb, CW);
            // d h_t: the next step's recurrence + W_c's + attention's
            for (int64_t b = 0; b < n; ++b)
              for (int64_t j = 0; j < H; ++j) dht[b * H + j] += dcatb[b * CW + K + j];
            step_attention_backward(n, S, H, K, h_all.data() + row * H, H, Pb, Vb,
                                    w_all.data() + row * S, S, dcatb, CW,
                                    dw_all.defined() ? dw_all.data() + row * S : nullptr, S, scale,
                                    dht, H, dPb, dVb, dsb);
            const float* c_prev = t ? c_all.data() + (row - B) * H : C0.data() + r0 * H;
            float* dg = dG.data() + row * G;
            lstm_cell_backward(act.data() + row * G, c_prev, c_all.data() + row * H, dht, dcb, dg,
                               n, H, nullptr);
            // g = xg + f W_f^T + h W_hh^T: d f_{t-1} = dg W_f, d h_{t-1} = dg W_hh
            if (F) gemm(n, 1.f, dg, G, wf, 0.f, dfb, H);
            gemm(n, 1.f, dg, G, whh, 0.f, dht, H);
          }
        });
        std::vector<Tensor> g(9);
        cell_grads(dG, fh, T, B, E, H, needs, 0, 4, 5, g);
        if (needs[1]) g[1] = dh;
        if (needs[2]) g[2] = dc;
        if (needs[3] && F) g[3] = dfeed;
        if (needs[6]) g[6] = dP;
        if (needs[7]) g[7] = dV;
        if (needs[8]) {  // dW_c = dZ^T [ctx | h]
          g[8] = Tensor({H, CW});
          gemm(true, false, H, CW, T * B, 1.f, dZ.data(), H, cat.data(), CW, 0.f, g[8].data(), CW);
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

BahdanauDims check_bahdanau(const Var& xg, const Var& h0, const Var& c0, const Var& w_ih,
                            const Var& w_hh, const Var& w_q, const Var& KP, const Var& v,
                            const Var& V, const Tensor& mask) {
  const char* op = "bahdanau_decoder";
  const auto [B, T, H] = check_cell(op, xg, h0, c0, w_hh);
  const int64_t G = 4 * H;
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
  const int64_t E = check_w_ih(op, w_ih, G, K, "the context last");
  check(!mask.defined() || mask.shape() == Shape{B, S}, op, ": mask must be [", B, ",", S,
        "], got ", mask.defined() ? mask.shape() : Shape{});
  return {B, T, E, H, G, S, A, K};
}

}  // namespace

BahdanauDecoderPack::BahdanauDecoderPack(const Var& w_ih, const Var& w_hh, const Var& w_q,
                                         int64_t E)
    : cell(w_ih, w_hh, E), w_q_t(true, w_q.size(1), w_q.size(0), w_q.value().data(), w_q.size(1)) {}

BahdanauDecoderOutput bahdanau_decoder(const Var& xg, const Var& h0, const Var& c0, const Var& w_ih,
                                       const Var& w_hh, const Var& w_q, const Var& KP, const Var& v,
                                       const Var& V, const Tensor& mask,
                                       const BahdanauDecoderPack* pack) {
  const BahdanauDims dm = check_bahdanau(xg, h0, c0, w_ih, w_hh, w_q, KP, v, V, mask);
  const int64_t B = dm.B, T = dm.T, E = dm.E, H = dm.H, G = dm.G, S = dm.S, A = dm.A, K = dm.K;
  const int64_t YW = K + H, OW = H + K;  // row widths of ch and of the output
  const float *KPd = KP.value().data(), *vd = v.value().data(), *Vd = V.value().data();
  const float* Md = mask.defined() ? mask.data() : nullptr;
  if (pack)
    check(pack->cell.w_ih_src == w_ih.value().data() &&
              pack->cell.w_hh_src == w_hh.value().data() && pack->cell.w_yh.size(1) == YW &&
              pack->w_q_t.B == w_q.value().data() && pack->w_q_t.N == A,
          "bahdanau_decoder: the pack was made for other weights");
  std::unique_ptr<CellPack> own_cell;
  std::unique_ptr<PackedB> own_q;
  if (!pack) {
    own_cell = std::make_unique<CellPack>(w_ih, w_hh, E);
    own_q = std::make_unique<PackedB>(true, H, A, w_q.value().data(), H);  // W^T [H,A]
  }
  const PackedB& wyh_t = pack ? pack->cell.w_yh_t : own_cell->w_yh_t;
  const PackedB& wq_t = pack ? pack->w_q_t : *own_q;

  // ch: [T,B,K+H] rows [ctx_t | h_{t-1}] (written as the steps run)
  Tensor ch({T, B, YW});
  copy_rows(ch.data() + K, YW, h0.value().data(), B, H);
  Tensor act({T, B, G});  // pre-activations, as Luong's
  const float* xgd = xg.value().data();

  Tensor c_all({T, B, H}), h_all({T, B, H}), qp_all({T, B, A}), w_all({T, B, S});
  parallel_row_blocks(B, T * B * G * YW, [&](int64_t r0, int64_t r1) {  // rows apart, as Luong's
    const int64_t n = r1 - r0;
    const float *KPb = KPd + r0 * S * A, *Vb = Vd + r0 * S * K, *Mb = Md ? Md + r0 * S : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t rw = t * B + r0;
      float* row = ch.data() + rw * YW;
      float* qp = qp_all.data() + rw * A;
      // attend from s_{t-1}: qp = h_{t-1} W^T, ctx_t into the row's context columns
      gemm(n, 1.f, row + K, YW, wq_t, 0.f, qp, A);
      additive_attention_forward(n, S, A, K, qp, A, KPb, vd, Vb, Mb, w_all.data() + rw * S, S, row,
                                 YW);
      const float* c_prev = t ? c_all.data() + (rw - B) * H : c0.value().data() + r0 * H;
      float* ht = h_all.data() + rw * H;
      cell_step(xgd + rw * G, act.data() + rw * G, row, YW, n, H, wyh_t, c_prev,
                c_all.data() + rw * H, ht);
      if (t + 1 < T) copy_rows(ch.data() + (rw + B) * YW + K, YW, ht, n, H);
    }
  });

  // out[b,t] = [h_t | ctx_t]: the output layer's input
  Tensor out({B, T, OW});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* o = out.data() + (b * T + t) * OW;
      std::memcpy(o, h_all.data() + (t * B + b) * H, size_t(H) * sizeof(float));
      std::memcpy(o + H, ch.data() + (t * B + b) * YW, size_t(K) * sizeof(float));
    }
  Tensor h_T({B, H}), c_T({B, H});
  std::memcpy(h_T.data(), h_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::memcpy(c_T.data(), c_all.data() + (T - 1) * B * H, size_t(B * H) * sizeof(float));
  std::vector<Var> outs =
      record_multi("bahdanau_decoder", {out, to_batch_major(w_all.data(), T, B, S), h_T, c_T},
                   {xg, h0, c0, w_ih, w_hh, w_q, KP, v, V},
                   [ch, act, c_all, qp_all, w_all, C0 = c0.value(), KPt = KP.value(),
                    vt = v.value(), Vt = V.value(), Wi = w_ih.value(), Wh = w_hh.value(),
                    Wqt = w_q.value(), B = B, T = T, E = E, H = H, G = G, S = S, A = A,
                    K = K](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
                     const int64_t YW = K + H, OW = H + K;
                     const float* dout = d[0].defined() ? d[0].data() : nullptr;
                     Tensor dw_all = d[1].defined() ? Tensor({T, B, S}) : Tensor();
                     if (d[1].defined()) to_time_major(d[1].data(), B, T, S, dw_all.data(), S);
                     Tensor dh = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
                     Tensor dc = d[3].defined() ? d[3].clone() : Tensor::zeros({B, H});
                     Tensor dG({T, B, G}), dQP = Tensor::zeros({T, B, A}), dctx({B, K}), ds({B, S});
                     Tensor dv_rows = Tensor::zeros({B, A});
                     Tensor dKP = needs[6] ? Tensor::zeros(KPt.shape()) : Tensor();
                     Tensor dV = needs[8] ? Tensor::zeros(Vt.shape()) : Tensor();
                     const PackedB wc(false, G, K, Wi.data() + E, E + K);  // W_ctx [G,K]
                     const PackedB whh(false, G, H, Wh.data(), H);         // W_hh [G,H]
                     const PackedB wq(false, A, H, Wqt.data(), H);         // W [A,H]
                     parallel_row_blocks(B, 2 * T * B * G * YW, [&](int64_t r0, int64_t r1) {
                       const int64_t n = r1 - r0;
                       const float *KPb = KPt.data() + r0 * S * A, *Vb = Vt.data() + r0 * S * K;
                       float* dKPb = needs[6] ? dKP.data() + r0 * S * A : nullptr;
                       float* dVb = needs[8] ? dV.data() + r0 * S * K : nullptr;
                       float* dvb = needs[7] ? dv_rows.data() + r0 * A : nullptr;
                       float *dhb = dh.data() + r0 * H, *dcb = dc.data() + r0 * H;
                       float *dctxb = dctx.data() + r0 * K, *dsb = ds.data() + r0 * S;
                       for (int64_t t = T - 1; t >= 0; --t) {
                         const int64_t rw = t * B + r0;
                         // out_t = [h_t | ctx_t]: d h_t += its h part; d ctx_t = its ctx part
                         // (+ the cell's below)
                         for (int64_t b = 0; b < n; ++b) {
                           const float* o = dout ? dout + ((r0 + b) * T + t) * OW : nullptr;
                           for (int64_t j = 0; j < H; ++j) dhb[b * H + j] += o ? o[j] : 0.f;
                           for (int64_t k = 0; k < K; ++k) dctxb[b * K + k] = o ? o[H + k] : 0.f;
                         }
                         const float* c_prev = t ? c_all.data() + (rw - B) * H : C0.data() + r0 * H;
                         float* dg = dG.data() + rw * G;
                         lstm_cell_backward(act.data() + rw * G, c_prev, c_all.data() + rw * H,
                                            dhb, dcb, dg, n, H, nullptr);
                         // g = xg + ctx W_ctx^T + h_{t-1} W_hh^T: d ctx += dg W_ctx,
                         // d h_{t-1} = dg W_hh
                         gemm(n, 1.f, dg, G, wc, 1.f, dctxb, K);
                         gemm(n, 1.f, dg, G, whh, 0.f, dhb, H);
                         float* dqp = dQP.data() + rw * A;
                         additive_attention_backward(
                             n, S, A, K, qp_all.data() + rw * A, A, KPb, vt.data(), Vb,
                             w_all.data() + rw * S, S, dctxb, K,
                             dw_all.defined() ? dw_all.data() + rw * S : nullptr, S, dqp, A, dKPb,
                             dVb, dvb, dsb);
                         gemm(n, 1.f, dqp, A, wq, 1.f, dhb, H);  // qp = h_{t-1} W^T
                       }
                     });
                     std::vector<Tensor> g(9);
                     cell_grads(dG, ch, T, B, E, H, needs, 0, 3, 4, g);
                     if (needs[1]) g[1] = dh;
                     if (needs[2]) g[2] = dc;
                     if (needs[5]) {  // dW = dQP^T h_prev over all T*B rows
                       g[5] = Tensor({A, H});
                       gemm(true, false, A, H, T * B, 1.f, dQP.data(), A, ch.data() + K, YW, 0.f,
                            g[5].data(), H);
                     }
                     if (needs[6]) g[6] = dKP;
                     if (needs[7]) {  // dv = the rows' sums, in row order
                       g[7] = Tensor::zeros(vt.shape());
                       for (int64_t b = 0; b < B; ++b)
                         for (int64_t a = 0; a < A; ++a)
                           g[7].data()[a] += dv_rows.data()[b * A + a];
                     }
                     if (needs[8]) g[8] = dV;
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

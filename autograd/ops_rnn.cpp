// One layer, one direction of an LSTM or GRU over a whole sequence, as one
// autograd op with a hand-written backward through time.
//
// Forward: the input projection of all T steps is one GEMM ([T*B, I] x
// W_ih^T); each step then adds h W_hh^T with a GEMM on W_hh^T packed once per
// call (PackedB: no per-step packing or transposing), and the fused cell
// kernel applies the gates. Backward walks the steps in reverse with one
// [B,G] x W_hh GEMM per step (W_hh packed once), then gets dW_ih,
// dW_hh, the biases and dx from single GEMMs / column sums over all T*B rows.
//
// Lengths: a row b is active at time t when t < len[b]. Inactive steps leave
// the state untouched, output zero and pass gradients straight through, so a
// reverse direction starts at each sequence's own last step, as PyTorch's
// packed sequences do.
#include <cstring>

#include "autograd/ops.h"
#include "engine/threads.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/reduce.h"
#include "engine/kernels/rnn_cell.h"

namespace qkv {
namespace {

// active[t*B + b] = t < len[b] (all ones without lengths).
std::vector<uint8_t> active_mask(const IntTensor* lengths, int64_t T, int64_t B, const char* op) {
  std::vector<uint8_t> m(size_t(T * B), 1);
  if (!lengths) return m;
  check(lengths->dim() == 1 && lengths->numel() == B, op, ": lengths has shape ", lengths->shape(),
        ", expected [", B, "]");
  for (int64_t b = 0; b < B; ++b) {
    const int32_t len = lengths->data()[b];
    check(len >= 1 && len <= T, op, ": length ", len, " of sequence ", b, " out of range [1,", T,
          "]");
    for (int64_t t = len; t < T; ++t) m[size_t(t * B + b)] = 0;
  }
  return m;
}

Var zeros_var(Shape s) { return Var(Tensor::zeros(std::move(s)), false); }

// rows of dst += rows of src where active (both [B,H]).
void add_active_rows(float* dst, const float* src, const uint8_t* active, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b)
    if (active[b])
      for (int64_t j = 0; j < H; ++j) dst[b * H + j] += src[b * H + j];
}

// rows of dst = rows of src where active.
void copy_active_rows(float* dst, const float* src, const uint8_t* active, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b)
    if (active[b]) std::memcpy(dst + b * H, src + b * H, size_t(H) * sizeof(float));
}

struct Dims {
  int64_t T, B, I, H, G;
};

Dims check_dims(const char* op, const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh,
                const Var& b_ih, const Var& b_hh, int64_t gates) {
  check(x.dim() == 3, op, ": x must be [T,B,I], got ", x.shape());
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2);
  check(w_hh.dim() == 2 && w_hh.size(0) % gates == 0, op, ": weight_hh has shape ", w_hh.shape(),
        ", expected [", gates, "*H,H]");
  const int64_t H = w_hh.size(1), G = gates * H;
  check(w_hh.size(0) == G, op, ": weight_hh has shape ", w_hh.shape(), ", expected [", G, ",", H,
        "]");
  check(w_ih.shape() == Shape{G, I}, op, ": weight_ih has shape ", w_ih.shape(), ", expected [", G,
        ",", I, "] for input ", x.shape());
  check(b_ih.shape() == Shape{G} && b_hh.shape() == Shape{G}, op, ": biases have shapes ",
        b_ih.shape(), " and ", b_hh.shape(), ", expected [", G, "]");
  check(h0.shape() == Shape{B, H}, op, ": h0 has shape ", h0.shape(), ", expected [", B, ",", H,
        "]");
  return {T, B, I, H, G};
}

// Rows of padded steps are never written: zero them only when lengths can
// make a row inactive; otherwise every element is overwritten anyway.
Tensor buffer(Shape s, bool padded) {
  return padded ? Tensor::zeros(std::move(s)) : Tensor(std::move(s));
}

// [rows, G] = bias broadcast to every row (the C of a beta = 1 GEMM).
Tensor rows_of(const Tensor& bias, int64_t rows, int64_t G) {
  Tensor t({rows, G});
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(t.data() + r * G, bias.data(), size_t(G) * sizeof(float));
  return t;
}

// [rows, G] column sums -> [G]
Tensor col_sum(const Tensor& m, int64_t G) { return reduce(ReduceOp::sum, m.view({-1, G}), 0); }

// ---- the LSTM recurrence both entries share --------------------------------------
// xg: [T,B,G] the input's share of the gates (x W_ih^T + biases); act: [T,B,G]
// receives xg + h_{t-1} W_hh^T step by step, activated in place. xg may be act
// itself (completed in place) or a tensor the caller keeps (each step's GEMM
// then adds its rows as it writes act's: no copy of xg first). hp: rows
// t*B+b, ld apart, whose columns [0,H) receive h_{t-1} (the A of backward's
// dW_hh GEMM).
struct LstmSteps {
  Tensor out, c_prev, c_all;  // [T,B,H]: outputs, c_{t-1}, c_t
  Tensor h, c;                // [B,H] the final state
};

LstmSteps lstm_steps(const float* xg, Tensor& act, float* hp, int64_t ld, const Tensor& w_hh,
                     const Tensor& h0, const Tensor& c0, const std::vector<uint8_t>& active,
                     bool reverse, bool padded, int64_t T, int64_t B, int64_t H) {
  const int64_t G = 4 * H;
  const PackedB whh_t(true, H, G, w_hh.data(), H);  // W_hh^T [H,G], packed for all steps
  LstmSteps r{buffer({T, B, H}, padded), Tensor({T, B, H}), Tensor({T, B, H}), h0.clone(),
              c0.clone()};
  // Rows never meet in the recurrence: each thread runs every step on its own
  // block of rows (no fork and join per step; its GEMMs run on one thread).
  parallel_row_blocks(B, T * B * G * H, [&](int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    float *h = r.h.data() + r0 * H, *c = r.c.data() + r0 * H;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s, row = t * B + r0;
      float* g = act.data() + row * G;
      for (int64_t b = 0; b < n; ++b)
        std::memcpy(hp + (row + b) * ld, h + b * H, size_t(H) * sizeof(float));
      std::memcpy(r.c_prev.data() + row * H, c, size_t(n * H) * sizeof(float));
      if (xg == act.data()) {
        gemm(n, 1.f, h, H, whh_t, 1.f, g, G);
      } else {
        GemmEpilogue in;
        in.add = xg + row * G, in.ld_add = G;
        gemm(n, 1.f, h, H, whh_t, 0.f, g, G, in);
      }
      const uint8_t* a = active.data() + row;
      float *ct = r.c_all.data() + row * H, *ht = r.out.data() + row * H;
      lstm_cell_forward(g, c, ct, ht, n, H, a);
      copy_active_rows(h, ht, a, n, H);
      copy_active_rows(c, ct, a, n, H);
    }
  });
  return r;
}

// Backward through the steps: -> dG [T,B,G], the gates' gradient; dh and dc
// come in as the final state's gradients and leave as h0's and c0's.
// dout: [T,B,H] or null.
Tensor lstm_steps_backward(const float* dout, Tensor& dh, Tensor& dc, const Tensor& act,
                           const LstmSteps& f, const Tensor& w_hh,
                           const std::vector<uint8_t>& active, bool reverse, bool padded, int64_t T,
                           int64_t B, int64_t H) {
  const int64_t G = 4 * H;
  Tensor dG = buffer({T, B, G}, padded), tmp({B, H});
  const PackedB whh(false, G, H, w_hh.data(), H);  // W_hh [G,H], packed for all steps
  parallel_row_blocks(B, 2 * T * B * G * H, [&](int64_t r0, int64_t r1) {  // as lstm_steps
    const int64_t n = r1 - r0;
    float *dhb = dh.data() + r0 * H, *dcb = dc.data() + r0 * H, *tb = tmp.data() + r0 * H;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = reverse ? T - 1 - s : s, row = t * B + r0;
      const uint8_t* a = active.data() + row;
      if (dout) add_active_rows(dhb, dout + row * H, a, n, H);
      float* dg = dG.data() + row * G;
      lstm_cell_backward(act.data() + row * G, f.c_prev.data() + row * H,
                         f.c_all.data() + row * H, dhb, dcb, dg, n, H, a);
      gemm(n, 1.f, dg, G, whh, 0.f, tb, H);
      copy_active_rows(dhb, tb, a, n, H);  // inactive rows pass through
    }
  });
  return dG;
}

// Undefined initial states and biases as zeros.
Var or_zeros(const Var& v, Shape s) { return v.defined() ? v : zeros_var(std::move(s)); }

}  // namespace

std::vector<Var> lstm_layer(const Var& x, const Var& h0_in, const Var& c0_in, const Var& w_ih,
                            const Var& w_hh, const Var& b_ih_in, const Var& b_hh_in,
                            const IntTensor* lengths, bool reverse) {
  const char* op = "lstm";
  check(w_hh.dim() == 2, op, ": weight_hh must be [4H,H], got ", w_hh.shape());
  const int64_t H0 = w_hh.size(1), G0 = 4 * H0;
  const int64_t B0 = x.dim() == 3 ? x.size(1) : 0;
  const Var h0 = or_zeros(h0_in, {B0, H0}), c0 = or_zeros(c0_in, {B0, H0});
  const Var b_ih = or_zeros(b_ih_in, {G0}), b_hh = or_zeros(b_hh_in, {G0});
  const auto [T, B, I, H, G] = check_dims(op, x, h0, w_ih, w_hh, b_ih, b_hh, 4);
  check(c0.shape() == Shape{B, H}, op, ": c0 has shape ", c0.shape(), ", expected [", B, ",", H,
        "]");
  const std::vector<uint8_t> active = active_mask(lengths, T, B, op);

  // xh: [T*B, I+H] rows [x_t | h_{t-1}] (h written as the steps run). Backward
  // gets both weight gradients from one GEMM dG^T [x | h_prev], packing the
  // large dG^T once instead of twice.
  const bool padded = lengths != nullptr;
  const int64_t XH = I + H;
  Tensor xh({T * B, XH});
  for (int64_t r = 0; r < T * B; ++r)
    std::memcpy(xh.data() + r * XH, x.value().data() + r * I, size_t(I) * sizeof(float));
  // act: pre-activations of all steps = b_ih + b_hh + x W_ih^T (one GEMM onto
  // the biases), then activated in place step by step.
  Tensor act = rows_of(qkv::add(b_ih.value(), b_hh.value()), T * B, G).view({T, B, G});
  gemm(false, true, T * B, G, I, 1.f, xh.data(), XH, w_ih.value().data(), I, 1.f, act.data(), G);
  LstmSteps f = lstm_steps(act.data(), act, xh.data() + I, XH, w_hh.value(), h0.value(),
                           c0.value(), active, reverse, padded, T, B, H);

  return record_multi(
      "lstm", {f.out, f.h, f.c}, {x, h0, c0, w_ih, w_hh, b_ih, b_hh},
      [xh, Wih = w_ih.value(), Whh = w_hh.value(), act, f, active, reverse, padded, T = T, B = B,
       I = I, H = H, G = G](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
        Tensor dh = d[1].defined() ? d[1].clone() : Tensor::zeros({B, H});
        Tensor dc = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
        Tensor dG = lstm_steps_backward(d[0].defined() ? d[0].data() : nullptr, dh, dc, act, f, Whh,
                                        active, reverse, padded, T, B, H);
        std::vector<Tensor> g(7);
        if (needs[0]) {
          g[0] = Tensor({T, B, I});
          gemm(false, false, T * B, I, G, 1.f, dG.data(), G, Wih.data(), I, 0.f, g[0].data(), I);
        }
        if (needs[1]) g[1] = dh;
        if (needs[2]) g[2] = dc;
        // dW_ih = dG^T x and dW_hh = dG^T h_prev: one GEMM over [x | h_prev] when
        // both are needed (dG^T is packed once), else the one that is.
        const int64_t XH = I + H;
        if (needs[3] && needs[4]) {
          Tensor dw({G, XH});
          gemm(true, false, G, XH, T * B, 1.f, dG.data(), G, xh.data(), XH, 0.f, dw.data(), XH);
          g[3] = qkv::slice(dw, 1, 0, I);
          g[4] = qkv::slice(dw, 1, I, XH);
        } else if (needs[3]) {
          g[3] = Tensor({G, I});
          gemm(true, false, G, I, T * B, 1.f, dG.data(), G, xh.data(), XH, 0.f, g[3].data(), I);
        } else if (needs[4]) {
          g[4] = Tensor({G, H});
          gemm(true, false, G, H, T * B, 1.f, dG.data(), G, xh.data() + I, XH, 0.f, g[4].data(), H);
        }
        if (needs[5] || needs[6]) {
          Tensor db = col_sum(dG, G);
          if (needs[5]) g[5] = db;
          if (needs[6]) g[6] = needs[5] ? db.clone() : db;
        }
        return g;
      });
}

std::vector<Var> lstm_layer_gates(const Var& xg, const Var& h0_in, const Var& c0_in,
                                  const Var& w_hh, const IntTensor* lengths, bool reverse) {
  const char* op = "lstm_gates";
  check(w_hh.defined() && w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1), op,
        ": weight_hh must be [4H,H], got ", w_hh.defined() ? w_hh.shape() : Shape{});
  const int64_t H = w_hh.size(1), G = 4 * H;
  check(xg.defined() && xg.dim() == 3 && xg.size(2) == G, op, ": the input gates must be [T,B,", G,
        "], got ", xg.defined() ? xg.shape() : Shape{});
  const int64_t T = xg.size(0), B = xg.size(1);
  const Var h0 = or_zeros(h0_in, {B, H}), c0 = or_zeros(c0_in, {B, H});
  for (const Var* s : {&h0, &c0})
    check(s->shape() == Shape{B, H}, op, ": h0, c0 must be [", B, ",", H, "], got ", s->shape());
  const std::vector<uint8_t> active = active_mask(lengths, T, B, op);
  const bool padded = lengths != nullptr;
  Tensor act({T, B, G}), hp({T * B, H});
  LstmSteps f = lstm_steps(xg.value().data(), act, hp.data(), H, w_hh.value(), h0.value(),
                           c0.value(), active, reverse, padded, T, B, H);
  return record_multi(
      "lstm_gates", {f.out, f.h, f.c}, {xg, h0, c0, w_hh},
      [hp, Whh = w_hh.value(), act, f, active, reverse, padded, T = T, B = B, H = H, G = G](
          const std::vector<Tensor>& d, const std::vector<bool>& needs) {
        Tensor dh = d[1].defined() ? d[1].clone() : Tensor::zeros({B, H});
        Tensor dc = d[2].defined() ? d[2].clone() : Tensor::zeros({B, H});
        Tensor dG = lstm_steps_backward(d[0].defined() ? d[0].data() : nullptr, dh, dc, act, f, Whh,
                                        active, reverse, padded, T, B, H);
        std::vector<Tensor> g(4);
        if (needs[1]) g[1] = dh;
        if (needs[2]) g[2] = dc;
        if (needs[3]) {  // dW_hh = dG^T h_prev over all T*B rows
          g[3] = Tensor({G, H});
          gemm(true, false, G, H, T * B, 1.f, dG.data(), G, hp.data(), H, 0.f, g[3].data(), H);
        }
        if (needs[0]) g[0] = std::move(dG);
        return g;
      });
}

std::vector<Var> gru_layer(const Var& x, const Var& h0_in, const Var& w_ih, const Var& w_hh,
                           const Var& b_ih_in, const Var& b_hh_in, const IntTensor* lengths,
                           bool reverse) {
  const char* op = "gru";
  check(w_hh.dim() == 2, op, ": weight_hh must be [3H,H], got ", w_hh.shape());
  const int64_t H0 = w_hh.size(1), G0 = 3 * H0;
  const int64_t B0 = x.dim() == 3 ? x.size(1) : 0;
  const Var h0 = h0_in.defined() ? h0_in : zeros_var({B0, H0});
  const Var b_ih = b_ih_in.defined() ? b_ih_in : zeros_var({G0});
  const Var b_hh = b_hh_in.defined() ? b_hh_in : zeros_var({G0});
  const auto [T, B, I, H, G] = check_dims(op, x, h0, w_ih, w_hh, b_ih, b_hh, 3);
  const std::vector<uint8_t> active = active_mask(lengths, T, B, op);

  // gx: input parts of all steps (b_ih + x W_ih^T, one GEMM onto the bias);
  // gh: hidden parts, b_hh + h W_hh^T per step.
  const bool padded = lengths != nullptr;
  Tensor gx = rows_of(b_ih.value(), T * B, G).view({T, B, G});
  gemm(false, true, T * B, G, I, 1.f, x.value().data(), I, w_ih.value().data(), I, 1.f, gx.data(),
       G);
  Tensor gh = rows_of(b_hh.value(), T * B, G).view({T, B, G});
  const PackedB whh_t(true, H, G, w_hh.value().data(), H);  // W_hh^T [H,G], packed for all steps

  Tensor out = buffer({T, B, H}, padded), act({T, B, G}), h_prev({T, B, H});
  Tensor h = h0.value().clone();
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    std::memcpy(h_prev.data() + t * B * H, h.data(), size_t(B * H) * sizeof(float));
    float* ght = gh.data() + t * B * G;
    gemm(B, 1.f, h.data(), H, whh_t, 1.f, ght, G);
    const uint8_t* a = active.data() + t * B;
    float* ht = out.data() + t * B * H;
    gru_cell_forward(gx.data() + t * B * G, ght, h.data(), ht, act.data() + t * B * G, B, H, a);
    copy_active_rows(h.data(), ht, a, B, H);
  }

  return record_multi(
      "gru", {out, h}, {x, h0, w_ih, w_hh, b_ih, b_hh},
      [X = x.value(), Wih = w_ih.value(), Whh = w_hh.value(), act, gh, h_prev, active, reverse,
       padded, T = T, B = B, I = I, H = H,
       G = G](const std::vector<Tensor>& d, const std::vector<bool>& needs) {
        Tensor dh = d[1].defined() ? d[1].clone() : Tensor::zeros({B, H});
        Tensor dgx = buffer({T, B, G}, padded), dgh = buffer({T, B, G}, padded);
        Tensor direct({B, H}), tmp({B, H});
        const PackedB whh(false, G, H, Whh.data(), H);  // W_hh [G,H], packed for all steps
        for (int64_t s = T - 1; s >= 0; --s) {
          const int64_t t = reverse ? T - 1 - s : s;
          const uint8_t* a = active.data() + t * B;
          if (d[0].defined()) add_active_rows(dh.data(), d[0].data() + t * B * H, a, B, H);
          float* dght = dgh.data() + t * B * G;
          gru_cell_backward(act.data() + t * B * G, gh.data() + t * B * G,
                            h_prev.data() + t * B * H, dh.data(), dgx.data() + t * B * G, dght,
                            direct.data(), B, H, a);
          gemm(B, 1.f, dght, G, whh, 0.f, tmp.data(), H);
          binary_inplace(BinaryOp::add, tmp, direct);
          copy_active_rows(dh.data(), tmp.data(), a, B, H);  // inactive rows pass through
        }
        std::vector<Tensor> g(6);
        if (needs[0]) {
          g[0] = Tensor({T, B, I});
          gemm(false, false, T * B, I, G, 1.f, dgx.data(), G, Wih.data(), I, 0.f, g[0].data(), I);
        }
        if (needs[1]) g[1] = dh;
        if (needs[2]) {
          g[2] = Tensor({G, I});
          gemm(true, false, G, I, T * B, 1.f, dgx.data(), G, X.data(), I, 0.f, g[2].data(), I);
        }
        if (needs[3]) {
          g[3] = Tensor({G, H});
          gemm(true, false, G, H, T * B, 1.f, dgh.data(), G, h_prev.data(), H, 0.f, g[3].data(), H);
        }
        if (needs[4]) g[4] = col_sum(dgx, G);
        if (needs[5]) g[5] = col_sum(dgh, G);
        return g;
      });
}

// ---- references: the same recurrences from autograd primitives, step by step ----
// Slow and obviously right: the oracle of the fused ops (tests, bench). They
// take defined h0 / c0 / biases.

namespace {
// Step mask [B,1]: 1 where t < len[b].
Var step_mask_ref(const IntTensor* lengths, int64_t t, int64_t B) {
  Tensor m({B, 1});
  for (int64_t b = 0; b < B; ++b) m.data()[b] = (!lengths || t < lengths->data()[b]) ? 1.f : 0.f;
  return Var(m);
}

}  // namespace

std::vector<Var> lstm_layer_ref(const Var& x, const Var& h0, const Var& c0, const Var& wih,
                                const Var& whh, const Var& bih, const Var& bhh,
                                const IntTensor* lengths, bool reverse) {
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = whh.size(1);
  Var h = h0, c = c0;
  std::vector<Var> outs(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Var xt = reshape(slice(x, 0, t, t + 1), {B, I});
    Var g = matmul(xt, wih, false, true) + bih + matmul(h, whh, false, true) + bhh;
    Var i = sigmoid(slice(g, 1, 0, H)), f = sigmoid(slice(g, 1, H, 2 * H));
    Var gg = tanh(slice(g, 1, 2 * H, 3 * H)), o = sigmoid(slice(g, 1, 3 * H, 4 * H));
    Var cn = f * c + i * gg, hn = o * tanh(cn);
    Var m = step_mask_ref(lengths, t, B);
    h = hn * m + h * (1.f - m);
    c = cn * m + c * (1.f - m);
    outs[size_t(t)] = hn * m;
  }
  return {stack(outs, 0), h, c};
}

std::vector<Var> gru_layer_ref(const Var& x, const Var& h0, const Var& wih, const Var& whh,
                               const Var& bih, const Var& bhh, const IntTensor* lengths,
                               bool reverse) {
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = whh.size(1);
  Var h = h0;
  std::vector<Var> outs(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Var xt = reshape(slice(x, 0, t, t + 1), {B, I});
    Var gx = matmul(xt, wih, false, true) + bih, gh = matmul(h, whh, false, true) + bhh;
    Var r = sigmoid(slice(gx, 1, 0, H) + slice(gh, 1, 0, H));
    Var z = sigmoid(slice(gx, 1, H, 2 * H) + slice(gh, 1, H, 2 * H));
    Var n = tanh(slice(gx, 1, 2 * H, 3 * H) + r * slice(gh, 1, 2 * H, 3 * H));
    Var hn = (1.f - z) * n + z * h;
    Var m = step_mask_ref(lengths, t, B);
    h = hn * m + h * (1.f - m);
    outs[size_t(t)] = hn * m;
  }
  return {stack(outs, 0), h};
}

}  // namespace qkv

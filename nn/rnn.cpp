#include "nn/rnn.h"

#include <cmath>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/init.h"

namespace qkv {
namespace {

int64_t gates_of(RNNKind k) { return k == RNNKind::lstm ? 4 : 3; }
const char* name_of(RNNKind k) { return k == RNNKind::lstm ? "LSTM" : "GRU"; }

// torch.nn.RNNBase.reset_parameters: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
// drawn in registration order.
Tensor uniform_init(Shape s, int64_t hidden, Generator& gen) {
  Tensor t(std::move(s));
  const float k = 1.f / std::sqrt(float(hidden));
  init::uniform(t, -k, k, gen);
  return t;
}

// Entry `i` of the first axis of a [L*ND,B,H] state, as [B,H].
Var state_at(const Var& s, int64_t i) {
  if (!s.defined()) return Var();
  return reshape(slice(s, 0, i, i + 1), {s.size(1), s.size(2)});
}

}  // namespace

RNNBase::RNNBase(RNNKind k, const RNNOptions& opt, Generator& gen)
    : options(opt), kind(k), gen_(&gen) {
  const char* nm = name_of(k);
  check(opt.input_size >= 1 && opt.hidden_size >= 1 && opt.num_layers >= 1, nm,
        ": input_size, hidden_size and num_layers must be >= 1, got ", opt.input_size, ", ",
        opt.hidden_size, ", ", opt.num_layers);
  check(opt.dropout >= 0.f && opt.dropout < 1.f, nm, ": dropout must be in [0,1), got ",
        opt.dropout);
  const int64_t ND = opt.bidirectional ? 2 : 1, G = gates_of(k) * opt.hidden_size,
                H = opt.hidden_size;
  for (int64_t l = 0; l < opt.num_layers; ++l)
    for (int64_t dir = 0; dir < ND; ++dir) {
      const std::string sfx = "_l" + std::to_string(l) + (dir ? "_reverse" : "");
      const int64_t in = l == 0 ? opt.input_size : ND * H;
      Weights w;
      w.w_ih = register_parameter("weight_ih" + sfx, uniform_init({G, in}, H, gen));
      w.w_hh = register_parameter("weight_hh" + sfx, uniform_init({G, H}, H, gen));
      if (opt.bias) {
        w.b_ih = register_parameter("bias_ih" + sfx, uniform_init({G}, H, gen));
        w.b_hh = register_parameter("bias_hh" + sfx, uniform_init({G}, H, gen));
      }
      weights_.push_back(w);
    }
}

RNNOutput RNNBase::forward(const Var& x_in, const IntTensor* lengths, const Var& h0,
                           const Var& c0) {
  const char* nm = name_of(kind);
  const RNNOptions& o = options;
  check(x_in.dim() == 3 && x_in.size(2) == o.input_size, nm, ": input has shape ", x_in.shape(),
        ", expected [", o.batch_first ? "B,T," : "T,B,", o.input_size, "]");
  const Var x = o.batch_first ? transpose(x_in, 0, 1) : x_in;  // [T,B,I]
  const int64_t B = x.size(1), ND = o.bidirectional ? 2 : 1, H = o.hidden_size;
  const Shape state_shape = {o.num_layers * ND, B, H};
  if (h0.defined())
    check(h0.shape() == state_shape, nm, ": h0 has shape ", h0.shape(), ", expected ",
          state_shape);
  if (c0.defined())
    check(c0.shape() == state_shape, nm, ": c0 has shape ", c0.shape(), ", expected ",
          state_shape);
  check(kind == RNNKind::lstm || !c0.defined(), nm, ": a GRU has no cell state c0");
  return run_layers(x, nullptr, lengths, h0, c0);
}

RNNOutput RNNBase::forward_gates(const std::vector<Var>& xg, const IntTensor* lengths) {
  const int64_t ND = options.bidirectional ? 2 : 1, G = 4 * options.hidden_size;
  check(kind == RNNKind::lstm, name_of(kind), ": made input gates are for an LSTM only");
  check(int64_t(xg.size()) == ND, "LSTM: expected input gates for ", ND, " direction(s), got ",
        xg.size());
  for (const Var& g : xg)
    check(g.dim() == 3 && g.size(2) == G && g.shape() == xg[0].shape(),
          "LSTM: input gates must be [T,B,", G, "] for every direction, got ", g.shape());
  return run_layers(Var(), &xg, lengths, Var(), Var());
}

RNNOutput RNNBase::run_layers(const Var& x, const std::vector<Var>* xg, const IntTensor* lengths,
                              const Var& h0, const Var& c0) {
  // x: [T,B,I], or layer 0's gates xg[dir]: [T,B,G] -> output [T,B,ND*H] (batch_first: [B,T,..])
  const RNNOptions& o = options;
  const int64_t ND = o.bidirectional ? 2 : 1;
  Var layer_in = x;
  std::vector<Var> hs, cs;
  for (int64_t l = 0; l < o.num_layers; ++l) {
    std::vector<Var> outs;
    for (int64_t dir = 0; dir < ND; ++dir) {
      const Weights& w = weights_[size_t(l * ND + dir)];
      const int64_t idx = l * ND + dir;
      std::vector<Var> r =
          l == 0 && xg ? lstm_layer_gates((*xg)[size_t(dir)], Var(), Var(), w.w_hh, lengths, dir == 1)
          : kind == RNNKind::lstm
              ? lstm_layer(layer_in, state_at(h0, idx), state_at(c0, idx), w.w_ih, w.w_hh, w.b_ih,
                           w.b_hh, lengths, dir == 1)
              : gru_layer(layer_in, state_at(h0, idx), w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths,
                          dir == 1);
      outs.push_back(r[0]);
      hs.push_back(r[1]);
      if (kind == RNNKind::lstm) cs.push_back(r[2]);
    }
    layer_in = ND == 2 ? concat(outs, -1) : outs[0];
    if (l + 1 < o.num_layers && o.dropout > 0.f)
      layer_in = dropout(layer_in, o.dropout, training(), *gen_);
  }
  RNNOutput out;
  out.output = o.batch_first ? transpose(layer_in, 0, 1) : layer_in;
  out.h_n = stack(hs, 0);
  if (kind == RNNKind::lstm) out.c_n = stack(cs, 0);
  return out;
}

std::string RNNBase::describe() const {
  const RNNOptions& o = options;
  std::string s = std::string(name_of(kind)) + "(" + std::to_string(o.input_size) + ", " +
                  std::to_string(o.hidden_size);
  if (o.num_layers != 1) s += ", num_layers=" + std::to_string(o.num_layers);
  if (!o.bias) s += ", bias=false";
  if (o.batch_first) s += ", batch_first=true";
  if (o.dropout > 0.f) s += ", dropout=" + std::to_string(o.dropout);
  if (o.bidirectional) s += ", bidirectional=true";
  return s + ")";
}

// ---- cells: one step of the fused sequence op (T = 1) -------------------------------

namespace {
void check_cell(const char* nm, int64_t in, int64_t hidden) {
  check(in >= 1 && hidden >= 1, nm, ": input_size and hidden_size must be >= 1, got ", in, " and ",
        hidden);
}
Var as_step(const char* nm, const Var& x, int64_t in) {
  check(x.dim() == 2 && x.size(1) == in, nm, ": input has shape ", x.shape(), ", expected [B,",
        in, "]");
  return reshape(x, {1, x.size(0), in});
}
}  // namespace

LSTMCell::LSTMCell(int64_t in, int64_t hidden, Generator& gen, bool bias)
    : input_size(in), hidden_size(hidden) {
  check_cell("LSTMCell", in, hidden);
  weight_ih = register_parameter("weight_ih", uniform_init({4 * hidden, in}, hidden, gen));
  weight_hh = register_parameter("weight_hh", uniform_init({4 * hidden, hidden}, hidden, gen));
  if (bias) {
    bias_ih = register_parameter("bias_ih", uniform_init({4 * hidden}, hidden, gen));
    bias_hh = register_parameter("bias_hh", uniform_init({4 * hidden}, hidden, gen));
  }
}

CellState LSTMCell::forward(const Var& x, const CellState& st) {
  auto r = lstm_layer(as_step("LSTMCell", x, input_size), st.h, st.c, weight_ih, weight_hh,
                      bias_ih, bias_hh, nullptr, false);
  return {r[1], r[2]};
}

std::string LSTMCell::describe() const {
  return "LSTMCell(" + std::to_string(input_size) + ", " + std::to_string(hidden_size) + ")";
}

GRUCell::GRUCell(int64_t in, int64_t hidden, Generator& gen, bool bias)
    : input_size(in), hidden_size(hidden) {
  check_cell("GRUCell", in, hidden);
  weight_ih = register_parameter("weight_ih", uniform_init({3 * hidden, in}, hidden, gen));
  weight_hh = register_parameter("weight_hh", uniform_init({3 * hidden, hidden}, hidden, gen));
  if (bias) {
    bias_ih = register_parameter("bias_ih", uniform_init({3 * hidden}, hidden, gen));
    bias_hh = register_parameter("bias_hh", uniform_init({3 * hidden}, hidden, gen));
  }
}

Var GRUCell::forward(const Var& x, const Var& h) {
  return gru_layer(as_step("GRUCell", x, input_size), h, weight_ih, weight_hh, bias_ih, bias_hh,
                   nullptr, false)[1];
}

std::string GRUCell::describe() const {
  return "GRUCell(" + std::to_string(input_size) + ", " + std::to_string(hidden_size) + ")";
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs RNNBase::forward_named(NamedInputs& in) {
  // input: [T,B,I] or [B,T,I]; h0, c0: [L*ND,B,H]; lengths: [B]
  const Var x = in.tensor("input"), h0 = in.optional("h0");
  const Var c0 = kind == RNNKind::lstm ? in.optional("c0") : Var();
  const RNNOutput o = forward(x, in.optional_ids("lengths"), h0, c0);
  return {{"output", o.output}, {"h_n", o.h_n}, {"c_n", o.c_n}};
}

NamedOutputs LSTMCell::forward_named(NamedInputs& in) {
  const Var x = in.tensor("input");
  const CellState s = forward(x, {in.optional("hx"), in.optional("cx")});
  return {{"h_1", s.h}, {"c_1", s.c}};
}

NamedOutputs GRUCell::forward_named(NamedInputs& in) {
  const Var x = in.tensor("input");
  return {{"h_1", forward(x, in.optional("hx"))}};
}

}  // namespace qkv

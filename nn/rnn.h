// Recurrent networks with torch.nn.LSTM / torch.nn.GRU's options, parameter
// names (weight_ih_l{k}[_reverse], weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k})
// and gate order (LSTM: i, f, g, o; GRU: r, z, n), plus LSTMCell / GRUCell.
//
// Lengths: a padded batch with per-sequence lengths behaves like PyTorch's
// pack_padded_sequence(enforce_sorted=False) -> pad_packed_sequence: outputs at
// padded steps are zero, h_n / c_n are the states at each sequence's last
// valid step (the reverse direction starts there), and padding receives no
// gradient. Shapes (ND = 2 directions if bidirectional else 1, L = num_layers,
// I = input_size, H = hidden_size):
//   x: [T,B,I] ([B,T,I] batch_first)  ->  output: [T,B,ND*H] ([B,T,ND*H])
//   h0, c0, h_n, c_n: [L*ND,B,H]  (index = layer * ND + direction)
#pragma once
#include "nn/enum_names.h"
#include "nn/module.h"

namespace qkv {

class Generator;

struct RNNOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  float dropout = 0.f;  // between layers, in training mode only
  bool bidirectional = false;
};

struct RNNOutput {
  Var output;  // [T,B,ND*H] or [B,T,ND*H]
  Var h_n;     // [L*ND,B,H]
  Var c_n;     // [L*ND,B,H], LSTM only (undefined for GRU)
};

enum class RNNKind { lstm, gru };
inline constexpr EnumName<RNNKind> kRnnKindNames[] = {{RNNKind::lstm, "lstm"},
                                                      {RNNKind::gru, "gru"}};
constexpr std::span<const EnumName<RNNKind>> enum_names(RNNKind) { return kRnnKindNames; }

// Shared by LSTM and GRU: parameters, initialisation U(-1/sqrt(H), 1/sqrt(H)),
// the layer/direction loop, lengths and dropout between layers.
class RNNBase : public Module {
 public:
  RNNBase(RNNKind kind, const RNNOptions& opt, Generator& gen);
  // lengths: [B] int32 in [1, T], or null (all T). h0/c0 undefined = zeros.
  RNNOutput forward(const Var& x, const IntTensor* lengths = nullptr, const Var& h0 = Var(),
                    const Var& c0 = Var());
  // An LSTM's forward with layer 0's input projection made outside (as
  // Seq2SeqEncoder does from a projected embedding table): xg[dir] = x W_ih^T +
  // b_ih + b_hh of that direction's weights, [T,B,4H] time-major whatever
  // batch_first says (the output follows batch_first); zero initial states.
  RNNOutput forward_gates(const std::vector<Var>& xg, const IntTensor* lengths = nullptr);
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input, h0, c0, lengths -> output, h_n, c_n.
  NamedOutputs forward_named(NamedInputs& in) override;

  RNNOptions options;
  RNNKind kind;

  // Per (layer, direction): the four parameters, in weights()[layer * ND + dir].
  // G gate rows: 4H (LSTM: i, f, g, o) or 3H (GRU: r, z, n); in = I, or ND*H above layer 0.
  struct Weights {
    Var w_ih, w_hh, b_ih, b_hh;  // [G,in], [G,H], [G], [G]
  };
  const std::vector<Weights>& weights() const { return weights_; }

 private:
  RNNOutput run_layers(const Var& x, const std::vector<Var>* xg, const IntTensor* lengths,
                       const Var& h0, const Var& c0);
  std::vector<Weights> weights_;
  Generator* gen_;  // dropout masks
};

class LSTM : public RNNBase {
 public:
  LSTM(const RNNOptions& opt, Generator& gen) : RNNBase(RNNKind::lstm, opt, gen) {}
};

class GRU : public RNNBase {
 public:
  GRU(const RNNOptions& opt, Generator& gen) : RNNBase(RNNKind::gru, opt, gen) {}
};

// One step, for decoders: torch.nn.LSTMCell / GRUCell (weight_ih, weight_hh,
// bias_ih, bias_hh). x: [B,I], h, c: [B,H] (undefined = zeros).
struct CellState {
  Var h;  // [B,H]
  Var c;  // [B,H], LSTM only
};

struct RNNCellOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  bool bias = true;
};

class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, Generator& gen,
           bool bias = RNNCellOptions{}.bias);
  CellState forward(const Var& x, const CellState& state = {});
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input, hx, cx -> h_1, c_1.
  NamedOutputs forward_named(NamedInputs& in) override;
  int64_t input_size, hidden_size;
  Var weight_ih, weight_hh, bias_ih, bias_hh;
};

class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, Generator& gen,
          bool bias = RNNCellOptions{}.bias);
  Var forward(const Var& x, const Var& h = Var());
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input, hx -> h_1.
  NamedOutputs forward_named(NamedInputs& in) override;
  int64_t input_size, hidden_size;
  Var weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace qkv

// Model summaries and the FLOPs estimate.
#include "tools/runner/inspect.h"

#include <cstdio>
#include <numeric>

#include "nn/attn_classifier.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/seq2seq.h"
#include "nn/sequential.h"
#include "nn/transformer.h"

namespace qkv::runner {
namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
// A lookup table (token embeddings, learned positions): no multiply-adds.
bool is_embedding(const std::string& name) {
  return name.find("embedding.") != std::string::npos || starts_with(name, "positional.");
}

std::string human(double x) {
  char buf[32];
  const char* unit[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (x >= 1000 && u < 4) {
    x /= 1000;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.3g%s", x, unit[u]);
  return buf;
}

}  // namespace

double flops_per_step(const Experiment& ex, std::string* how) {
  const int64_t N = ex.data->size(data::Split::train);
  if (N == 0) return 0;
  std::vector<int64_t> idx(static_cast<size_t>(std::min(N, ex.cfg.train.batch_size)));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  const data::Batch b = ex.data->batch(data::Split::train, idx);
  double src_tokens = 0, tgt_tokens = 0;
  if (b.src_len.defined())
    for (int32_t l : b.src_len) src_tokens += l;
  if (b.tgt_out.defined())
    for (int32_t t : b.tgt_out) tgt_tokens += t != data::Vocab::pad;
  const double S = b.src.defined() ? double(b.src.size(1)) : 0;
  if (auto m = std::dynamic_pointer_cast<Seq2Seq>(ex.model)) {
    double enc = 0, dec = 0, bridge = 0;  // bridges run once per example
    for (const auto& [n, v] : m->named_parameters()) {
      if (is_embedding(n) || v.dim() < 2) continue;
      (starts_with(n, "encoder.")  ? enc
       : starts_with(n, "bridge_") ? bridge
                                   : dec) += double(v.numel());
    }
    const double keys = double(m->options.hidden * (m->options.bidirectional ? 2 : 1));
    const double attn =
        m->options.attention == Seq2SeqAttention::none ? 0 : 2 * 2 * S * keys * tgt_tokens;
    if (how)
      *how = "6 x (" + human(enc) + " encoder weights x " + human(src_tokens) +
             " source tokens + " + human(dec) + " decoder weights x " + human(tgt_tokens) +
             " target tokens) + 3 x attention";
    return 6 * (enc * src_tokens + dec * tgt_tokens + bridge * double(b.size)) + 3 * attn;
  }
  if (auto m = std::dynamic_pointer_cast<Transformer>(ex.model)) {
    // Weights by the tokens they multiply: the encoder's and the memory's
    // key/value projections (2/3 of each cross-attention in_proj) by source
    // tokens, the rest of the decoder and the output layer by target tokens.
    // Attention: Q K^T and P V, 4 D per (query, key) pair, over the padded
    // lengths S and T.
    double enc = 0, dec = 0, mem = 0;
    for (const auto& [n, v] : m->named_parameters()) {
      if (is_embedding(n) || v.dim() < 2) continue;
      const double w = double(v.numel());
      if (starts_with(n, "encoder."))
        enc += w;
      else if (n.find("multihead_attn.in_proj_weight") != std::string::npos)
        mem += w * 2 / 3, dec += w / 3;
      else
        dec += w;
    }
    const double D = double(m->options.d_model);
    const double T = b.tgt_in.defined() ? double(b.tgt_in.size(1)) : 0;
    const double attn = 4 * D *
                        (double(m->options.num_encoder_layers) * S * src_tokens +
                         double(m->options.num_decoder_layers) * (T + S) * tgt_tokens);
    if (how)
      *how = "6 x (" + human(enc + mem) + " weights x " + human(src_tokens) + " source tokens + " +
             human(dec) + " weights x " + human(tgt_tokens) + " target tokens) + 3 x attention";
    return 6 * ((enc + mem) * src_tokens + dec * tgt_tokens) + 3 * attn;
  }
  if (auto m = std::dynamic_pointer_cast<TransformerLM>(ex.model)) {
    // Every weight multiplies every input token; causal attention over the
    // padded length S (the masked half of the pairs counted too).
    double w = 0;
    for (const auto& [n, v] : m->named_parameters())
      if (!is_embedding(n) && v.dim() >= 2) w += double(v.numel());
    const double tokens = double(b.src.numel());
    const double attn = 4 * double(m->options.d_model) * double(m->options.num_layers) * S * tokens;
    if (how)
      *how = "6 x (" + human(w) + " weights x " + human(tokens) + " tokens) + 3 x attention";
    return 6 * w * tokens + 3 * attn;
  }
  if (auto m = std::dynamic_pointer_cast<AttnClassifier>(ex.model)) {
    double rnn = 0, head = 0;
    for (const auto& [n, v] : m->named_parameters()) {
      if (is_embedding(n) || v.dim() < 2) continue;
      (starts_with(n, "lstm.") ? rnn : head) += double(v.numel());
    }
    if (how) *how = "6 x (" + human(rnn) + " LSTM weights x " + human(src_tokens) + " tokens)";
    return 6 * (rnn * src_tokens + head * double(b.size));
  }
  if (auto seq = std::dynamic_pointer_cast<Sequential>(ex.model); seq && b.images.defined()) {
    // Runs one image through the layers, counting 2 x multiply-adds of each conv / linear.
    NoGrad no_grad;
    Var x(b.images.narrow_rows(0, 1));  // [1,C,H,W]
    double fwd = 0;
    for (size_t i = 0; i < seq->size(); ++i) {
      UnaryModule& layer = (*seq)[i];
      Var y = layer.forward(x);
      if (auto* c = dynamic_cast<Conv2d*>(&layer))
        fwd += 2.0 * double(y.numel()) * double(c->weight.numel() / c->options.out_channels);
      else if (auto* l = dynamic_cast<Linear*>(&layer))
        fwd += 2.0 * double(y.numel()) * double(l->options.in_features);
      else if (layer.num_parameters() > 0)
        fwd += 2.0 * double(layer.num_parameters()) *
               double(y.numel() / std::max<int64_t>(1, y.size(1)));
      x = y;
    }
    if (how)
      *how = "3 x forward (" + human(fwd) + " per image, conv and linear layers exact) x batch";
    return 3 * fwd * double(b.size);
  }
  if (how) *how = "no estimate for this model kind";
  return 0;
}

std::string inspect_text(const Module& m) {
  std::string out = m.summary();
  out += "parameters: " + std::to_string(m.num_parameters()) + "\n";
  return out;
}

std::string inspect_text(const Experiment& ex) {
  std::string out = "experiment: " + ex.cfg.name + "\n";
  out += "data: " + ex.data->name() + " (train " +
         std::to_string(ex.data->size(data::Split::train)) + ", valid " +
         std::to_string(ex.data->size(data::Split::valid)) + ", test " +
         std::to_string(ex.data->size(data::Split::test)) + ")\n";
  out += "model:\n" + inspect_text(*ex.model);
  std::string how;
  const double f = flops_per_step(ex, &how);
  out += "flops per step: " +
         (f > 0 ? human(f) + " (batch " + std::to_string(ex.cfg.train.batch_size) + "; " + how + ")"
                : std::string("unknown (") + how + ")") +
         "\n";
  return out;
}

}  // namespace qkv::runner

// Greedy and beam-search decoding for any source -> target model, over a small
// step interface: the model starts a DecodeState from a source (K rows, one per
// hypothesis), step() consumes one token per row and returns the next-token
// log-probabilities (and the attention over the source), select() reorders the
// rows when beams are pruned. Seq2Seq (recurrent state) and Transformer
// (key/value caches) share these loops.
//
// Legend: K rows (hypotheses), V vocabulary, S source length, NH heads.
#pragma once
#include <cstdint>

#include "nn/seq_model.h"

namespace qkv {

struct StepOutput {
  Tensor logp;            // [K,V] log-probabilities of the next token
  Tensor attention;       // [K,S] (undefined: the model has none)
  Tensor head_attention;  // [K,NH,S] (undefined: not multi-head)
};

class DecodeState {
 public:
  virtual ~DecodeState() = default;
  // tokens: [K] (each row's previous token; bos first) -> the next token's distribution.
  virtual StepOutput step(const IntTensor& tokens) = 0;
  // rows: [K]: row k continues from the old row rows[k].
  virtual void select(const IntTensor& rows) = 0;
};

struct DecodeOptions {
  int32_t bos = 1, eos = 2;
  int64_t max_len = 1;  // generated tokens at most
  int64_t src_len = 0;  // S, the width of the attention rows
};

// K = 1: the first maximum at every step; score = log-prob sum. Decoded::attention is
// [T_out,S] (zeros without attention), in the state's source order.
Decoded greedy_decode(DecodeState& st, const DecodeOptions& o);
// st has beam_size rows (copies of one source). Keeps beam_size live hypotheses; a candidate
// ending in eos that ranks among them is finished; stops when no live hypothesis can still
// beat the best finished one (alpha = 0, beam 1: exactly greedy) or at max_len, where
// unfinished hypotheses compete too. Picks the best log-prob sum / len^alpha (len counts eos).
Decoded beam_decode(DecodeState& st, const DecodeOptions& o, int64_t beam_size, float alpha);

// log-prob sum / len^alpha (len >= 1).
float normalised_score(double logp, size_t len, float alpha);

}  // namespace qkv

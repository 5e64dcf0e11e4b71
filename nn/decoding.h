// Greedy and beam-search decoding for any source -> target model, over a small
// step interface, for a batch of N sources at once: the model starts a
// DecodeState from N sources (K rows each, one per hypothesis; each source
// encoded once), step() consumes one token per row and returns the next-token
// log-probabilities (and the attention over the source), select() reorders the
// rows when beams are pruned and drops the rows of sources that are done, so
// finished sources stop costing steps. Seq2Seq (recurrent state) and
// Transformer (key/value caches) share these loops; one source is N = 1.
//
// Legend: N sources, K rows per source (beam hypotheses), R rows in all, V vocabulary,
// S source length (the widest source; S_n source n's own), NH heads.
#pragma once
#include <cstdint>
#include <vector>

#include "nn/seq_model.h"

namespace qkv {

struct StepOutput {
  Tensor logp;            // [R,V] log-probabilities of the next token
  Tensor attention;       // [R,S] in original source order (undefined: the model has none)
  Tensor head_attention;  // [R,NH,S] (undefined: not multi-head)
};

class DecodeState {
 public:
  virtual ~DecodeState() = default;
  // tokens: [R] (each row's previous token; bos first) -> the next token's distribution.
  virtual StepOutput step(const IntTensor& tokens) = 0;
  // rows: [R'], R' <= R: new row k continues old row rows[k] (which may belong to any source);
  // rows not named are retired.
  virtual void select(const IntTensor& rows) = 0;
};

struct DecodeOptions {
  int32_t bos = 1, eos = 2;
  std::vector<int64_t> max_len;  // [N] generated tokens at most, per source
  std::vector<int64_t> src_len;  // [N] S_n: the width of source n's attention rows
};

// st has N rows (row n: source n). Per source: the first maximum at every step; score =
// log-prob sum. Decoded::attention is [T_out,S_n] (zeros without attention). A source
// leaves the batch when it emits eos or reaches its max_len.
std::vector<Decoded> greedy_decode(DecodeState& st, const DecodeOptions& o);
// st has N x beam_size rows (row n*beam_size + k: source n). Per source: keeps beam_size live
// hypotheses; a candidate ending in eos that ranks among them is finished; the source is done
// when no live hypothesis can still beat its best finished one (alpha = 0, beam 1: exactly
// greedy) or at its max_len, where unfinished hypotheses compete too. Picks the best
// log-prob sum / len^alpha (len counts eos).
std::vector<Decoded> beam_decode(DecodeState& st, const DecodeOptions& o, int64_t beam_size,
                                 float alpha);

// log-prob sum / len^alpha (len >= 1).
float normalised_score(double logp, size_t len, float alpha);

// ---- for DecodeState::select ----------------------------------------------------------
// Whether new row k can overwrite old row k in place, in order: each old row taken at most
// once and none from a row already overwritten (rows[k] >= k). greedy_decode retires rows
// so, filling the gaps from the end: one row moves per retired row.
bool selects_in_place(const IntTensor& rows);
// x: [R,...] -> [R',...] its rows `rows`: in place (x becomes a view of its first R' rows:
// no allocation, no copy of the rows that stay) when in_place and x alone holds its
// storage, else a copy. A source leaving a batch of 256 then moves a few rows of its
// encoder memory instead of copying all of it at every step.
void select_rows(Tensor& x, const IntTensor& rows, bool in_place);

}  // namespace qkv

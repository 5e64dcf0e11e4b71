// The Model interface for every sequence-to-sequence model (see seq_model.h).
#include "nn/seq_model.h"

#include <algorithm>
#include <climits>
#include <exception>

#include "autograd/ops.h"
#include "engine/threads.h"
#include "nn/decoding.h"

namespace qkv {
namespace {

// The non-pad tokens of row i of targets [B,T].
std::vector<int32_t> row_tokens(const IntTensor& targets, int64_t i, int32_t pad) {
  const int64_t T = targets.size(1);
  std::vector<int32_t> out;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t y = targets.data()[i * T + t];
    if (y != pad) out.push_back(y);
  }
  return out;
}

}  // namespace

void SeqToSeqModel::eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) {
  // logits: [B,T,V]; tgt_out: [B,T]
  const Var logits = forward_teacher(b.src, b.src_len, b.tgt_in).logits;
  const int64_t B = logits.size(0);
  std::vector<bool> correct;
  token_eval(logits, b.tgt_out, pad_id(), s, &correct);
  // Beam search, and the predictions, decode the whole batch (eos included in the target).
  if (o.beam > 1 || o.decode || o.predictions) {
    const std::vector<int64_t> max_len(size_t(B), o.max_len);
    const std::vector<Decoded> d = o.beam > 1 ? beam_batch(b.src, b.src_len, max_len, o.beam)
                                              : greedy_batch(b.src, b.src_len, max_len);
    for (int64_t i = 0; i < B; ++i) {
      if (o.beam > 1 || o.decode)
        correct[size_t(i)] = d[size_t(i)].tokens == row_tokens(b.tgt_out, i, pad_id());
      if (o.predictions) o.predictions->push_back(d[size_t(i)].tokens);
    }
  }
  s["examples"] += double(B);
  s["examples_correct"] += double(std::count(correct.begin(), correct.end(), true));
}

Metrics SeqToSeqModel::metrics(const EvalSums& s) const {
  return {{"loss", eval_rate(s, "loss_sum", "tokens")},
          {"token_accuracy", eval_rate(s, "tokens_correct", "tokens")},
          {"exact_match", eval_rate(s, "examples_correct", "examples")}};
}

// ---- decoding -------------------------------------------------------------------

namespace {

void check_batch(const IntTensor& src, const IntTensor& len, const std::vector<int64_t>& max_len,
                 const char* op) {
  check(src.dim() == 2 && src.size(1) >= 1, op, ": src_ids must be [N,S], got ", src.shape());
  check(len.dim() == 1 && len.size(0) == src.size(0), op, ": src_len must be [N] = [", src.size(0),
        "], got ", len.shape());
  check(int64_t(max_len.size()) == src.size(0), op, ": max_len has ", max_len.size(),
        " entries for ", src.size(0), " sources");
  for (int64_t n = 0; n < len.numel(); ++n)
    check(len.data()[n] >= 1 && len.data()[n] <= src.size(1), op, ": src_len[", n,
          "] = ", len.data()[n], " out of range [1,", src.size(1), "]");
}

void check_single(const IntTensor& src, int64_t max_len, const char* op) {
  check(src.dim() == 2 && src.size(0) == 1 && src.size(1) >= 1, op, ": src_ids must be [1,S], got ",
        src.shape());
  check(max_len >= 1, op, ": max_len must be >= 1, got ", max_len);
}

DecodeOptions decode_options(const SeqToSeqModel& m, const IntTensor& len,
                             const std::vector<int64_t>& max_len, const char* op) {
  DecodeOptions o{m.bos_id(), m.eos_id(), max_len, {}};
  for (int64_t l : max_len)
    check(l <= m.max_decode_len(), op, ": max_len ", l, " exceeds the model's ",
          m.max_decode_len());
  for (int64_t n = 0; n < len.numel(); ++n) o.src_len.push_back(len.data()[n]);
  return o;
}

// o's tokens for one chunk: its sources' lengths len [n] and limits [n].
DecodeOptions chunk_options(const DecodeOptions& o, const IntTensor& len,
                            const std::vector<int64_t>& limits) {
  return {o.bos, o.eos, limits, std::vector<int64_t>(len.begin(), len.end())};
}

// Sources per decoded chunk. A batch decodes in chunks of sources of similar length: each
// chunk is padded only to its own longest source (the encoder and every step's attention
// run over S = that length: 256 sources of 10..30 tokens pad a third of their encoder
// steps to the longest), and a chunk's keys/values (128 x 30 x 2 directions x 128 x 4 B
// ~ 4 MB for the bench's Seq2Seq; a quarter of the whole batch's) are re-read at every step
// from nearer caches. 128 sources keep the step's matmuls GEMMs; beam search has K = 5
// rows per source, so its chunks take fewer sources. Measured (bench decode's Seq2Seq, 256
// sources, one thread, CPU time): greedy 128 beat 64 and 256; beam 5: 64 beat 25, 32, 128.
constexpr int64_t kGreedyChunk = 128, kBeamChunk = 64;

// Decodes src_ids [N,S] / src_len [N] / max_len [N] by `decode` (one call per chunk, under
// NoGrad) in chunks of at most `chunk` sources sorted by length, each chunk cut to
// its own widest source; returns the results in the caller's order. Equal to one call over
// the whole batch, since every source decodes as if alone.
template <class Decode>
std::vector<Decoded> decode_by_length(const IntTensor& src_ids, const IntTensor& src_len,
                                      const std::vector<int64_t>& max_len, int64_t chunk,
                                      Decode decode) {
  const int64_t N = src_ids.size(0), S = src_ids.size(1);
  if (N == 1) return decode(src_ids, src_len, max_len);  // one source: nothing to sort
  // order: source indices by length (stable: equal lengths keep the caller's order)
  std::vector<int64_t> order(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) order[size_t(n)] = n;
  const int32_t* len = src_len.data();
  std::stable_sort(order.begin(), order.end(),
                   [len](int64_t a, int64_t b) { return len[a] < len[b]; });
  std::vector<Decoded> out(static_cast<size_t>(N));
  // The chunks decode side by side, one thread each (every kernel inside runs on its
  // thread alone): a chunk is a whole decode with no fork/join per step, so two
  // chunks on two cores run at about twice one, where splitting each step's small
  // ops over the cores gains little. An error in a chunk is rethrown here.
  const int64_t chunks = (N + chunk - 1) / chunk;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  parallel_for(chunks, chunks > 1 ? INT64_MAX : 0, [&](int64_t c) {
    try {
      NoGrad ng;  // per thread: the caller's NoGrad does not reach the workers
      const int64_t c0 = c * chunk, n = std::min(chunk, N - c0);
      const int64_t Sc = len[order[size_t(c0 + n - 1)]];  // sorted: the chunk's widest is last
      // ids: [n,Sc], lens: [n]
      IntTensor ids({n, Sc}), lens({n});
      std::vector<int64_t> limits(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const int64_t src = order[size_t(c0 + i)];
        std::copy_n(src_ids.data() + src * S, Sc, ids.data() + i * Sc);
        lens.data()[i] = len[src];
        limits[size_t(i)] = max_len[size_t(src)];
      }
      std::vector<Decoded> d = decode(ids, lens, limits);
      for (int64_t i = 0; i < n; ++i) out[size_t(order[size_t(c0 + i)])] = std::move(d[size_t(i)]);
    } catch (...) {
      errors[size_t(c)] = std::current_exception();
    }
  });
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace

std::vector<Decoded> SeqToSeqModel::greedy_batch(const IntTensor& src_ids, const IntTensor& src_len,
                                                 const std::vector<int64_t>& max_len) {
  check_batch(src_ids, src_len, max_len, "greedy");
  const DecodeOptions o = decode_options(*this, src_len, max_len, "greedy");
  NoGrad ng;
  EvalModeScope eval_mode(*this);  // set here, once: the chunks' threads only read it
  if (src_ids.size(0) == 0) return {};
  return decode_by_length(
      src_ids, src_len, max_len, kGreedyChunk,
      [&](const IntTensor& ids, const IntTensor& len, const std::vector<int64_t>& limits) {
        return greedy_decode(*start_decoding(ids, len, 1), chunk_options(o, len, limits));
      });
}

std::vector<Decoded> SeqToSeqModel::beam_batch(const IntTensor& src_ids, const IntTensor& src_len,
                                               const std::vector<int64_t>& max_len,
                                               int64_t beam_size, float alpha) {
  check_batch(src_ids, src_len, max_len, "beam");
  check(beam_size >= 1, "beam: beam_size must be >= 1, got ", beam_size);
  check(alpha >= 0.f, "beam: length-normalisation alpha must be >= 0, got ", alpha);
  const DecodeOptions o = decode_options(*this, src_len, max_len, "beam");
  NoGrad ng;
  EvalModeScope eval_mode(*this);  // set here, once: the chunks' threads only read it
  if (src_ids.size(0) == 0) return {};
  return decode_by_length(
      src_ids, src_len, max_len, kBeamChunk,
      [&](const IntTensor& ids, const IntTensor& len, const std::vector<int64_t>& limits) {
        return beam_decode(*start_decoding(ids, len, beam_size), chunk_options(o, len, limits),
                           beam_size, alpha);
      });
}

Decoded SeqToSeqModel::greedy(const IntTensor& src_ids, int64_t max_len) {
  check_single(src_ids, max_len, "greedy");
  return greedy_batch(src_ids, IntTensor::from({1}, {int32_t(src_ids.size(1))}), {max_len})[0];
}

Decoded SeqToSeqModel::beam(const IntTensor& src_ids, int64_t beam_size, int64_t max_len,
                            float alpha) {
  check_single(src_ids, max_len, "beam");
  return beam_batch(src_ids, IntTensor::from({1}, {int32_t(src_ids.size(1))}), {max_len}, beam_size,
                    alpha)[0];
}

// ---- prediction -----------------------------------------------------------------

Predicted SeqToSeqModel::predict(const Batch& one, const PredictParams& p) {
  return predict_batch({one}, p)[0];
}

std::vector<Predicted> SeqToSeqModel::predict_batch(const std::vector<Batch>& ones,
                                                    const PredictParams& p) {
  check_no_generation(p);
  NoGrad no_grad;
  // The sources side by side, pad-filled: src [N,S]
  const int64_t N = int64_t(ones.size());
  int64_t S = 1;
  for (const Batch& b : ones) {
    check(b.src.dim() == 2 && b.src.size(0) == 1, "predict: each input must be [1,S], got ",
          b.src.shape());
    S = std::max(S, b.src.size(1));
  }
  IntTensor src = IntTensor::full({N, S}, pad_id()), len({N});
  std::vector<int64_t> max_len;
  for (int64_t n = 0; n < N; ++n) {
    const IntTensor& one = ones[size_t(n)].src;
    std::copy(one.begin(), one.end(), src.data() + n * S);
    len.data()[n] = int32_t(one.size(1));
    max_len.push_back(std::max<int64_t>(p.max_target_len, 2 * one.size(1) + 8));
  }
  const std::vector<Decoded> d =
      p.beam > 1 ? beam_batch(src, len, max_len, p.beam) : greedy_batch(src, len, max_len);
  std::vector<Predicted> out;
  for (const Decoded& x : d)
    out.push_back({x.tokens, x.head_attention.defined() ? x.head_attention : x.attention, x.score});
  return out;
}

}  // namespace qkv

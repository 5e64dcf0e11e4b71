// `qkv bench decode`: decoding throughput in source words per second, greedy and
// beam 5, one source at a time (batch 1) against 256 sources at once, for the
// Seq2Seq of the sequence experiments (bidirectional LSTM, Luong attention,
// hidden 128) and a small Transformer (d_model 128, 4 heads, 2 + 2 layers).
// Randomly initialised models rarely emit eos, so every source runs to max_len:
// a fixed amount of work per source. At batch 1 each step is a chain of tiny
// matrix-vector products and op overheads; at batch 256 they become GEMMs.
// Checked first: the batch decodes the batch-1 sources to the same tokens. The batch
// rows report their speedup over one source at a time ("speedup", the 10x goal
// for greedy).
#include <memory>
#include <sstream>

#include "bench/bench.h"
#include "engine/rng.h"
#include "nn/decoding.h"
#include "nn/seq2seq.h"
#include "nn/transformer.h"

namespace qkv::bench {
namespace {

constexpr int64_t kVocab = 30, kMaxLen = 40;

struct Sources {
  IntTensor ids, len;  // [N,S] pad-filled, [N]
};

// N sources of 10..30 ids in [3, kVocab).
Sources make_sources(int64_t N, Generator& g) {
  const int64_t S = 30;
  Sources s{IntTensor::zeros({N, S}), IntTensor({N})};
  for (int64_t n = 0; n < N; ++n) {
    const int64_t L = 10 + int64_t(g.next_below(S - 10 + 1));
    s.len.data()[n] = int32_t(L);
    for (int64_t j = 0; j < L; ++j) s.ids.data()[n * S + j] = int32_t(3 + g.next_below(kVocab - 3));
  }
  return s;
}

// The first n sources, one at a time ([1,S_i] each).
std::vector<IntTensor> singles(const Sources& s, int64_t n) {
  std::vector<IntTensor> out;
  const int64_t S = s.ids.size(1);
  for (int64_t i = 0; i < n; ++i)
    out.push_back(IntTensor::from(
        {1, s.len.data()[i]},
        std::vector<int32_t>(s.ids.data() + i * S, s.ids.data() + i * S + s.len.data()[i])));
  return out;
}

std::vector<Decoded> decode(SeqToSeqModel& m, const IntTensor& ids, const IntTensor& len,
                            int64_t beam) {
  const std::vector<int64_t> max_len(size_t(ids.size(0)), kMaxLen);
  return beam > 1 ? m.beam_batch(ids, len, max_len, beam) : m.greedy_batch(ids, len, max_len);
}

void run_model(const std::string& model, SeqToSeqModel& m, const Options& opt,
               std::vector<Result>& out) {
  m.eval();
  Generator g(5);
  const int64_t big = opt.quick ? 8 : 256, few = opt.quick ? 2 : 8;
  const Sources all = make_sources(big, g);
  const std::vector<IntTensor> one = singles(all, few);
  for (int64_t beam : {int64_t(1), int64_t(5)}) {
    const std::string mode = beam > 1 ? "beam5" : "greedy";
    // Verify: each of the first `few` sources alone decodes as within the batch.
    const std::vector<Decoded> batched = decode(m, all.ids, all.len, beam);
    for (int64_t i = 0; i < few; ++i) {
      const Decoded alone =
          decode(m, one[size_t(i)], IntTensor::from({1}, {all.len.data()[i]}), beam)[0];
      check(alone.tokens == batched[size_t(i)].tokens, "bench decode ", model, " ", mode,
            ": source ", i, " decodes differently alone and in the batch");
    }
    // Returns words/s; `base` (> 0): also the speedup over it.
    auto time_case = [&](const std::string& name, int64_t sources, double base,
                         const std::function<void()>& fn) {
      Result r;
      r.suite = "decode";
      r.name = model + " " + mode + " " + name;
      r.threads = opt.threads;
      r.ms = median_ms(fn, opt);
      r.words_per_s = double(sources) / (r.ms * 1e-3);
      if (base > 0) r.speedup = r.words_per_s / base;
      report(opt, r);
      out.push_back(r);
      return r.words_per_s;
    };
    const double one_at_a_time = time_case("batch 1", few, 0, [&] {
      for (int64_t i = 0; i < few; ++i)
        decode(m, one[size_t(i)], IntTensor::from({1}, {all.len.data()[i]}), beam);
    });
    time_case("batch " + std::to_string(big), big, one_at_a_time,
              [&] { decode(m, all.ids, all.len, beam); });
  }
}

}  // namespace

std::vector<Result> suite_decode(const Options& opt) {
  std::vector<Result> out;
  {
    Seq2SeqOptions o;
    o.src_vocab = o.tgt_vocab = kVocab;
    o.embed = 32, o.hidden = opt.quick ? 16 : 128, o.bidirectional = true;
    o.attention = Seq2SeqAttention::luong;
    Generator g(1);
    Seq2Seq m(o, g);
    run_model("seq2seq", m, opt, out);
  }
  {
    TransformerOptions o;
    o.src_vocab = o.tgt_vocab = kVocab;
    o.d_model = opt.quick ? 16 : 128, o.nhead = 4, o.dim_feedforward = opt.quick ? 32 : 512;
    o.dropout = 0.f, o.max_len = 64;
    Generator g(2);
    Transformer m(o, g);
    run_model("transformer", m, opt, out);
  }
  return out;
}

}  // namespace qkv::bench

// Batched decoding (nn/decoding.h): greedy, beam 1 and beam 5 over a batch of
// sources of different lengths give exactly what decoding each source alone
// gives (tokens, scores within 1e-5, attention), for Seq2Seq without attention,
// with Luong and Bahdanau attention, and the Transformer (cached and full
// states); a batch decoded in length-sorted chunks comes back in the caller's order;
// and sources leave the batch as they finish.
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/decoding.h"
#include "nn/seq2seq.h"
#include "nn/transformer.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// Sharper output distributions than the default init and a slightly favoured eos, so that
// the sources end at different steps (some before max_len) and the beam has work to do.
void sharpen(Linear& out, int32_t eos, float scale, float eos_bias) {
  for (Var p : out.parameters())
    for (float& x : p.value_mut()) x *= scale;
  out.bias.value_mut().data()[eos] += eos_bias;
}

struct Sources {
  IntTensor ids, len;            // [N,S] pad-filled, [N]
  std::vector<int64_t> max_len;  // [N]
};

// N sources of lengths in [1, 9] with ids in [3, vocab), each with its own max_len.
Sources random_sources(int64_t N, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  std::vector<int64_t> lens;
  for (int64_t n = 0; n < N; ++n) lens.push_back(1 + int64_t(g.next_below(9)));
  const int64_t S = *std::max_element(lens.begin(), lens.end());
  Sources s{IntTensor::zeros({N, S}), IntTensor({N}), {}};
  for (int64_t n = 0; n < N; ++n) {
    s.len.data()[n] = int32_t(lens[size_t(n)]);
    for (int64_t j = 0; j < lens[size_t(n)]; ++j)
      s.ids.data()[n * S + j] = int32_t(3 + g.next_below(uint64_t(vocab - 3)));
    s.max_len.push_back(4 + int64_t(g.next_below(9)));
  }
  return s;
}

// Source n alone: [1,S_n]
IntTensor one_source(const Sources& s, int64_t n) {
  const int64_t S = s.ids.size(1), L = s.len.data()[n];
  return IntTensor::from({1, L},
                         std::vector<int32_t>(s.ids.data() + n * S, s.ids.data() + n * S + L));
}

void expect_same(const Decoded& batched, const Decoded& alone, const std::string& what) {
  INFO(what);
  CHECK(batched.tokens == alone.tokens);
  CHECK(std::abs(batched.score - alone.score) <= 1e-5f);
  REQUIRE(batched.attention.shape() == alone.attention.shape());
  test::expect_close(batched.attention, alone.attention, 1e-5, what + " attention");
  CHECK(batched.head_attention.defined() == alone.head_attention.defined());
  if (alone.head_attention.defined()) {
    REQUIRE(batched.head_attention.shape() == alone.head_attention.shape());
    test::expect_close(batched.head_attention, alone.head_attention, 1e-5, what + " heads");
  }
}

// Greedy, beam 1 and beam 5 of the batch against each source alone; returns the distinct
// output lengths of greedy (the test needs sources that end at different steps).
std::set<size_t> check_batch_equals_alone(SeqToSeqModel& m, const Sources& s) {
  const int64_t N = s.ids.size(0);
  const std::vector<Decoded> greedy = m.greedy_batch(s.ids, s.len, s.max_len);
  const std::vector<Decoded> beam1 = m.beam_batch(s.ids, s.len, s.max_len, 1);
  const std::vector<Decoded> beam5 = m.beam_batch(s.ids, s.len, s.max_len, 5, 0.6f);
  REQUIRE(int64_t(greedy.size()) == N);
  REQUIRE(int64_t(beam5.size()) == N);
  std::set<size_t> lengths;
  for (int64_t n = 0; n < N; ++n) {
    const IntTensor one = one_source(s, n);
    const std::string at = " source " + std::to_string(n);
    expect_same(greedy[size_t(n)], m.greedy(one, s.max_len[size_t(n)]), "greedy" + at);
    expect_same(beam1[size_t(n)], m.beam(one, 1, s.max_len[size_t(n)]), "beam 1" + at);
    expect_same(beam5[size_t(n)], m.beam(one, 5, s.max_len[size_t(n)], 0.6f), "beam 5" + at);
    CHECK(beam1[size_t(n)].tokens == greedy[size_t(n)].tokens);
    lengths.insert(greedy[size_t(n)].tokens.size());
  }
  return lengths;
}

Seq2SeqOptions seq2seq_options(const std::string& attention) {
  Seq2SeqOptions o;
  o.src_vocab = 9, o.tgt_vocab = 7, o.embed = 6, o.hidden = 8;
  o.bidirectional = true;
  o.attention = enum_parse<Seq2SeqAttention>(attention, "attention");
  o.score = attention == "bahdanau" ? Score::additive : Score::general;
  return o;
}

// Records the row count of every step: the rows of finished sources must go.
class CountingState : public DecodeState {
 public:
  explicit CountingState(std::unique_ptr<DecodeState> s) : s_(std::move(s)) {}
  StepOutput step(const IntTensor& tokens) override {
    rows.push_back(tokens.numel());
    return s_->step(tokens);
  }
  void select(const IntTensor& r) override { s_->select(r); }
  std::vector<int64_t> rows;

 private:
  std::unique_ptr<DecodeState> s_;
};

TEST_SUITE("nn/decoding") {
  TEST_CASE(
      "Seq2Seq: a batch decodes as each source alone (none, Luong, Bahdanau, GRU, reversed)") {
    for (const char* attn : {"none", "luong", "bahdanau"})
      for (bool gru : {false, true}) {
        const std::string what = std::string(attn) + (gru ? " gru" : " lstm");
        INFO(what);
        Seq2SeqOptions o = seq2seq_options(attn);
        if (gru) o.rnn = RNNKind::gru;
        o.reverse_source = gru;  // attention rows are turned back per source length
        Generator g(gru ? 23 : 21);
        Seq2Seq m(o, g);
        m.eval();
        sharpen(*m.out, o.eos, 4.f, 0.5f);
        const std::set<size_t> lengths =
            check_batch_equals_alone(m, random_sources(9, o.src_vocab, 5));
        CHECK(lengths.size() >= 2);
      }
  }

  TEST_CASE("Transformer: a batch decodes as each source alone") {
    TransformerOptions o;
    o.src_vocab = 9, o.tgt_vocab = 7, o.d_model = 16, o.nhead = 2;
    o.num_encoder_layers = 2, o.num_decoder_layers = 2, o.dim_feedforward = 32;
    o.dropout = 0.f, o.max_len = 32;
    Generator g(8);
    Transformer t(o, g);
    t.eval();
    sharpen(*t.out, o.eos, 3.f, 1.f);
    const Sources s = random_sources(9, o.src_vocab, 6);
    CHECK(check_batch_equals_alone(t, s).size() >= 2);

    // The key/value cache against recomputing every prefix, on the whole batch (beam 5).
    DecodeOptions d{o.bos, o.eos, s.max_len, {}};
    for (int64_t n = 0; n < s.len.numel(); ++n) d.src_len.push_back(s.len.data()[n]);
    NoGrad ng;
    const std::vector<Decoded> cached =
        beam_decode(*t.start_decoding(s.ids, s.len, 5, true), d, 5, 0.6f);
    const std::vector<Decoded> full =
        beam_decode(*t.start_decoding(s.ids, s.len, 5, false), d, 5, 0.6f);
    for (size_t n = 0; n < cached.size(); ++n) expect_same(cached[n], full[n], "cache vs full");
  }

  TEST_CASE("a batch of several length-sorted chunks comes back in the caller's order") {
    // 150 sources (greedy: 2 chunks, beam: 3) in no length order, each with its own max_len: every
    // result must be its own source's, decoded as if alone, and as wide as its own source.
    const Sources s = random_sources(150, 9, 7);
    const int32_t* len = s.len.data();
    REQUIRE_FALSE(std::is_sorted(len, len + s.len.numel()));
    Seq2SeqOptions o = seq2seq_options("luong");
    Generator g(21);
    Seq2Seq m(o, g);
    m.eval();
    sharpen(*m.out, o.eos, 4.f, 0.5f);
    CHECK(check_batch_equals_alone(m, s).size() >= 2);
    const std::vector<Decoded> d = m.greedy_batch(s.ids, s.len, s.max_len);
    for (int64_t n = 0; n < s.len.numel(); ++n) {
      INFO("source ", n);
      CHECK(d[size_t(n)].attention.size(1) == len[n]);
      CHECK(int64_t(d[size_t(n)].tokens.size()) <= s.max_len[size_t(n)]);
    }

    TransformerOptions t_o;
    t_o.src_vocab = 9, t_o.tgt_vocab = 7, t_o.d_model = 16, t_o.nhead = 2;
    t_o.num_encoder_layers = 1, t_o.num_decoder_layers = 1, t_o.dim_feedforward = 32;
    t_o.dropout = 0.f, t_o.max_len = 32;
    Generator t_g(8);
    Transformer t(t_o, t_g);
    t.eval();
    sharpen(*t.out, t_o.eos, 3.f, 1.f);
    CHECK(check_batch_equals_alone(t, s).size() >= 2);
  }

  TEST_CASE("finished sources leave the batch: fewer rows per step as sources end") {
    Seq2SeqOptions o = seq2seq_options("luong");
    Generator g(21);
    Seq2Seq m(o, g);
    m.eval();
    sharpen(*m.out, o.eos, 4.f, 0.5f);
    const Sources s = random_sources(9, o.src_vocab, 5);
    DecodeOptions d{o.bos, o.eos, s.max_len, {}};
    for (int64_t n = 0; n < s.len.numel(); ++n) d.src_len.push_back(s.len.data()[n]);
    NoGrad ng;
    for (int64_t K : {1, 5}) {
      INFO("K ", K);
      CountingState st(m.start_decoding(s.ids, s.len, K));
      const std::vector<Decoded> out = K == 1 ? greedy_decode(st, d) : beam_decode(st, d, K, 0.f);
      REQUIRE(st.rows.size() >= 2);
      CHECK(st.rows.front() == 9 * K);
      CHECK(std::is_sorted(st.rows.rbegin(), st.rows.rend()));  // never grows
      CHECK(st.rows.back() < st.rows.front());
      CHECK(st.rows.back() % K == 0);  // whole sources leave, never single beams
      size_t longest = 0;
      for (const Decoded& x : out) longest = std::max(longest, x.tokens.size());
      if (K == 1) CHECK(st.rows.size() == longest);  // no step after the last source is done
      CHECK(st.rows.size() >= longest);
    }
  }

  TEST_CASE("batched decoding checks its inputs") {
    Seq2SeqOptions o = seq2seq_options("none");
    Generator g(1);
    Seq2Seq m(o, g);
    const IntTensor src = IntTensor::from({2, 3}, {3, 4, 5, 3, 0, 0});
    CHECK(test::error_of([&] {
            m.greedy_batch(src, IntTensor::from({2}, {3, 1}), {5});
          }).find("max_len has 1 entries for 2 sources") != std::string::npos);
    CHECK(test::error_of([&] {
            m.greedy_batch(src, IntTensor::from({2}, {3, 4}), {5, 5});
          }).find("src_len[1] = 4 out of range [1,3]") != std::string::npos);
    CHECK(test::error_of([&] {
            m.beam_batch(src, IntTensor::from({2}, {3, 1}), {5, 0}, 2);
          }).find("max_len must be >= 1, got 0") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

// Seq2Seq: shapes and PyTorch-style names for every variant, gradient checks
// of the teacher-forced loss (no attention, Luong, Bahdanau), reverse_source,
// greedy vs beam search (beam 1 == greedy; beam 4 never scores below greedy),
// a toy copy task that trains (with and without attention), dropout (training
// mode only, reproducible, gradients under a fixed mask), and errors.
#include <algorithm>
#include <map>
#include <set>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/optim.h"
#include "nn/seq2seq.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

Seq2SeqOptions tiny(const std::string& attention, const std::string& rnn = "lstm") {
  Seq2SeqOptions o;
  o.src_vocab = 7;
  o.tgt_vocab = 8;
  o.embed = 4;
  o.hidden = 5;
  o.rnn = enum_parse<RNNKind>(rnn, "rnn");
  o.attention = enum_parse<Seq2SeqAttention>(attention, "attention");
  o.score = attention == "bahdanau" ? Score::additive : Score::general;
  return o;
}

// A fixed ragged batch: B = 2, S = 4 (lengths 4, 2), T = 3 (one padded target).
struct Batch {
  IntTensor src = IntTensor::from({2, 4}, {3, 4, 5, 6, 5, 3, 0, 0});
  IntTensor len = IntTensor::from({2}, {4, 2});
  IntTensor tgt_in = IntTensor::from({2, 3}, {1, 4, 7, 1, 6, 0});
  IntTensor tgt_out = IntTensor::from({2, 3}, {4, 7, 2, 6, 2, 0});
};

std::map<std::string, Var> params_of(const Module& m) {
  std::map<std::string, Var> r;
  for (auto& [n, v] : m.named_parameters()) r[n] = v;
  return r;
}

// Each variant's dropout path: fused Luong (input feeding), fused Bahdanau,
// the composite Luong, no attention (peeky, GRU) and a 2-layer BiLSTM encoder.
std::vector<Seq2SeqOptions> dropout_variants() {
  std::vector<Seq2SeqOptions> v = {tiny("luong"), tiny("bahdanau"), tiny("luong"),
                                   tiny("none", "gru"), tiny("luong")};
  v[3].peeky = true;
  v[4].layers = 2;
  v[4].bidirectional = true;
  return v;
}

TEST_SUITE("nn/seq2seq") {
  TEST_CASE("shapes and parameter names of every variant") {
    struct Case {
      Seq2SeqOptions o;
      std::vector<std::pair<std::string, Shape>> expect;  // E = 4, H = 5, V = 8
      std::vector<std::string> absent;
    };
    std::vector<Case> cases;
    {
      Case c{tiny("none"), {}, {}};
      c.expect = {{"encoder.embedding.weight", {7, 4}},
                  {"encoder.rnn.weight_ih_l0", {20, 4}},
                  {"encoder.rnn.bias_hh_l0", {20}},
                  {"bridge_h.weight", {5, 5}},
                  {"bridge_c.weight", {5, 5}},
                  {"decoder.embedding.weight", {8, 4}},
                  {"decoder.cell.weight_ih", {20, 4}},
                  {"decoder.cell.weight_hh", {20, 5}},
                  {"out.weight", {8, 5}},
                  {"out.bias", {8}}};
      c.absent = {"decoder.combine.weight", "decoder.attention.W.weight"};
      cases.push_back(c);
    }
    {
      Case c{tiny("none", "gru"), {}, {}};
      c.o.peeky = true;
      c.o.bidirectional = true;
      c.o.layers = 2;
      c.expect = {{"encoder.rnn.weight_ih_l1_reverse", {15, 10}},
                  {"bridge_h.weight", {5, 10}},
                  {"decoder.cell.weight_ih", {15, 4 + 10}},  // [y; encoder summary]
                  {"out.weight", {8, 5}}};
      c.absent = {"bridge_c.weight"};
      cases.push_back(c);
    }
    {
      Case c{tiny("luong"), {}, {}};
      c.expect = {{"decoder.cell.weight_ih", {20, 4 + 5}},  // input feeding
                  {"decoder.attention.W.weight", {5, 5}},
                  {"decoder.combine.weight", {5, 10}},
                  {"out.weight", {8, 5}}};
      c.absent = {"decoder.combine.bias"};
      cases.push_back(c);
    }
    {
      Case c{tiny("luong", "gru"), {}, {}};
      c.o.input_feeding = false;
      c.o.bidirectional = true;
      c.o.score = Score::concat;
      c.expect = {{"decoder.cell.weight_ih", {15, 4}},
                  {"decoder.attention.W.weight", {5, 15}},
                  {"decoder.attention.v.weight", {1, 5}},
                  {"decoder.combine.weight", {5, 15}}};
      cases.push_back(c);
    }
    {
      Case c{tiny("bahdanau", "gru"), {}, {}};
      c.o.bidirectional = true;
      c.expect = {{"decoder.cell.weight_ih", {15, 4 + 10}},  // [y; context]
                  {"decoder.attention.W.weight", {5, 5}},
                  {"decoder.attention.U.weight", {5, 10}},
                  {"decoder.attention.v.weight", {1, 5}},
                  {"out.weight", {8, 5 + 10}}};  // [s; context]
      c.absent = {"decoder.combine.weight"};
      cases.push_back(c);
    }
    Batch b;
    for (auto& c : cases) {
      Generator g(1);
      Seq2Seq m(c.o, g);
      INFO(m.describe());
      auto p = params_of(m);
      for (auto& [name, shape] : c.expect) {
        INFO(name);
        REQUIRE(p.count(name) == 1);
        CHECK(p[name].shape() == shape);
      }
      for (auto& name : c.absent) CHECK_MESSAGE(p.count(name) == 0, name);
      Seq2SeqOutput r = m.forward_teacher(b.src, b.len, b.tgt_in);
      CHECK(r.logits.shape() == Shape{2, 3, 8});
      if (c.o.attention == Seq2SeqAttention::none) {
        CHECK(!r.attention.defined());
      } else {
        REQUIRE(r.attention.shape() == Shape{2, 3, 4});
        for (int64_t bt = 0; bt < 6; ++bt) {
          const float* w = r.attention.data() + bt * 4;
          CHECK(std::abs(w[0] + w[1] + w[2] + w[3] - 1.f) < 1e-5f);
          if (bt >= 3) CHECK((w[2] == 0.f && w[3] == 0.f));  // row 1 has length 2
        }
      }
      Var loss = m.loss(b.src, b.len, b.tgt_in, b.tgt_out);
      CHECK(loss.shape() == Shape{});
      CHECK(std::isfinite(loss.item()));
    }
  }

  TEST_CASE("gradcheck of the teacher-forced loss: none (peeky), Luong, Bahdanau") {
    struct Case {
      Seq2SeqOptions o;
      std::vector<std::string> wrt;
    };
    std::vector<Case> cases;
    Case none{
        tiny("none"),
        {"encoder.rnn.weight_ih_l0", "bridge_c.weight", "decoder.cell.weight_hh", "out.weight"}};
    none.o.peeky = true;
    cases.push_back(none);
    Case luong{tiny("luong"),
               {"encoder.embedding.weight", "decoder.attention.W.weight", "decoder.combine.weight",
                "decoder.cell.weight_ih"}};
    cases.push_back(luong);
    Case bahdanau{tiny("bahdanau", "gru"),
                  {"encoder.rnn.weight_hh_l0_reverse", "decoder.attention.U.weight",
                   "decoder.attention.v.weight", "out.weight"}};
    bahdanau.o.bidirectional = true;
    cases.push_back(bahdanau);
    Batch b;
    for (auto& c : cases) {
      Generator g(2);
      Seq2Seq m(c.o, g);
      auto p = params_of(m);
      std::vector<Var> in;
      for (auto& n : c.wrt) {
        REQUIRE(p.count(n) == 1);
        in.push_back(p[n]);
      }
      GradcheckOptions opt;
      opt.max_per_input = 16;
      // The loss and every logit (the loss alone is too flat in the attention
      // parameters for float finite differences to see a missing gradient).
      auto f = [&](const std::vector<Var>&) {
        Var logits = m.forward_teacher(b.src, b.len, b.tgt_in).logits;
        Var loss = cross_entropy(reshape(logits, {-1, 8}), b.tgt_out.reshape({-1}), 0);
        return concat({reshape(logits, {-1}), reshape(loss, {1})}, 0);
      };
      test::expect_ok(f, in, m.describe(), opt);
    }
  }

  TEST_CASE(
      "the fused Luong decoder equals the composite: loss, attention, every gradient, steps") {
    // Every score the fused op takes, with and without input feeding, a
    // bidirectional encoder (K = 2H != H) and reversed sources.
    struct Case {
      Score score;
      bool feeding, bidirectional, reverse;
    };
    for (Case k :
         {Case{Score::general, true, true, false}, Case{Score::general, false, false, true},
          Case{Score::dot, true, false, false}, Case{Score::scaled_dot, true, false, true}}) {
      Seq2SeqOptions o = tiny("luong");
      o.score = k.score;
      o.input_feeding = k.feeding;
      o.bidirectional = k.bidirectional;
      o.reverse_source = k.reverse;
      Generator g(4);
      Seq2Seq m(o, g);
      const std::string what = m.describe();
      REQUIRE(m.decoder->fused_luong());
      Batch b;
      auto run = [&](bool fused) {
        m.decoder->fused = fused;
        m.zero_grad();
        Seq2SeqOutput out = m.forward_teacher(b.src, b.len, b.tgt_in);
        Var loss = cross_entropy(reshape(out.logits, {-1, 8}), b.tgt_out.reshape({-1}), 0);
        backward(loss);
        std::map<std::string, Tensor> r{{"loss", loss.value()}, {"attention", out.attention}};
        for (auto& [n, v] : m.named_parameters()) r["grad " + n] = v.grad().clone();
        return r;
      };
      const auto fused = run(true), comp = run(false);
      CHECK(!m.decoder->fused_luong());
      for (auto& [n, t] : comp) test::expect_close(fused.at(n), t, 1e-5, what + " " + n);
      // Decoding steps (the fused op with T = 1) give the composite's tokens and scores.
      IntTensor src = IntTensor::from({1, 4}, {3, 4, 5, 6});
      m.decoder->fused = true;
      const Decoded df = m.beam(src, 3, 6);
      m.decoder->fused = false;
      const Decoded dc = m.beam(src, 3, 6);
      CHECK(df.tokens == dc.tokens);
      test::expect_close(df.attention, dc.attention, 1e-5, what + " beam attention");
    }
  }

  TEST_CASE(
      "the fused Bahdanau decoder equals the composite: loss, attention, every gradient, steps") {
    struct Case {
      bool bidirectional, reverse;
    };
    for (Case k : {Case{true, false}, Case{false, true}}) {
      Seq2SeqOptions o = tiny("bahdanau");
      o.score = Score::additive;
      o.bidirectional = k.bidirectional;
      o.reverse_source = k.reverse;
      Generator g(5);
      Seq2Seq m(o, g);
      const std::string what = m.describe();
      REQUIRE(m.decoder->fused_bahdanau());
      Batch b;
      auto run = [&](bool fused) {
        m.decoder->fused = fused;
        m.zero_grad();
        Seq2SeqOutput out = m.forward_teacher(b.src, b.len, b.tgt_in);
        Var loss = cross_entropy(reshape(out.logits, {-1, 8}), b.tgt_out.reshape({-1}), 0);
        backward(loss);
        std::map<std::string, Tensor> r{{"loss", loss.value()}, {"attention", out.attention}};
        for (auto& [n, v] : m.named_parameters()) r["grad " + n] = v.grad().clone();
        return r;
      };
      const auto fused = run(true), comp = run(false);
      CHECK(!m.decoder->fused_bahdanau());
      for (auto& [n, t] : comp) test::expect_close(fused.at(n), t, 1e-5, what + " " + n);
      IntTensor src = IntTensor::from({1, 4}, {3, 4, 5, 6});
      m.decoder->fused = true;
      const Decoded df = m.beam(src, 3, 6);
      m.decoder->fused = false;
      const Decoded dc = m.beam(src, 3, 6);
      CHECK(df.tokens == dc.tokens);
      test::expect_close(df.attention, dc.attention, 1e-5, what + " beam attention");
    }
  }

  TEST_CASE("projected embedding tables give the per-row projections' loss and gradients") {
    // Vocabulary 9: the batch of 2 (8 source, 6 target rows) projects its rows;
    // the same batch twice (16 and 12 rows) looks its gates up in projected
    // tables (encoder and decoder). A mean loss over a doubled batch is the
    // same loss with the same gradients.
    for (const char* attn : {"luong", "bahdanau"}) {
      Seq2SeqOptions o = tiny(attn);
      o.src_vocab = o.tgt_vocab = 9;
      o.bidirectional = true;
      Generator g(6);
      Seq2Seq m(o, g);
      Batch b;
      auto twice = [](const IntTensor& t) {
        IntTensor r({2 * t.size(0), t.size(1)});
        std::copy(t.data(), t.data() + t.numel(), r.data());
        std::copy(t.data(), t.data() + t.numel(), r.data() + t.numel());
        return r;
      };
      auto run = [&](const IntTensor& src, const IntTensor& len, const IntTensor& in,
                     const IntTensor& out) {
        m.zero_grad();
        Var loss = m.loss(src, len, in, out);
        backward(loss);
        std::map<std::string, Tensor> r{{"loss", loss.value()}};
        for (auto& [n, v] : m.named_parameters()) r["grad " + n] = v.grad().clone();
        return r;
      };
      IntTensor len2({4});
      for (int i = 0; i < 4; ++i) len2.data()[i] = b.len.data()[i % 2];
      const auto rows = run(b.src, b.len, b.tgt_in, b.tgt_out);
      const auto table = run(twice(b.src), len2, twice(b.tgt_in), twice(b.tgt_out));
      for (auto& [n, t] : rows) test::expect_close(table.at(n), t, 1e-5, std::string(attn) + " " + n);
    }
  }

  TEST_CASE("reverse_source equals feeding the reversed source; attention maps back") {
    Batch b;
    IntTensor rev = IntTensor::from({2, 4}, {6, 5, 4, 3, 3, 5, 0, 0});
    Seq2SeqOptions o = tiny("luong");
    o.reverse_source = true;
    Generator g1(3), g2(3);
    Seq2Seq a(o, g1);
    o.reverse_source = false;
    Seq2Seq plain(o, g2);
    Seq2SeqOutput ra = a.forward_teacher(b.src, b.len, b.tgt_in);
    Seq2SeqOutput rp = plain.forward_teacher(rev, b.len, b.tgt_in);
    test::expect_close(ra.logits.value(), rp.logits.value(), 0, "logits");
    const int lens[2] = {4, 2};
    for (int64_t bb = 0; bb < 2; ++bb)
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t j = 0; j < lens[bb]; ++j)
          CHECK(ra.attention.at({bb, t, j}) == rp.attention.at({bb, t, lens[bb] - 1 - j}));
  }

  TEST_CASE("beam 1 equals greedy; beam 4 never scores below greedy") {
    for (const char* attn : {"none", "luong", "bahdanau"}) {
      Seq2SeqOptions o = tiny(attn);
      o.tgt_vocab = 6;  // few tokens: eos (2) comes up often enough to end some hypotheses
      o.hidden = 8;
      Generator g(11);
      Seq2Seq m(o, g);
      // Sharper distributions than the default init, so the search matters.
      for (Var p : m.out->parameters()) {
        Tensor& w = p.value_mut();
        for (float& x : w) x *= 4.f;
      }
      m.out->bias.value_mut().data()[o.eos] -= 0.5f;  // longer outputs: more room for search

      Generator sg(5);
      int beam_better = 0;
      for (int n = 0; n < 12; ++n) {
        const int64_t S = 2 + sg.next_below(4);
        IntTensor src({1, S});
        for (int64_t s = 0; s < S; ++s) src.data()[s] = int32_t(3 + sg.next_below(4));
        INFO(std::string(attn), " source ", n);
        Decoded gr = m.greedy(src, 8);
        Decoded b1 = m.beam(src, 1, 8);
        CHECK(b1.tokens == gr.tokens);
        CHECK(std::abs(b1.score - gr.score) < 1e-5f);
        CHECK(gr.attention.shape() == Shape{int64_t(gr.tokens.size()), S});
        CHECK(std::abs(gr.score - m.sequence_score(src, gr.tokens)) < 1e-4f);
        for (float alpha : {0.f, 0.7f}) {
          INFO("alpha ", alpha);
          Decoded b4 = m.beam(src, 4, 8, alpha);
          const float greedy_score = m.sequence_score(src, gr.tokens, alpha);
          CHECK(std::abs(b4.score - m.sequence_score(src, b4.tokens, alpha)) < 1e-4f);
          CHECK(b4.score >= greedy_score - 1e-5f);
          CHECK(b4.attention.shape() == Shape{int64_t(b4.tokens.size()), S});
          if (b4.score > greedy_score + 1e-4f) ++beam_better;
        }
        // Attention rows sum to 1 with attention, are zeros without.
        float total = 0;
        for (float w : gr.attention) total += w;
        CHECK(std::abs(total -
                       (o.attention == Seq2SeqAttention::none ? 0.f : float(gr.tokens.size()))) <
              1e-4f);
      }
      MESSAGE(std::string(attn), ": beam 4 beat greedy on ", beam_better, " of 24 searches");
      CHECK(beam_better > 0);  // the comparison is not vacuous
    }
  }

  // ---- training: copy random strings of 3-6 symbols ------------------------------------
  // Specials pad 0, bos 1, eos 2; symbols 3..12.
  struct CopyBatch {
    IntTensor src, len, tgt_in, tgt_out;
  };
  CopyBatch copy_batch(int64_t B, Generator & g) {
    const int64_t S = 6, T = S + 1;
    CopyBatch c{IntTensor::zeros({B, S}), IntTensor::zeros({B}), IntTensor::zeros({B, T}),
                IntTensor::zeros({B, T})};
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = 3 + g.next_below(4);
      c.len.data()[b] = int32_t(L);
      c.tgt_in.data()[b * T] = 1;
      for (int64_t s = 0; s < L; ++s) {
        const int32_t x = int32_t(3 + g.next_below(10));
        c.src.data()[b * S + s] = x;
        c.tgt_in.data()[b * T + s + 1] = x;
        c.tgt_out.data()[b * T + s] = x;
      }
      c.tgt_out.data()[b * T + L] = 2;
    }
    return c;
  }

  double token_accuracy(Seq2Seq & m, const CopyBatch& c) {
    NoGrad ng;
    Tensor logits = m.forward_teacher(c.src, c.len, c.tgt_in).logits.value();  // [B,T,V]
    const int64_t V = logits.size(2), N = c.tgt_out.numel();
    int64_t right = 0, total = 0;
    for (int64_t i = 0; i < N; ++i) {
      if (c.tgt_out.data()[i] == 0) continue;
      const float* p = logits.data() + i * V;
      right += (std::max_element(p, p + V) - p) == c.tgt_out.data()[i];
      ++total;
    }
    return double(right) / double(total);
  }

  TEST_CASE("a tiny model learns to copy (Luong attention and no attention)") {
    for (const char* attn : {"luong", "none"}) {
      Seq2SeqOptions o;
      o.src_vocab = o.tgt_vocab = 13;
      o.embed = 16;
      o.hidden = 32;
      o.attention = enum_parse<Seq2SeqAttention>(attn, "attention");
      o.score = Score::general;
      Generator g(7), data(8), held(9);
      Seq2Seq m(o, g);
      CopyBatch test_batch = copy_batch(128, held);
      const double before = token_accuracy(m, test_batch);
      AdamWOptions ao;
      ao.lr = 1e-2;
      ao.weight_decay = 0;
      AdamW opt(m.parameters(), ao);
      const int steps = o.attention == Seq2SeqAttention::none ? 600 : 250;
      for (int step = 0; step < steps; ++step) {
        CopyBatch c = copy_batch(32, data);
        opt.zero_grad();
        Var loss = m.loss(c.src, c.len, c.tgt_in, c.tgt_out);
        backward(loss);
        opt.step();
      }
      const double after = token_accuracy(m, test_batch);
      MESSAGE(std::string(attn), ": token accuracy ", before, " -> ", after);
      CHECK(before < 0.3);
      CHECK(after > 0.8);
      // Greedy decoding copies too (checked on one source).
      if (o.attention == Seq2SeqAttention::luong) {
        IntTensor src = IntTensor::from({1, 5}, {4, 9, 3, 12, 7});
        Decoded d = m.greedy(src, 10);
        CHECK(d.tokens == std::vector<int32_t>{4, 9, 3, 12, 7, 2});
        Decoded b = m.beam(src, 3, 10, 0.6f);
        CHECK(b.tokens == std::vector<int32_t>{4, 9, 3, 12, 7, 2});
      }
    }
  }

  TEST_CASE("dropout: training mode drops, eval mode and p = 0 are the model without it") {
    Batch b;
    const auto variants = dropout_variants();
    for (size_t i = 0; i < variants.size(); ++i) {
      Seq2SeqOptions o = variants[i];
      Generator g0(3), g1(3);
      Seq2Seq m0(o, g0);
      o.dropout = 0.4f;
      Seq2Seq m1(o, g1);
      if (i == 2) m0.decoder->fused = m1.decoder->fused = false;
      INFO(m1.describe(), " fused ", m1.decoder->fused);
      auto p1 = params_of(m1);
      for (auto& [n, v] : params_of(m0)) {  // dropout draws nothing at construction
        const Tensor &a = v.value(), &c = p1[n].value();
        CHECK(std::equal(a.begin(), a.end(), c.begin()));
      }
      auto loss = [&](Seq2Seq& m) { return m.loss(b.src, b.len, b.tgt_in, b.tgt_out).item(); };
      const float p0_train = loss(m0);
      m0.eval();
      m1.eval();
      const float p0_eval = loss(m0);
      CHECK(p0_train == p0_eval);  // p = 0 drops nothing, even in training mode
      CHECK(loss(m1) == p0_eval);  // eval mode: bit for bit the model without dropout
      m1.train();
      const float first = loss(m1), second = loss(m1);
      CHECK(first != p0_eval);
      CHECK(second != first);  // each forward draws fresh masks
      // The same seed, the same masks: a second model from seed 3 repeats both losses.
      Generator g2(3);
      Seq2Seq m2(o, g2);
      if (i == 2) m2.decoder->fused = false;
      CHECK(loss(m2) == first);
      CHECK(loss(m2) == second);
      // Decoding never drops, even in training mode, and leaves the mode as it was.
      IntTensor one = IntTensor::from({1, 4}, {3, 4, 5, 6});
      m0.train();
      CHECK(m1.greedy(one, 6).tokens == m0.greedy(one, 6).tokens);
      CHECK(m1.sequence_score(one, {4, 7, 2}) == m0.sequence_score(one, {4, 7, 2}));
      CHECK(m1.training());
      // The same for a batch that decodes in several chunks on several threads.
      const int64_t N = 300;
      IntTensor ids({N, 4}), lens({N});
      for (int64_t n = 0; n < N; ++n) {
        lens.data()[n] = int32_t(1 + n % 4);
        for (int64_t j = 0; j < 4; ++j)
          ids.data()[n * 4 + j] = int32_t(3 + (n * 7 + j * 3) % 4);  // ids 3..6 (vocabulary 7)
      }
      const std::vector<int64_t> limits(size_t(N), 6);
      const std::vector<Decoded> d1 = m1.greedy_batch(ids, lens, limits),
                                 d0 = m0.greedy_batch(ids, lens, limits);
      for (int64_t n = 0; n < N; ++n) CHECK(d1[size_t(n)].tokens == d0[size_t(n)].tokens);
      CHECK(m1.training());
    }
  }

  TEST_CASE("dropout: gradients under a fixed mask match finite differences") {
    // The masks are a function of the generator state, so resetting it before
    // each evaluation makes the training-mode loss one deterministic function
    // of the parameters, with the masks of every dropout site applied.
    Batch b;
    const auto variants = dropout_variants();
    for (size_t i = 0; i < variants.size(); ++i) {
      Seq2SeqOptions o = variants[i];
      o.dropout = 0.3f;
      Generator g(5);
      Seq2Seq m(o, g);
      if (i == 2) m.decoder->fused = false;
      const uint64_t counter = g.counter();
      std::vector<Var> in;
      for (auto& [n, v] : m.named_parameters())
        if (n == "encoder.embedding.weight" || n == "decoder.embedding.weight" ||
            n == "out.weight" || n == "encoder.rnn.weight_ih_l1")
          in.push_back(v);
      REQUIRE(in.size() == (o.layers == 2 ? 4u : 3u));
      GradcheckOptions opt;
      opt.max_per_input = 16;
      auto f = [&](const std::vector<Var>&) {
        g.set_state(5, counter);
        Var logits = m.forward_teacher(b.src, b.len, b.tgt_in).logits;
        Var loss = cross_entropy(reshape(logits, {-1, 8}), b.tgt_out.reshape({-1}), 0);
        return concat({reshape(logits, {-1}), reshape(loss, {1})}, 0);
      };
      test::expect_ok(f, in, m.describe() + (m.decoder->fused ? "" : " composite"), opt);
    }
  }

  TEST_CASE("errors: bad options and mismatched shapes") {
    auto build = [](Seq2SeqOptions o) {
      return [o]() {
        Generator g(0);
        Seq2Seq m(o, g);
      };
    };
    CHECK(test::error_of([] { tiny("none", "rnm"); }) ==
          "rnn: expected one of lstm, gru, got \"rnm\"");
    CHECK(test::error_of([] { tiny("luong2"); }) ==
          "attention: expected one of none, luong, bahdanau, got \"luong2\"");
    Seq2SeqOptions o = tiny("luong");
    o.peeky = true;
    CHECK(test::error_of(build(o)).find("peeky applies to attention \"none\" only") !=
          std::string::npos);
    o = tiny("luong");
    o.score = Score::dot;
    o.bidirectional = true;
    CHECK(test::error_of(build(o)).find("score dot needs query size == key size") !=
          std::string::npos);
    o = tiny("none");
    o.dropout = 1.f;
    CHECK(test::error_of(build(o)) == "Seq2Seq: dropout must be in [0,1), got 1");
    o = tiny("none");
    o.eos = 8;
    CHECK(test::error_of(build(o)).find("eos id 8 out of range [0,8)") != std::string::npos);

    Generator g(0);
    Seq2Seq m(tiny("bahdanau"), g);
    Batch b;
    CHECK(test::error_of([&] {
            m.forward_teacher(b.src, IntTensor::from({3}, {1, 1, 1}), b.tgt_in);
          }).find("src_len must be [B] = [2], got [3]") != std::string::npos);
    CHECK(test::error_of([&] {
            m.forward_teacher(b.src, IntTensor::from({2}, {5, 1}), b.tgt_in);
          }).find("src_len[0] = 5 out of range [1,4]") != std::string::npos);
    CHECK(test::error_of([&] {
            m.forward_teacher(b.src, b.len, IntTensor::zeros({3, 2}));
          }).find("tgt_in must be [B,T] with the source's B, got src [2,4] and tgt_in [3,2]") !=
          std::string::npos);
    CHECK(test::error_of([&] {
            m.loss(b.src, b.len, b.tgt_in, IntTensor::zeros({2, 2}));
          }).find("tgt_out must match tgt_in [2,3], got [2,2]") != std::string::npos);
    CHECK(test::error_of([&] {
            m.forward_teacher(IntTensor::full({2, 4}, 9), b.len, b.tgt_in);
          }).find("src_ids") != std::string::npos);
    CHECK(test::error_of([&] {
            m.greedy(b.src, 5);
          }).find("greedy: src_ids must be [1,S], got [2,4]") != std::string::npos);
    IntTensor one = IntTensor::from({1, 2}, {3, 4});
    CHECK(test::error_of([&] { m.beam(one, 0, 5); }).find("beam_size must be >= 1, got 0") !=
          std::string::npos);
    CHECK(test::error_of([&] { m.greedy(one, 0); }).find("max_len must be >= 1, got 0") !=
          std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

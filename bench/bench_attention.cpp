// `qkv bench attention`: the classic attention seq2seq at B64, S = T = 30,
// E128, H256, V512 (LSTM encoder and decoder): one Luong and one Bahdanau
// decoder step (inference, no gradients), and a full teacher-forced batch,
// forward + backward through the loss. Checked first: a decoder step's
// attention rows sum to 1 and give padded source positions zero weight.
#include <cmath>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "engine/rng.h"
#include "nn/seq2seq.h"

namespace qkv::bench {
namespace {

struct Shape4 {
  int64_t B, S, T, E, H, V;
};

IntTensor random_ids(Shape s, int64_t lo, int64_t hi, Generator& g) {
  IntTensor t(std::move(s));
  for (int32_t& v : t) v = int32_t(lo + g.next_below(hi - lo));
  return t;
}

void verify_weights(const Var& w, const IntTensor& lengths, const std::string& what) {
  const int64_t B = w.size(0), S = w.size(1);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t j = 0; j < S; ++j) {
      const float a = w.value().at({b, j});
      check(j < lengths.data()[b] || a == 0.f, "bench ", what, ": padded key ", j, " of row ", b,
            " has weight ", a);
      s += a;
    }
    check(std::fabs(s - 1.0) < 1e-4, "bench ", what, ": row ", b, " weights sum to ", s);
  }
}

}  // namespace

std::vector<Result> suite_attention(const Options& opt) {
  const Shape4 z = opt.quick ? Shape4{4, 6, 5, 8, 16, 20} : Shape4{64, 30, 30, 128, 256, 512};
  const std::string dims = std::string("B") + std::to_string(z.B) + " S" + std::to_string(z.S) + " T" +
                           std::to_string(z.T) + " H" + std::to_string(z.H);
  std::vector<Result> out;
  for (const char* kind : {"luong", "bahdanau"}) {
    Generator g(5);
    Seq2SeqOptions o;
    o.src_vocab = o.tgt_vocab = z.V;
    o.embed = z.E;
    o.hidden = z.H;
    o.attention = kind;
    o.score = std::string(kind) == "luong" ? Score::general : Score::additive;
    Seq2Seq model(o, g);
    IntTensor src = random_ids({z.B, z.S}, 3, z.V, g), tgt_in = random_ids({z.B, z.T}, 3, z.V, g),
              tgt_out = random_ids({z.B, z.T}, 3, z.V, g), len({z.B});
    for (int64_t b = 0; b < z.B; ++b) len.data()[b] = int32_t(z.S - (b % 4));  // ragged

    // One decoder step over a prepared encoder memory (what decoding repeats).
    EncoderMemory mem;
    DecoderState st;
    {
      NoGrad ng;
      EncoderOutput enc = model.encoder->forward(src, len);
      mem.outputs = enc.outputs;
      mem.summary = enc.h;
      mem.keys = model.decoder->attention->prepare(enc.outputs, &len);
      st.h = Var(Tensor::zeros({z.B, z.H}));
      st.c = Var(Tensor::zeros({z.B, z.H}));
      st.feed = Var(Tensor::zeros({z.B, z.H}));
    }
    IntTensor tok = random_ids({z.B}, 3, z.V, g);
    {
      NoGrad ng;
      DecoderState s0 = st;
      verify_weights(model.decoder->step(tok, s0, mem, *model.out).weights, len,
                     std::string(kind) + " step");
    }
    auto step = [&] {
      NoGrad ng;
      DecoderState s = st;  // the same step every time
      model.decoder->step(tok, s, mem, *model.out);
    };
    Result r{"attention", std::string(kind) + " step " + dims, opt.threads, 0, 0, 0, -1};
    r.ms = median_ms(step, opt);
    report(opt, r);
    out.push_back(r);

    auto teacher = [&] {
      Var loss = model.loss(src, len, tgt_in, tgt_out);
      backward(loss);
      model.zero_grad();
    };
    Result t{"attention", std::string(kind) + " teacher fwd+bwd " + dims, opt.threads, 0, 0, 0,
             -1};
    t.ms = median_ms(teacher, opt);
    report(opt, t);
    out.push_back(t);
  }
  return out;
}

}  // namespace qkv::bench

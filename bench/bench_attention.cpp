// `qkv bench attention`: the classic attention seq2seq at B64, S = T = 30,
// E128, H256, V512 (LSTM encoder and decoder): one Luong and one Bahdanau
// decoder step (inference, no gradients), and a full teacher-forced batch,
// forward + backward through the loss. Checked first: a decoder step's
// attention rows sum to 1 and give padded source positions zero weight.
// Then the fused scaled dot-product attention (B32 NH8 T128 HD32, causal and
// not, forward and forward + backward; checked against the composite), and
// long sequences (T = 512, 1024) whose peak extra memory is checked to stay
// far below the T x T score matrix.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/ops.h"
#include "bench/bench.h"
#include "engine/memory.h"
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

// ---- fused SDPA ----------------------------------------------------------------------
// FLOPs: QK^T and PV are 2 * T * S * HD each per head (causal: about half);
// the backward recomputes QK^T and adds dV, dP, dQ, dK: 5 more, so fwd+bwd = 7/2 x fwd.
void sdpa_cases(const Options& opt, std::vector<Result>& out) {
  const int64_t B = opt.quick ? 2 : 32, NH = opt.quick ? 2 : 8, T = opt.quick ? 16 : 128,
                HD = opt.quick ? 8 : 32;
  Generator g(11);
  Var q(uniform({B, NH, T, HD}, -1.f, 1.f, g), true), k(uniform({B, NH, T, HD}, -1.f, 1.f, g), true),
      v(uniform({B, NH, T, HD}, -1.f, 1.f, g), true);
  std::ostringstream ds;
  ds << "B" << B << " NH" << NH << " T" << T << " HD" << HD;
  const std::string dims = ds.str();
  for (bool causal : {false, true}) {
    {  // verify against the composite softmax(q k^T / sqrt(HD) + mask) v
      NoGrad ng;
      Tensor got = scaled_dot_product_attention(q, k, v, causal).value();
      Tensor mask = Tensor::zeros({T, T});
      if (causal)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = t + 1; j < T; ++j) mask.data()[t * T + j] = -INFINITY;
      Tensor want = matmul(softmax(matmul(q, k, false, true) * (1.f / std::sqrt(float(HD))) + Var(mask)), v).value();
      verify("sdpa " + dims, got.data(), want.data(), got.numel(), 1e-4);
    }
    const double flops = 4.0 * B * NH * T * T * HD * (causal ? 0.5 : 1.0);
    const std::string tag = std::string(causal ? " causal" : "");
    Result f{"attention", "sdpa " + dims + tag + " fwd", opt.threads, 0, 0, 0, -1};
    f.ms = median_ms([&] { NoGrad ng; scaled_dot_product_attention(q, k, v, causal); }, opt);
    f.gflops = flops / (f.ms * 1e6);
    report(opt, f);
    out.push_back(f);
    Tensor up = uniform({B, NH, T, HD}, -1.f, 1.f, g);
    Result fb{"attention", "sdpa " + dims + tag + " fwd+bwd", opt.threads, 0, 0, 0, -1};
    fb.ms = median_ms([&] {
      backward(scaled_dot_product_attention(q, k, v, causal), up);
      q.zero_grad(), k.zero_grad(), v.zero_grad();
    }, opt);
    fb.gflops = 3.5 * flops / (fb.ms * 1e6);
    report(opt, fb);
    out.push_back(fb);
  }
  // Long sequences: memory stays linear in T (only out and the per-row log-sum-exp are
  // allocated; the kernel's per-thread scratch is one 64 x 128 score block).
  for (int64_t L : opt.quick ? std::vector<int64_t>{64} : std::vector<int64_t>{512, 1024}) {
    const int64_t b = 1, nh = opt.quick ? 2 : 8;
    Var lq(uniform({b, nh, L, HD}, -1.f, 1.f, g)), lk(uniform({b, nh, L, HD}, -1.f, 1.f, g)),
        lv(uniform({b, nh, L, HD}, -1.f, 1.f, g));
    std::ostringstream ns;
    ns << "sdpa B1 NH" << nh << " T" << L << " HD" << HD << " fwd";
    const std::string name = ns.str();
    NoGrad ng;
    const size_t before = live_bytes();
    reset_peak_bytes();
    scaled_dot_product_attention(lq, lk, lv, true);
    const double extra = double(peak_bytes() - before), scores = double(L) * L * 4.0 * b * nh;
    check(extra < 0.25 * scores, "bench ", name, ": peak extra memory ", extra,
          " bytes is not well under the score matrices' ", scores);
    std::fprintf(stderr, "%s: peak extra memory %.2f MiB (%.3f MiB per head) vs T x T scores %.1f MiB per head\n",
                 name.c_str(), extra / 1048576.0, extra / 1048576.0 / double(b * nh),
                 double(L) * L * 4.0 / 1048576.0);
    Result r{"attention", name + " causal", opt.threads, 0, 0, 0, -1};
    r.ms = median_ms([&] { scaled_dot_product_attention(lq, lk, lv, true); }, opt);
    r.gflops = 2.0 * b * nh * L * L * HD / (r.ms * 1e6);
    report(opt, r);
    out.push_back(r);
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
    o.attention = enum_parse<Seq2SeqAttention>(kind, "attention");
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
      model.pack_for_decoding(mem);  // as greedy / beam decoding do, once per source batch
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
  sdpa_cases(opt, out);
  return out;
}

}  // namespace qkv::bench

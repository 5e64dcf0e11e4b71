// nn/attention and nn/attn_classifier: every score against torch 1.13
// (fixtures from tests/fixtures/make_attention.py), gradcheck with masks,
// exact zeros at padded keys, errors, prepare()'s query independence, and the
// attention-pooled classifier (shapes, weights, and that it trains).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/attention.h"
#include "nn/attn_classifier.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tests/grad_utils.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using json = nlohmann::json;

constexpr double kRtol = 1e-4, kAtol = 1e-5;
const Score kScores[] = {Score::dot, Score::scaled_dot, Score::general, Score::concat,
                         Score::additive};

Tensor grad_of(const Var& v) { return v.has_grad() ? v.grad() : zeros(v.shape()); }

// |got - want| <= atol + rtol |want| everywhere; returns the max |got - want|.
double expect_parity(const Tensor& got, const Tensor& want, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(), what, ": shapes ", shape_str(got.shape()), " vs ",
                  shape_str(want.shape()));
  double max_abs = 0;
  int64_t bad = 0, worst = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double a = got.data()[i], b = want.data()[i], d = std::fabs(a - b);
    if (std::isnan(a) || std::isnan(b)) d = INFINITY;
    if (d > max_abs) max_abs = d, worst = i;
    if (!(d <= kAtol + kRtol * std::fabs(b))) ++bad;
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", got.numel(), " off, max_abs=", max_abs,
                " at ", worst, " got ", got.data()[std::max<int64_t>(worst, 0)], " want ",
                want.data()[std::max<int64_t>(worst, 0)]);
  return max_abs;
}

const Tensor& get(const TensorFile& f, const std::string& name) {
  auto it = f.floats.find(name);
  INFO("fixture tensor ", name);
  REQUIRE(it != f.floats.end());
  return it->second;
}

// ---- 1. PyTorch parity -------------------------------------------------------------------

// Prints the largest deviation of the outputs and of the gradients.
void parity_case(const std::string& name) {
  TensorFile f = load_safetensors(test::fixture_path("attention/" + name + ".safetensors"));
  json cfg = json::parse(f.metadata.at("config"));
  AttentionOptions opt;
  opt.score      = score_from_name(cfg["score"].get<std::string>());
  opt.query_size = cfg["query_size"];
  opt.key_size   = cfg["key_size"];
  opt.attn_size  = cfg["attn_size"];
  opt.bias       = cfg["bias"];
  Generator gen(1);
  Attention m(opt, gen);
  std::map<std::string, Tensor> params;
  for (const auto& [n, t] : f.floats)
    if (n.rfind("param.", 0) == 0) params[n.substr(6)] = t;
  m.load_state_dict(params, /*strict=*/true);

  Var q(get(f, "input.q").clone(), true), keys(get(f, "input.keys").clone(), true),
      values(get(f, "input.values").clone(), true);
  const IntTensor& lengths = f.ints.at("input.lengths");
  AttentionResult r = m.forward(q, m.prepare(keys, &lengths), values);
  const double out_dev =
      std::max(expect_parity(r.context.value(), get(f, "output.context"), name + " context"),
               expect_parity(r.weights.value(), get(f, "output.weights"), name + " weights"));
  Var loss = sum(r.context * Var(get(f, "upstream.context"))) +
             sum(r.weights * Var(get(f, "upstream.weights")));
  backward(loss);
  double grad_dev = 0;
  for (const auto& [in, v] : {std::pair{"q", q}, {"keys", keys}, {"values", values}})
    grad_dev = std::max(grad_dev, expect_parity(grad_of(v), get(f, std::string("grad.") + in),
                                                name + " grad." + in));
  auto named = m.named_parameters();
  int64_t fixture_params = 0;
  for (const auto& [n, t] : f.floats) fixture_params += n.rfind("grad.param.", 0) == 0;
  CHECK_MESSAGE(int64_t(named.size()) == fixture_params, name, ": parameter count differs");
  for (const auto& [pn, p] : named)
    grad_dev = std::max(grad_dev, expect_parity(grad_of(p), get(f, "grad.param." + pn),
                                                name + " grad.param." + pn));
  char msg[160];
  std::snprintf(msg, sizeof msg, "%-20s max_abs outputs %.2e, gradients %.2e", name.c_str(),
                out_dev, grad_dev);
  MESSAGE(msg);
}

TEST_SUITE("nn/attention") {
  TEST_CASE("every score matches torch, one step and all steps, with padding") {
    for (const char* s : {"dot", "scaled_dot", "general", "concat", "additive"})
      for (const char* k : {"_step", "_seq"}) parity_case(std::string(s) + k);
    parity_case("additive_nobias_seq");
  }

  TEST_CASE("parameter names and describe") {
    Generator gen(2);
    auto names = [&](Score s) {
      Attention m({s, 3, 4, 5, true}, gen);
      std::vector<std::string> out;
      for (const auto& [n, p] : m.named_parameters()) out.push_back(n + shape_str(p.shape()));
      return out;
    };
    CHECK(names(Score::general) == std::vector<std::string>{"W.weight[3,4]", "W.bias[3]"});
    CHECK(names(Score::concat) ==
          std::vector<std::string>{"W.weight[5,7]", "W.bias[5]", "v.weight[1,5]"});
    CHECK(names(Score::additive) == std::vector<std::string>{"W.weight[5,3]", "W.bias[5]",
                                                             "U.weight[5,4]", "U.bias[5]",
                                                             "v.weight[1,5]"});
    Attention d({Score::scaled_dot, 4, 4}, gen);
    CHECK(d.num_parameters() == 0);
    CHECK(d.describe() == "Attention(score=scaled_dot, query_size=4, key_size=4)");
    for (Score s : kScores) CHECK(score_from_name(score_name(s)) == s);
  }

  // ---- 2. gradcheck ------------------------------------------------------------------------

  TEST_CASE("gradcheck: every score, masked, step and all-steps queries") {
    const int64_t B = 2, S = 4, T = 3, Dq = 3, Dv = 2;
    IntTensor lengths = IntTensor::from({B}, {4, 2});
    for (Score s : kScores) {
      for (bool step : {true, false}) {
        const int64_t Dk = (s == Score::dot || s == Score::scaled_dot) ? Dq : 4;
        Generator gen(7);
        Attention m({s, Dq, Dk, 3, true}, gen);
        std::vector<Var> in = {
            test::rv(step ? Shape{B, Dq} : Shape{B, T, Dq}, 11), test::rv({B, S, Dk}, 12),
            test::rv({B, S, Dv}, 13)};
        for (const Var& p : m.parameters()) in.push_back(p);
        auto f = [&](const std::vector<Var>& x) {
          AttentionResult r = m.forward(x[0], m.prepare(x[1], &lengths), x[2]);
          return concat({reshape(r.context, {-1}), reshape(r.weights, {-1})}, 0);
        };
        test::expect_ok(f, in, std::string(score_name(s)) + (step ? " step" : " seq"));
      }
    }
  }

  // ---- 3. masked positions ------------------------------------------------------------------

  TEST_CASE("padded keys: weights exactly 0, no gradient to their keys and values") {
    const int64_t B = 3, S = 5, T = 2, D = 4;
    IntTensor lengths = IntTensor::from({B}, {5, 1, 3});
    for (Score s : kScores) {
      for (bool step : {true, false}) {
        CAPTURE(score_name(s));
        CAPTURE(step);
        Generator gen(3);
        Attention m({s, D, D, 0, true}, gen);
        Var q = test::rv(step ? Shape{B, D} : Shape{B, T, D}, 21);
        Var keys = test::rv({B, S, D}, 22, -3.f, 3.f), values = test::rv({B, S, 2}, 23);
        AttentionResult r = m.forward(q, m.prepare(keys, &lengths), values);
        backward(sum(r.context * Var(test::rand_tensor(r.context.shape(), 24))) +
                 sum(r.weights * Var(test::rand_tensor(r.weights.shape(), 25))));
        const int64_t TT = step ? 1 : T;
        int64_t nonzero_w = 0, nonzero_g = 0;
        double row_err = 0;
        for (int64_t b = 0; b < B; ++b) {
          const int64_t len = lengths.data()[b];
          for (int64_t t = 0; t < TT; ++t) {
            double total = 0;
            for (int64_t j = 0; j < S; ++j) {
              float w = r.weights.value().data()[(b * TT + t) * S + j];
              total += w;
              if (j >= len) nonzero_w += w != 0.f;
            }
            row_err = std::max(row_err, std::fabs(total - 1));
          }
          for (int64_t j = len; j < S; ++j) {
            for (int64_t d = 0; d < D; ++d) nonzero_g += keys.grad().data()[(b * S + j) * D + d] != 0.f;
            for (int64_t d = 0; d < 2; ++d) nonzero_g += values.grad().data()[(b * S + j) * 2 + d] != 0.f;
          }
        }
        CHECK(nonzero_w == 0);
        CHECK(nonzero_g == 0);
        CHECK(row_err < 1e-5);
        // Valid keys do receive a gradient (the check above is not vacuous).
        CHECK(keys.grad().data()[0] != 0.f);
      }
    }
  }

  // ---- 4. errors -----------------------------------------------------------------------------

  TEST_CASE("errors: empty rows, bad lengths, shape mismatches, unknown scores") {
    Generator gen(4);
    Attention m({Score::additive, 3, 4, 5}, gen);
    Var keys = test::rv({2, 3, 4}, 1, -1, 1, false), values = test::rv({2, 3, 2}, 2, -1, 1, false);
    IntTensor zero = IntTensor::from({2}, {3, 0});
    std::string e = test::error_of([&] { m.prepare(keys, &zero); });
    CHECK(e.find("lengths[1] = 0") != std::string::npos);
    CHECK(e.find("fully masked") != std::string::npos);
    IntTensor big = IntTensor::from({2}, {4, 1});
    CHECK(test::error_of([&] { m.prepare(keys, &big); }).find("lengths[0] = 4 outside [1,3]") !=
          std::string::npos);
    IntTensor three = IntTensor::from({3}, {1, 1, 1});
    CHECK(test::error_of([&] { m.prepare(keys, &three); }).find("lengths must be [B] = [2]") !=
          std::string::npos);
    CHECK(test::error_of([&] { m.prepare(test::rv({2, 3, 5}, 3), nullptr); })
              .find("keys must be [B,S,Dk] with Dk=4, got [2,3,5]") != std::string::npos);
    AttentionKeys k = m.prepare(keys, nullptr);
    CHECK(test::error_of([&] { m.forward(test::rv({2, 4}, 5), k, values); })
              .find("query must be [B,Dq] or [B,T,Dq] with B=2, Dq=3, got [2,4]") !=
          std::string::npos);
    CHECK(test::error_of([&] { m.forward(test::rv({3, 3}, 5), k, values); })
              .find("got [3,3]") != std::string::npos);
    CHECK(test::error_of([&] { m.forward(test::rv({2, 3}, 5), k, test::rv({2, 4, 2}, 6)); })
              .find("values must be [B,S,Dv] with B=2, S=3, got [2,4,2]") != std::string::npos);
    CHECK(test::error_of([&] { m.forward(test::rv({2, 3}, 5), AttentionKeys{keys, {}, {}}, values); })
              .find("keys.proj missing") != std::string::npos);
    CHECK(test::error_of([&] { Attention({Score::dot, 3, 4}, gen); })
              .find("needs query_size == key_size, got 3 and 4") != std::string::npos);
    std::string u = test::error_of([&] { score_from_name("bahdanau"); });
    CHECK(u.find("unknown score \"bahdanau\"") != std::string::npos);
    CHECK(u.find("dot, scaled_dot, general, concat, additive") != std::string::npos);
  }

  // ---- 5. prepare once --------------------------------------------------------------------

  TEST_CASE("prepare is query-independent; all steps at once equal step by step") {
    const int64_t B = 2, S = 4, T = 3, D = 3;
    IntTensor lengths = IntTensor::from({B}, {2, 4});
    for (Score s : kScores) {
      CAPTURE(score_name(s));
      Generator gen(5);
      Attention m({s, D, D, 4, true}, gen);
      Var keys = test::rv({B, S, D}, 31, -1, 1, false), values = test::rv({B, S, 2}, 32, -1, 1, false);
      AttentionKeys once = m.prepare(keys, &lengths);
      Var qs = test::rv({B, T, D}, 33, -1, 1, false);
      AttentionResult all = m.forward(qs, once, values);
      for (int64_t t = 0; t < T; ++t) {
        Var q = reshape(slice(qs, 1, t, t + 1), {B, D});
        AttentionResult shared = m.forward(q, once, values);
        AttentionResult fresh = m.forward(q, m.prepare(keys, &lengths), values);
        CHECK(shared.context.value().to_vector() == fresh.context.value().to_vector());
        CHECK(shared.weights.value().to_vector() == fresh.weights.value().to_vector());
        test::expect_close(shared.context.value(),
                           reshape(slice(all.context, 1, t, t + 1), {B, 2}).value(), 1e-6,
                           "step vs all-steps context");
        test::expect_close(shared.weights.value(),
                           reshape(slice(all.weights, 1, t, t + 1), {B, S}).value(), 1e-6,
                           "step vs all-steps weights");
      }
    }
  }

  // ---- 6. AttnClassifier ---------------------------------------------------------------------

  TEST_CASE("AttnClassifier: names, shapes, weights sum to 1 over valid tokens") {
    Generator gen(6);
    AttnClassifier m({10, 4, 3, 2, true, 0}, gen);
    std::vector<std::string> names;
    for (const auto& [n, p] : m.named_parameters()) names.push_back(n);
    CHECK(std::find(names.begin(), names.end(), "query") != names.end());
    CHECK(std::find(names.begin(), names.end(), "head.weight") != names.end());
    CHECK(std::find(names.begin(), names.end(), "lstm.weight_hh_l0_reverse") != names.end());
    CHECK(std::find(names.begin(), names.end(), "embedding.weight") != names.end());
    CHECK(m.query.shape() == Shape{6});
    IntTensor ids = IntTensor::from({3, 4}, {1, 2, 3, 4, 5, 6, 0, 0, 7, 0, 0, 0});
    IntTensor lengths = IntTensor::from({3}, {4, 2, 1});
    ClassifierOutput out = m.forward(ids, lengths);
    CHECK(out.logits.shape() == Shape{3, 2});
    REQUIRE(out.weights.shape() == Shape{3, 4});
    for (int64_t b = 0; b < 3; ++b) {
      double total = 0;
      for (int64_t t = 0; t < 4; ++t) {
        float w = out.weights.value().at({b, t});
        if (t < lengths.data()[b]) total += w; else CHECK(w == 0.f);
      }
      CHECK(std::fabs(total - 1) < 1e-5);
    }
    CHECK(out.weights.value().at({2, 0}) == 1.f);
    CHECK(test::error_of([&] { m.forward(ids, IntTensor::from({3}, {4, 0, 1})); })
              .find("lengths[1] = 0") != std::string::npos);
  }

  TEST_CASE("AttnClassifier trains: does token 3 occur?") {
    // 64 sequences of 3..8 tokens from {1,2,4,...,9} (0 pads); in half of them
    // one position becomes token 3. Full-batch AdamW, 100 steps.
    const int64_t N = 64, T = 8;
    Generator gen(8);
    Tensor u = uniform({N, T + 3}, 0.f, 1.f, gen);
    IntTensor ids = IntTensor::zeros({N, T}), lengths({N}), labels({N});
    for (int64_t n = 0; n < N; ++n) {
      const float* r = u.data() + n * (T + 3);
      int32_t len = 3 + int32_t(r[T] * 6);  // 3..8
      lengths.data()[n] = len;
      for (int64_t t = 0; t < len; ++t) {
        int32_t tok = 1 + int32_t(r[t] * 8);  // 1..8, shifted past 3
        ids.data()[n * T + t] = tok >= 3 ? tok + 1 : tok;
      }
      labels.data()[n] = n % 2;
      if (n % 2) ids.data()[n * T + int64_t(r[T + 1] * len)] = 3;
    }
    AttnClassifier m({10, 8, 8, 2, true, 0}, gen);
    AdamW opt(m.parameters(), AdamWOptions{.lr = 1e-2});
    float first = 0, last = 0;
    for (int step = 0; step < 100; ++step) {
      Var loss = cross_entropy(m.forward(ids, lengths).logits, labels);
      if (step == 0) first = loss.item();
      last = loss.item();
      opt.zero_grad();
      backward(loss);
      opt.step();
    }
    MESSAGE("AttnClassifier loss ", first, " -> ", last);
    CHECK(first > 0.5f);
    CHECK(last < 0.2f * first);
    // The model attends to the token that decides the class.
    ClassifierOutput out = m.forward(ids, lengths);
    int64_t hits = 0, positives = 0;
    for (int64_t n = 1; n < N; n += 2, ++positives) {
      int64_t best = 0;
      for (int64_t t = 1; t < T; ++t)
        if (out.weights.value().at({n, t}) > out.weights.value().at({n, best})) best = t;
      hits += ids.data()[n * T + best] == 3;
    }
    MESSAGE("argmax attention on token 3 in ", hits, " of ", positives, " positives");
    CHECK(hits * 4 >= positives * 3);
  }
}

}  // namespace
}  // namespace qkv

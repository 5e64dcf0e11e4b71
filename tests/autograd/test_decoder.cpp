// The fused Luong decoder op against its composite (the same recurrence from
// autograd primitives, step by step): values and every gradient within 1e-5;
// then finite differences on a small case.
#include <cmath>

#include "autograd/ops.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

struct Inputs {
  Var x, h0, c0, feed0, w_ih, w_hh, b_ih, b_hh, P, V, w_c;
  Tensor mask;
  std::vector<Var> all() const {
    std::vector<Var> v{x, h0, c0, w_ih, w_hh, b_ih, b_hh, P, V, w_c};
    if (feed0.defined()) v.push_back(feed0);
    return v;
  }
};

Inputs make(int64_t B, int64_t T, int64_t S, int64_t E, int64_t H, int64_t K, bool feeding,
            bool masked, uint64_t seed) {
  Inputs in;
  const int64_t G = 4 * H, F = feeding ? H : 0;
  in.x = test::rv({B, T, E}, seed++);
  in.h0 = test::rv({B, H}, seed++);
  in.c0 = test::rv({B, H}, seed++);
  if (feeding) in.feed0 = test::rv({B, H}, seed++);
  in.w_ih = test::rv({G, E + F}, seed++, -0.5f, 0.5f);
  in.w_hh = test::rv({G, H}, seed++, -0.5f, 0.5f);
  in.b_ih = test::rv({G}, seed++);
  in.b_hh = test::rv({G}, seed++);
  in.P = test::rv({B, S, H}, seed++);
  in.V = test::rv({B, S, K}, seed++);
  in.w_c = test::rv({H, K + H}, seed++, -0.5f, 0.5f);
  if (masked) {
    in.mask = zeros({B, S});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = std::max<int64_t>(1, S - b % 3); s < S; ++s)
        in.mask.data()[b * S + s] = -INFINITY;
  }
  return in;
}

// The composite: LSTM cell, attention, W_c and tanh from primitives. -> {h~ [B,T,H], h, c}
std::vector<Var> composite(const Inputs& in, float scale) {
  const int64_t B = in.x.size(0), T = in.x.size(1), E = in.x.size(2), H = in.w_hh.size(1);
  const int64_t S = in.P.size(1);
  Var h = in.h0, c = in.c0, f = in.feed0;
  std::vector<Var> hts, ws;
  for (int64_t t = 0; t < T; ++t) {
    Var xt = reshape(slice(in.x, 1, t, t + 1), {B, E});
    if (f.defined()) xt = concat({xt, f}, 1);
    Var g = matmul(xt, in.w_ih, false, true) + in.b_ih + matmul(h, in.w_hh, false, true) + in.b_hh;
    Var i = sigmoid(slice(g, 1, 0, H)), fg = sigmoid(slice(g, 1, H, 2 * H));
    Var gg = tanh(slice(g, 1, 2 * H, 3 * H)), o = sigmoid(slice(g, 1, 3 * H, 4 * H));
    c = fg * c + i * gg;
    h = o * tanh(c);
    Var scores = matmul(reshape(h, {B, 1, H}), in.P, false, true) * scale;  // [B,1,S]
    if (in.mask.defined()) scores = scores + Var(in.mask.view({B, 1, S}));
    Var w = softmax(scores);
    ws.push_back(reshape(w, {B, S}));
    Var ctx = reshape(matmul(w, in.V), {B, in.V.size(2)});
    Var ht = tanh(matmul(concat({ctx, h}, 1), in.w_c, false, true));
    if (in.feed0.defined()) f = ht;
    hts.push_back(ht);
  }
  return {stack(hts, 1), h, c, stack(ws, 1)};
}

// The input's share of the gates, as input_gates makes it from embedded rows:
// x [B,T,E] -> [T,B,4H].
Var gates(const Var& x, const Var& w_ih, const Var& b_ih, const Var& b_hh) {
  return transpose(linear(x, slice(w_ih, 1, 0, x.size(2)), b_ih + b_hh), 0, 1);
}

LuongDecoderOutput luong(const Var& x, const Var& h0, const Var& c0, const Var& feed0,
                         const Var& w_ih, const Var& w_hh, const Var& b_ih, const Var& b_hh,
                         const Var& P, const Var& V, const Tensor& mask, const Var& w_c,
                         float scale = 1.f) {
  return luong_decoder(gates(x, w_ih, b_ih, b_hh), h0, c0, feed0, w_ih, w_hh, P, V, mask, w_c,
                       scale);
}

std::vector<Var> fused(const Inputs& in, float scale) {
  LuongDecoderOutput r = luong(in.x, in.h0, in.c0, in.feed0, in.w_ih, in.w_hh, in.b_ih, in.b_hh,
                               in.P, in.V, in.mask, in.w_c, scale);
  return {r.ht, r.h, r.c, r.weights};
}

// sum_i sum(o_i * R_i): every output (h~, h_T, c_T, weights) carries a gradient.
Var objective(const std::vector<Var>& o, uint64_t seed) {
  Var total;
  for (const Var& v : o) {
    Var term = sum(v * Var(test::rand_tensor(v.shape(), seed++)));
    total = total.defined() ? total + term : term;
  }
  return total;
}

struct BInputs {
  Var x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_q, KP, v, V;
  Tensor mask;
  std::vector<Var> all() const { return {x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_q, KP, v, V}; }
};

BInputs make_b(int64_t B, int64_t T, int64_t S, int64_t E, int64_t H, int64_t A, int64_t K,
               bool masked, uint64_t seed) {
  BInputs in;
  const int64_t G = 4 * H;
  in.x = test::rv({B, T, E}, seed++);
  in.h0 = test::rv({B, H}, seed++);
  in.c0 = test::rv({B, H}, seed++);
  in.w_ih = test::rv({G, E + K}, seed++, -0.5f, 0.5f);
  in.w_hh = test::rv({G, H}, seed++, -0.5f, 0.5f);
  in.b_ih = test::rv({G}, seed++);
  in.b_hh = test::rv({G}, seed++);
  in.w_q = test::rv({A, H}, seed++, -0.5f, 0.5f);
  in.KP = test::rv({B, S, A}, seed++);
  in.v = test::rv({1, A}, seed++);
  in.V = test::rv({B, S, K}, seed++);
  if (masked) in.mask = make(B, 1, S, 1, 1, 1, false, true, seed).mask;
  return in;
}

// The composite: additive attention from h_{t-1}, then the LSTM cell on [x_t | ctx_t].
// -> {[h_t | ctx_t] [B,T,H+K], h, c, weights [B,T,S]}
std::vector<Var> composite_b(const BInputs& in) {
  const int64_t B = in.x.size(0), T = in.x.size(1), E = in.x.size(2), H = in.w_hh.size(1);
  const int64_t S = in.KP.size(1), A = in.KP.size(2), K = in.V.size(2);
  Var h = in.h0, c = in.c0;
  std::vector<Var> outs, ws;
  for (int64_t t = 0; t < T; ++t) {
    Var qp = matmul(h, in.w_q, false, true);                        // [B,A]
    Var u = tanh(reshape(qp, {B, 1, A}) + in.KP);                   // [B,S,A]
    Var scores = reshape(matmul(u, in.v, false, true), {B, 1, S});  // [B,1,S]
    if (in.mask.defined()) scores = scores + Var(in.mask.view({B, 1, S}));
    Var w = softmax(scores);
    ws.push_back(reshape(w, {B, S}));
    Var ctx = reshape(matmul(w, in.V), {B, K});
    Var xt = concat({reshape(slice(in.x, 1, t, t + 1), {B, E}), ctx}, 1);
    Var g = matmul(xt, in.w_ih, false, true) + in.b_ih + matmul(h, in.w_hh, false, true) + in.b_hh;
    Var i = sigmoid(slice(g, 1, 0, H)), fg = sigmoid(slice(g, 1, H, 2 * H));
    Var gg = tanh(slice(g, 1, 2 * H, 3 * H)), o = sigmoid(slice(g, 1, 3 * H, 4 * H));
    c = fg * c + i * gg;
    h = o * tanh(c);
    outs.push_back(concat({h, ctx}, 1));
  }
  return {stack(outs, 1), h, c, stack(ws, 1)};
}

std::vector<Var> fused_b(const BInputs& in) {
  BahdanauDecoderOutput r = bahdanau_decoder(gates(in.x, in.w_ih, in.b_ih, in.b_hh), in.h0, in.c0,
                                             in.w_ih, in.w_hh, in.w_q, in.KP, in.v, in.V, in.mask);
  return {r.out, r.h, r.c, r.weights};
}

TEST_SUITE("autograd/decoder") {
  TEST_CASE("luong_decoder equals its composite: values and every gradient") {
    uint64_t seed = 1;
    struct Case {
      int64_t B, T, S, E, H, K;
      bool feeding, masked;
      float scale;
    };
    for (Case k :
         {Case{3, 4, 5, 6, 8, 8, true, true, 1.f}, Case{2, 3, 7, 5, 17, 34, true, false, 0.5f},
          Case{4, 5, 3, 16, 16, 16, false, true, 1.f}, Case{1, 1, 1, 3, 5, 7, true, false, 1.f}}) {
      const std::string what = "B" + std::to_string(k.B) + " T" + std::to_string(k.T) + " S" +
                               std::to_string(k.S) + " H" + std::to_string(k.H) + " K" +
                               std::to_string(k.K) + (k.feeding ? " feeding" : "") +
                               (k.masked ? " masked" : "");
      Inputs in = make(k.B, k.T, k.S, k.E, k.H, k.K, k.feeding, k.masked, seed);
      seed += 20;
      const std::vector<Var> vars = in.all();
      auto grads = [&](const std::vector<Var>& o) {
        backward(objective(o, 99));
        std::vector<Tensor> g;
        for (const Var& v : vars) {
          g.push_back(v.grad().clone());
          Var(v).zero_grad();
        }
        return g;
      };
      const std::vector<Var> f = fused(in, k.scale), c = composite(in, k.scale);
      for (int i = 0; i < 4; ++i)
        test::expect_close(f[size_t(i)].value(), c[size_t(i)].value(), 1e-5,
                           what + " output " + std::to_string(i));
      const std::vector<Tensor> gf = grads(f);
      const std::vector<Tensor> gc = grads(composite(in, k.scale));
      for (size_t i = 0; i < vars.size(); ++i)
        test::expect_close(gf[i], gc[i], 1e-5, what + " gradient of input " + std::to_string(i));
    }
  }

  TEST_CASE("luong_decoder weights are the attention, zero at masked keys") {
    Inputs in = make(3, 2, 4, 3, 5, 6, true, true, 300);
    LuongDecoderOutput r = luong(in.x, in.h0, in.c0, in.feed0, in.w_ih, in.w_hh, in.b_ih, in.b_hh,
                                 in.P, in.V, in.mask, in.w_c);
    REQUIRE(r.weights.shape() == Shape{3, 2, 4});
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t t = 0; t < 2; ++t) {
        double s = 0;
        for (int64_t j = 0; j < 4; ++j) s += r.weights.value().at({b, t, j});
        CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
      }
    CHECK(r.weights.value().at({1, 1, 3}) == 0.f);
  }

  TEST_CASE("luong_decoder gradcheck") {
    Inputs in = make(2, 3, 4, 3, 4, 5, true, true, 500);
    const std::vector<Var> vars = in.all();
    test::expect_ok(
        [&](const std::vector<Var>& v) {
          LuongDecoderOutput r = luong(v[0], v[1], v[2], v[10], v[3], v[4], v[5], v[6], v[7], v[8],
                                       in.mask, v[9], 0.8f);
          return concat({reshape(r.ht, {-1}), reshape(r.h, {-1}), reshape(r.c, {-1}),
                         reshape(r.weights, {-1})},
                        0);
        },
        vars, "luong_decoder");
  }

  TEST_CASE("luong_decoder names bad shapes") {
    Inputs in = make(2, 3, 4, 3, 4, 5, true, false, 700);
    const std::string e = test::error_of([&] {
      luong(in.x, in.h0, in.c0, in.feed0, in.w_ih, in.w_hh, in.b_ih, in.b_hh, in.P, in.V, in.mask,
            in.w_hh);
    });
    CHECK(e.find("luong_decoder: W_c must be [4,9]") != std::string::npos);
  }

  // ---- Bahdanau ----
  TEST_CASE("bahdanau_decoder equals its composite: values and every gradient") {
    uint64_t seed = 1000;
    struct Case {
      int64_t B, T, S, E, H, A, K;
      bool masked;
    };
    for (Case k : {Case{3, 4, 5, 6, 8, 8, 16, true}, Case{2, 3, 7, 5, 17, 19, 34, false},
                   Case{4, 5, 3, 16, 16, 33, 16, true}, Case{1, 1, 1, 3, 5, 7, 7, false}}) {
      const std::string what = "B" + std::to_string(k.B) + " T" + std::to_string(k.T) + " S" +
                               std::to_string(k.S) + " H" + std::to_string(k.H) + " A" +
                               std::to_string(k.A) + " K" + std::to_string(k.K) +
                               (k.masked ? " masked" : "");
      BInputs in = make_b(k.B, k.T, k.S, k.E, k.H, k.A, k.K, k.masked, seed);
      seed += 20;
      const std::vector<Var> vars = in.all();
      auto grads = [&](const std::vector<Var>& o) {
        backward(objective(o, 77));
        std::vector<Tensor> g;
        for (const Var& v : vars) {
          g.push_back(v.grad().clone());
          Var(v).zero_grad();
        }
        return g;
      };
      const std::vector<Var> f = fused_b(in), c = composite_b(in);
      for (int i = 0; i < 4; ++i)
        test::expect_close(f[size_t(i)].value(), c[size_t(i)].value(), 1e-5,
                           what + " output " + std::to_string(i));
      const std::vector<Tensor> gf = grads(f);
      const std::vector<Tensor> gc = grads(composite_b(in));
      for (size_t i = 0; i < vars.size(); ++i)
        test::expect_close(gf[i], gc[i], 1e-5, what + " gradient of input " + std::to_string(i));
    }
  }

  TEST_CASE("bahdanau_decoder gradcheck") {
    BInputs in = make_b(2, 3, 4, 3, 4, 5, 6, true, 1500);
    const std::vector<Var> vars = in.all();
    test::expect_ok(
        [&](const std::vector<Var>& v) {
          BahdanauDecoderOutput r = bahdanau_decoder(gates(v[0], v[3], v[5], v[6]), v[1], v[2],
                                                     v[3], v[4], v[7], v[8], v[9], v[10], in.mask);
          return concat({reshape(r.out, {-1}), reshape(r.h, {-1}), reshape(r.c, {-1}),
                         reshape(r.weights, {-1})},
                        0);
        },
        vars, "bahdanau_decoder");
  }

  TEST_CASE("bahdanau_decoder names bad shapes") {
    BInputs in = make_b(2, 3, 4, 3, 4, 5, 6, false, 1700);
    const std::string e = test::error_of([&] {
      bahdanau_decoder(gates(in.x, in.w_ih, in.b_ih, in.b_hh), in.h0, in.c0, in.w_hh, in.w_hh,
                       in.w_q, in.KP, in.v, in.V, in.mask);
    });
    CHECK(
        e.find("bahdanau_decoder: weight_ih must be [16, E + 6] (the context last), got [16,4]") !=
        std::string::npos);
    const std::string x = test::error_of([&] {
      bahdanau_decoder(in.x, in.h0, in.c0, in.w_ih, in.w_hh, in.w_q, in.KP, in.v, in.V, in.mask);
    });
    CHECK(x.find("bahdanau_decoder: the input gates xg must be [T,B,4H]") != std::string::npos);
  }
  // ---- input_gates ----
  TEST_CASE("input_gates: the projected table equals projecting the rows, values and gradients") {
    const int64_t V = 7, E = 5, H = 3, Y = 2, pad = 0;
    Var emb = test::rv({V, E}, 31), w_ih = test::rv({4 * H, E + Y}, 32),
        b_ih = test::rv({4 * H}, 33), b_hh = test::rv({4 * H}, 34);
    IntTensor ids({3, 4});
    const int32_t picks[] = {1, 2, 6, 0, 3, 3, 5, 0, 6, 1, 0, 0};  // pad (0) included
    for (int i = 0; i < 12; ++i) ids.data()[i] = picks[i];
    const std::vector<Var> vars{emb, w_ih, b_ih, b_hh};
    auto run = [&](bool table) {
      Var xg = input_gates(ids, emb, pad, w_ih, b_ih, b_hh, table, 0.f, nullptr);
      REQUIRE(xg.shape() == Shape{3, 4, 4 * H});
      backward(sum(xg * Var(test::rand_tensor(xg.shape(), 5))));
      std::vector<Tensor> r{xg.value()};
      for (const Var& v : vars) {
        r.push_back(v.grad().clone());
        Var(v).zero_grad();
      }
      return r;
    };
    const std::vector<Tensor> t = run(true), r = run(false);
    for (size_t i = 0; i < t.size(); ++i)
      test::expect_close(t[i], r[i], 1e-6, "input_gates output / gradient " + std::to_string(i));
    for (int64_t j = 0; j < E; ++j) CHECK(t[1].at({pad, j}) == 0.f);  // padding row: no gradient
    CHECK(t[2].at({0, E}) == 0.f);  // w_ih's fed columns: not input_gates' to differentiate
  }
}

}  // namespace
}  // namespace qkv

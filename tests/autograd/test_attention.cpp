// Fused scaled dot-product attention against its composite (matmul, scale,
// additive mask, softmax, matmul from existing autograd ops): values and the
// gradients of q, k, v under every mask kind and across block boundaries;
// exact zeros where keys are masked; finite differences; a fully masked row is
// an Error; the same bits for 1 and 2 threads. Attention dropout against the
// composite's dropout() on the weights from the same generator state. The packed
// self-attention entry against the same op on heads split with primitives.
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/rng.h"
#include "engine/threads.h"
#include "tests/grad_utils.h"

// Cfg literals leave the trailing optional members at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace qkv {
namespace {

using test::expect_ok;
using test::rv;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Cfg {
  int64_t B, NH, T, S, HD;
  bool causal = false;
  std::vector<int32_t> lengths;  // empty: none
  Shape mask_shape;              // empty: no float mask
  float scale = 0.f;
  float dropout = 0.f;           // attention dropout, masks from Generator(kDropSeed)
};

constexpr uint64_t kDropSeed = 4242;

std::string name_of(const Cfg& c) {
  std::string s = std::string("B") + std::to_string(c.B) + " NH" + std::to_string(c.NH) + " T" +
                  std::to_string(c.T) + " S" + std::to_string(c.S) + " HD" + std::to_string(c.HD);
  if (c.causal) s += " causal";
  if (!c.lengths.empty()) s += " lengths";
  if (!c.mask_shape.empty()) s += " mask" + shape_str(c.mask_shape);
  if (c.dropout > 0.f) s += " dropout";
  return s;
}

// The additive float mask of a config (values in [-2, 2], a few -inf).
Tensor make_mask(const Cfg& c, uint64_t seed) {
  if (c.mask_shape.empty()) return Tensor();
  Tensor m = test::rand_tensor(c.mask_shape, seed, -2.f, 2.f);
  // -inf on every 7th element but never on the last axis' first entry.
  const int64_t last = c.mask_shape.back();
  for (int64_t i = 0; i < m.numel(); ++i)
    if (i % 7 == 3 && i % last != 0) m.data()[i] = -kInf;
  return m;
}

// Everything masked, as one additive [B,NH,T,S] tensor (the composite's input).
Tensor full_mask(const Cfg& c, const Tensor& attn_mask) {
  Tensor m;
  if (attn_mask.defined()) {
    Shape s4(4 - attn_mask.dim(), 1);
    s4.insert(s4.end(), attn_mask.shape().begin(), attn_mask.shape().end());
    m = expand_to(attn_mask.view(s4), {c.B, c.NH, c.T, c.S});
  } else {
    m = Tensor::zeros({c.B, c.NH, c.T, c.S});
  }
  m = m.clone();
  float* p = m.data();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.NH; ++h)
      for (int64_t t = 0; t < c.T; ++t)
        for (int64_t s = 0; s < c.S; ++s) {
          bool masked = (!c.lengths.empty() && s >= c.lengths[b]) || (c.causal && s > t + c.S - c.T);
          if (masked) p[((b * c.NH + h) * c.T + t) * c.S + s] = -kInf;
        }
  return m;
}

// The oracle: softmax(q k^T * scale + mask) v from autograd primitives -> {out, weights}.
std::vector<Var> composite(const Cfg& c, const Var& q, const Var& k, const Var& v,
                           const Tensor& attn_mask) {
  const float scale = c.scale > 0.f ? c.scale : 1.f / std::sqrt(float(c.HD));
  Var s = matmul(q, k, false, true) * scale + Var(full_mask(c, attn_mask));
  Var w = softmax(s);
  if (c.dropout > 0.f) {
    Generator gen(kDropSeed);
    return {matmul(dropout(w, c.dropout, true, gen), v), w};
  }
  return {matmul(w, v), w};
}

IntTensor lengths_of(const Cfg& c) { return IntTensor::from({c.B}, c.lengths); }

std::vector<Var> fused(const Cfg& c, const Var& q, const Var& k, const Var& v,
                       const Tensor& attn_mask, bool weights) {
  IntTensor L = c.lengths.empty() ? IntTensor() : lengths_of(c);
  const IntTensor* lp = c.lengths.empty() ? nullptr : &L;
  Generator gen(kDropSeed);
  if (weights)
    return scaled_dot_product_attention_weights(q, k, v, c.causal, lp, attn_mask, c.scale,
                                                c.dropout, &gen);
  return {scaled_dot_product_attention(q, k, v, c.causal, lp, attn_mask, c.scale, c.dropout, &gen)};
}

struct Run {
  Tensor out, w, dq, dk, dv;
};

// Forward + backward of loss = sum(out * R1) (+ sum(weights * R2) when with_w).
Run run(const Cfg& c, bool use_fused, bool with_w, uint64_t seed) {
  Var q = rv({c.B, c.NH, c.T, c.HD}, seed + 1, -1.5f, 1.5f);
  Var k = rv({c.B, c.NH, c.S, c.HD}, seed + 2, -1.5f, 1.5f);
  Var v = rv({c.B, c.NH, c.S, c.HD}, seed + 3);
  Tensor mask = make_mask(c, seed + 4);
  std::vector<Var> r = use_fused ? fused(c, q, k, v, mask, with_w) : composite(c, q, k, v, mask);
  Var loss = sum(r[0] * Var(test::rand_tensor(r[0].shape(), seed + 5, -2.f, 2.f)));
  if (with_w) loss = loss + sum(r[1] * Var(test::rand_tensor(r[1].shape(), seed + 6, -2.f, 2.f)));
  Tensor w = r.size() > 1 ? r[1].value() : Tensor();
  backward(loss);
  return {r[0].value(), w, q.grad(), k.grad(), v.grad()};
}

void expect_matches(const Cfg& c, bool with_w, uint64_t seed) {
  const std::string what = name_of(c) + (with_w ? " (weights)" : "");
  Run f = run(c, true, with_w, seed), r = run(c, false, with_w, seed);
  test::expect_close(f.out, r.out, 1e-5, what + " out");
  if (with_w) test::expect_close(f.w, r.w, 1e-5, what + " weights");
  test::expect_close(f.dq, r.dq, 1e-5, what + " dq");
  test::expect_close(f.dk, r.dk, 1e-5, what + " dk");
  test::expect_close(f.dv, r.dv, 1e-5, what + " dv");
}

std::vector<Cfg> configs() {
  return {
      {2, 2, 5, 5, 8},
      {1, 1, 1, 1, 1},
      {2, 3, 6, 6, 1},
      {2, 2, 7, 7, 17},
      {2, 2, 7, 7, 8, true},
      {1, 2, 150, 150, 17, true},                // causal across query and key blocks
      {2, 2, 5, 9, 8, true},                     // causal, T < S (bottom-right aligned)
      {1, 2, 70, 200, 17, true, {200}},          // the same across blocks, with a length
      {3, 2, 6, 9, 8, false, {9, 4, 1}},          // key lengths, S != T
      {2, 1, 70, 300, 8, false, {300, 131}},      // lengths across key blocks
      {2, 2, 5, 5, 8, false, {}, {5, 5}},         // [T,S] float mask
      {2, 2, 4, 9, 17, false, {}, {2, 1, 4, 9}},  // [B,1,T,S] float mask, S != T
      {2, 3, 4, 6, 8, false, {}, {3, 1, 6}},      // [NH,1,S] float mask
      {2, 2, 9, 3, 8},                            // S < T
      {1, 2, 100, 260, 16},                       // many blocks, no mask
      {2, 2, 8, 8, 17, true, {8, 5}, {8, 8}},     // everything at once
      {1, 1, 6, 6, 8, false, {}, {}, 0.7f},       // explicit scale
      {2, 2, 7, 9, 8, false, {}, {}, 0.f, 0.3f},  // attention dropout
      {1, 2, 150, 150, 17, true, {}, {}, 0.f, 0.5f},             // dropout across blocks
      {2, 2, 8, 8, 17, true, {8, 5}, {8, 8}, 0.f, 0.2f},          // dropout and every mask
      {2, 1, 70, 300, 8, false, {300, 131}, {}, 0.f, 0.1f},       // dropout, lengths
  };
}

TEST_SUITE("autograd/sdpa") {
  TEST_CASE("values and q, k, v gradients equal the composite") {
    uint64_t seed = 100;
    for (const Cfg& c : configs()) expect_matches(c, false, seed += 10);
  }

  TEST_CASE("the weights variant: weights and gradients through both outputs equal the composite") {
    uint64_t seed = 500;
    for (const Cfg& c : configs()) expect_matches(c, true, seed += 10);
  }

  TEST_CASE("causal: weights on later keys are exactly 0 and their rows sum to 1") {
    Cfg c{2, 2, 70, 70, 8, true};
    Run f = run(c, true, true, 7);
    const float* w = f.w.data();
    for (int64_t r = 0; r < c.B * c.NH; ++r)
      for (int64_t t = 0; t < c.T; ++t) {
        double s = 0;
        for (int64_t j = 0; j < c.S; ++j) {
          const float x = w[(r * c.T + t) * c.S + j];
          if (j > t) REQUIRE(x == 0.f);
          s += x;
        }
        CHECK(std::fabs(s - 1.0) < 1e-5);
      }
    // The first query sees only the first key: its output is v[0] exactly.
    Var q = rv({1, 1, 4, 3}, 1), k = rv({1, 1, 4, 3}, 2), v = rv({1, 1, 4, 3}, 3);
    std::vector<Var> ow = scaled_dot_product_attention_weights(q, k, v, true);
    for (int d = 0; d < 3; ++d) CHECK(ow[0].value().data()[d] == v.value().data()[d]);
    // The last key gets gradient only from the last query: dv[last] = w[last,last] dout[last].
    const float wll = ow[1].value().data()[15];
    Tensor up = test::rand_tensor({1, 1, 4, 3}, 9);
    backward(ow[0], up);
    for (int d = 0; d < 3; ++d)
      CHECK(v.grad().data()[9 + d] == doctest::Approx(wll * up.data()[9 + d]).epsilon(1e-5));
  }

  TEST_CASE("key padding: masked keys get zero weight and zero dk, dv") {
    Cfg c{3, 2, 5, 200, 8, false, {200, 3, 150}};
    Run f = run(c, true, true, 11);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.NH; ++h) {
        const int64_t r = b * c.NH + h;
        for (int64_t s = c.lengths[b]; s < c.S; ++s) {
          for (int64_t t = 0; t < c.T; ++t) REQUIRE(f.w.data()[(r * c.T + t) * c.S + s] == 0.f);
          for (int64_t d = 0; d < c.HD; ++d) {
            REQUIRE(f.dk.data()[(r * c.S + s) * c.HD + d] == 0.f);
            REQUIRE(f.dv.data()[(r * c.S + s) * c.HD + d] == 0.f);
          }
        }
      }
  }

  TEST_CASE("gradcheck with each mask kind") {
    const std::vector<Cfg> cs = {
        {1, 2, 3, 4, 3},
        {2, 1, 4, 4, 2, true},
        {2, 1, 3, 5, 3, false, {5, 2}},
        {1, 2, 3, 4, 3, false, {}, {1, 3, 4}},
        {2, 1, 4, 4, 2, true, {4, 3}, {4, 4}},
        {2, 1, 4, 4, 2, true, {4, 3}, {4, 4}, 0.f, 0.4f},
    };
    uint64_t seed = 900;
    for (const Cfg& c : cs) {
      Var q = rv({c.B, c.NH, c.T, c.HD}, seed += 3), k = rv({c.B, c.NH, c.S, c.HD}, seed + 1),
          v = rv({c.B, c.NH, c.S, c.HD}, seed + 2);
      q.set_name("q"), k.set_name("k"), v.set_name("v");
      Tensor mask = make_mask(c, seed + 4);
      expect_ok([&](const std::vector<Var>& in) { return fused(c, in[0], in[1], in[2], mask, false)[0]; },
                {q, k, v}, name_of(c));
      expect_ok([&](const std::vector<Var>& in) { return fused(c, in[0], in[1], in[2], mask, true)[1]; },
                {q, k, v}, name_of(c) + " weights");
    }
  }

  TEST_CASE("dropout: p = 0 is a no-op and draws nothing; p > 0 consumes a [B,NH,T,S] mask") {
    Cfg c{2, 2, 5, 7, 8};
    Var q = rv({2, 2, 5, 8}, 1), k = rv({2, 2, 7, 8}, 2), v = rv({2, 2, 7, 8}, 3);
    Generator gen(5);
    Tensor a = scaled_dot_product_attention(q, k, v, false, nullptr, Tensor(), 0.f, 0.f, &gen).value();
    Tensor b = scaled_dot_product_attention(q, k, v).value();
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    CHECK(gen.counter() == 0);
    Tensor d = scaled_dot_product_attention(q, k, v, false, nullptr, Tensor(), 0.f, 0.5f, &gen).value();
    CHECK(gen.counter() == uint64_t((2 * 2 * 5 * 7 + 3) / 4));
    CHECK(!std::equal(d.begin(), d.end(), b.begin()));
    CHECK(test::error_of([&] { scaled_dot_product_attention(q, k, v, false, nullptr, Tensor(), 0.f, 0.5f); })
              .find("generator") != std::string::npos);
    CHECK(test::error_of([&] { scaled_dot_product_attention(q, k, v, false, nullptr, Tensor(), 0.f, 1.f, &gen); })
              .find("dropout_p") != std::string::npos);
    tape_clear();
  }

  TEST_CASE("a fully masked row is an Error naming the op; bad shapes are Errors") {
    Var q = rv({2, 1, 3, 4}, 1), k = rv({2, 1, 5, 4}, 2), v = rv({2, 1, 5, 4}, 3);
    IntTensor L = IntTensor::from({2}, {5, 0});
    std::string e = test::error_of([&] { scaled_dot_product_attention(q, k, v, false, &L); });
    CHECK(e.find("scaled_dot_product_attention") != std::string::npos);
    CHECK(e.find("every key masked") != std::string::npos);
    Tensor m = Tensor::zeros({3, 5});
    for (int j = 0; j < 5; ++j) m.data()[5 + j] = -kInf;  // row 1 fully masked
    e = test::error_of([&] { scaled_dot_product_attention_weights(q, k, v, false, nullptr, m); });
    CHECK(e.find("scaled_dot_product_attention_weights") != std::string::npos);
    CHECK(e.find("every key masked") != std::string::npos);
    tape_clear();
    // causal with T > S: the first T - S queries see no key (bottom-right alignment)
    e = test::error_of([&] { scaled_dot_product_attention(k, q, q, true); });
    CHECK(e.find("query row 0 of batch 0") != std::string::npos);
    CHECK(e.find("every key masked") != std::string::npos);
    CHECK(test::error_of([&] { scaled_dot_product_attention(q, k, v, false, nullptr, Tensor::zeros({3, 4})); })
              .find("broadcast") != std::string::npos);
    CHECK(test::error_of([&] { scaled_dot_product_attention(q, Var(Tensor::zeros({2, 1, 5, 3})), v); })
              .find("scaled_dot_product_attention") != std::string::npos);
    IntTensor L2 = IntTensor::from({2}, {6, 1});
    CHECK(test::error_of([&] { scaled_dot_product_attention(q, k, v, false, &L2); })
              .find("key length") != std::string::npos);
  }

  TEST_CASE("identical results for 1 and 2 threads") {
    const int prev = num_threads();
    Cfg c{2, 2, 130, 300, 16, false, {300, 200}, {130, 300}};
    Cfg cc{2, 2, 150, 150, 16, true};
    for (const Cfg& x : {c, cc}) {
      set_num_threads(1);
      Run a = run(x, true, false, 77);
      set_num_threads(2);
      Run b = run(x, true, false, 77);
      set_num_threads(prev);
      for (auto [p, q] : {std::pair{&a.out, &b.out}, {&a.dq, &b.dq}, {&a.dk, &b.dk}, {&a.dv, &b.dv}})
        CHECK(std::equal(p->begin(), p->end(), q->begin()));
    }
  }
}

// ---- the packed self-attention entry ----------------------------------------------------

// The oracle of the packed op: split qkv [B,T,3D] into [B,NH,T,HD] heads with
// primitives, the ordinary fused op, merge the heads back to [B,T,D].
Var packed_oracle(const Cfg& c, const Var& qkv, const Tensor& mask, const IntTensor* lp) {
  const int64_t D = c.NH * c.HD;
  auto head = [&](int i) {
    return permute(reshape(slice(qkv, 2, i * D, (i + 1) * D), {c.B, c.T, c.NH, c.HD}), {0, 2, 1, 3});
  };
  Generator gen(kDropSeed);
  Var o = scaled_dot_product_attention(head(0), head(1), head(2), c.causal, lp, mask, c.scale,
                                       c.dropout, &gen);
  return reshape(permute(o, {0, 2, 1, 3}), {c.B, c.T, D});
}

Var packed(const Cfg& c, const Var& qkv, const Tensor& mask, const IntTensor* lp) {
  Generator gen(kDropSeed);
  return scaled_dot_product_attention_packed(qkv, c.NH, c.causal, lp, mask, c.scale, c.dropout, &gen);
}

// Forward + backward of sum(out * R) -> {out, dqkv}.
std::pair<Tensor, Tensor> run_packed(const Cfg& c, bool use_packed, uint64_t seed) {
  Var qkv = rv({c.B, c.T, 3 * c.NH * c.HD}, seed, -1.5f, 1.5f);
  Tensor mask = make_mask(c, seed + 4);
  IntTensor L = c.lengths.empty() ? IntTensor() : lengths_of(c);
  const IntTensor* lp = c.lengths.empty() ? nullptr : &L;
  Var o = use_packed ? packed(c, qkv, mask, lp) : packed_oracle(c, qkv, mask, lp);
  backward(o, test::rand_tensor(o.shape(), seed + 5, -2.f, 2.f));
  return {o.value(), qkv.grad()};
}

TEST_SUITE("autograd/sdpa_packed") {
  TEST_CASE("values and the qkv gradient equal the split-heads op, every mask kind") {
    uint64_t seed = 1300;
    for (const Cfg& c : configs()) {
      if (c.T != c.S) continue;  // self-attention only
      auto [o1, g1] = run_packed(c, true, seed += 10);
      auto [o2, g2] = run_packed(c, false, seed);
      test::expect_close(o1, o2, 1e-6, name_of(c) + " packed out");
      test::expect_close(g1, g2, 1e-6, name_of(c) + " packed dqkv");
    }
  }

  TEST_CASE("gradcheck") {
    const std::vector<Cfg> cs = {
        {2, 2, 3, 3, 3},
        {2, 1, 4, 4, 2, true, {4, 3}, {4, 4}},
        {1, 2, 4, 4, 2, true, {}, {}, 0.f, 0.4f},
    };
    uint64_t seed = 1700;
    for (const Cfg& c : cs) {
      Var qkv = rv({c.B, c.T, 3 * c.NH * c.HD}, seed += 3);
      qkv.set_name("qkv");
      Tensor mask = make_mask(c, seed + 4);
      IntTensor L = c.lengths.empty() ? IntTensor() : lengths_of(c);
      const IntTensor* lp = c.lengths.empty() ? nullptr : &L;
      expect_ok([&](const std::vector<Var>& in) { return packed(c, in[0], mask, lp); }, {qkv},
                name_of(c) + " packed");
    }
  }

  TEST_CASE("identical results for 1 and 2 threads; bad shapes are Errors") {
    const int prev = num_threads();
    Cfg c{2, 4, 150, 150, 16, true, {150, 77}};
    set_num_threads(1);
    auto [o1, g1] = run_packed(c, true, 91);
    set_num_threads(2);
    auto [o2, g2] = run_packed(c, true, 91);
    set_num_threads(prev);
    CHECK(std::equal(o1.begin(), o1.end(), o2.begin()));
    CHECK(std::equal(g1.begin(), g1.end(), g2.begin()));
    CHECK(test::error_of([&] { scaled_dot_product_attention_packed(rv({2, 3, 10}, 1), 2); })
              .find("scaled_dot_product_attention_packed") != std::string::npos);
    CHECK(test::error_of([&] { scaled_dot_product_attention_packed(rv({2, 3, 4, 12}, 1), 2); })
              .find("[B,T,3*NH*HD]") != std::string::npos);
    tape_clear();
  }
}

}  // namespace
}  // namespace qkv

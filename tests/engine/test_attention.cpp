// The fused attention kernels against their double-precision references,
// called directly (no Var): forward output and lse, the weights, and dq, dk, dv
// (with and without an upstream weights gradient), swept over T, S and HD with
// tails on the vector width and the 64-query / 128-key blocks; causal with
// T == S, T < S and T > S (bottom-right alignment), key lengths, broadcast
// float masks, dropout, and the packed [B,T,3D] layout.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "engine/kernels/attention.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

using test::expect_close;
using test::rand_tensor;

struct Case {
  int64_t B, NH, T, S, HD;
  bool causal = false;
  std::vector<int32_t> lengths;  // empty: none
  Shape mask_shape;              // empty: no float mask (right-aligned to [B,NH,T,S])
  float drop_p = 0.f;
  bool packed = false;  // q | k | v in one [B,T,3D] tensor (T == S)
};

std::string name_of(const Case& c) {
  std::string s = "B" + std::to_string(c.B) + " NH" + std::to_string(c.NH) + " T" +
                  std::to_string(c.T) + " S" + std::to_string(c.S) + " HD" + std::to_string(c.HD);
  if (c.causal) s += " causal";
  if (!c.lengths.empty()) s += " lengths";
  if (!c.mask_shape.empty()) s += " mask" + shape_str(c.mask_shape);
  if (c.drop_p > 0.f) s += " dropout";
  if (c.packed) s += " packed";
  return s;
}

AttentionCall call_of(const Case& c, uint64_t seed) {
  AttentionCall a;
  a.B = c.B, a.NH = c.NH, a.T = c.T, a.S = c.S, a.HD = c.HD;
  a.scale = 0.37f;
  a.causal = c.causal;
  a.lengths = c.lengths;
  if (!c.mask_shape.empty()) {
    a.mask = rand_tensor(c.mask_shape, seed, -2.f, 2.f);
    for (int64_t i = 3; i < a.mask.numel(); i += 7)  // a few -inf, never a whole row
      if (i % c.mask_shape.back() != 0) a.mask.data()[i] = -std::numeric_limits<float>::infinity();
    Shape ms(4 - c.mask_shape.size(), 1);
    ms.insert(ms.end(), c.mask_shape.begin(), c.mask_shape.end());
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      a.ms[i] = ms[i] == 1 ? 0 : stride;
      stride *= ms[i];
    }
  }
  if (c.drop_p > 0.f) {
    a.drop_p = c.drop_p, a.drop_scale = 1.f / (1.f - c.drop_p);
    a.drop_seed = seed + 1, a.drop_base = 12345;
  }
  const int64_t D = c.NH * c.HD;
  if (c.packed) {
    a.lq = a.lk = a.lv = layout_btw(c.T, c.HD, 3 * D);
    a.lo = layout_btw(c.T, c.HD, D);
  } else {
    a.lq = a.lo = layout_bhtd(c.NH, c.T, c.HD);
    a.lk = a.lv = layout_bhtd(c.NH, c.S, c.HD);
  }
  return a;
}

// The operands of a case: q, k, v (views into one tensor when packed), dout,
// and the gradient buffers sized like them.
struct Operands {
  Tensor q, k, v, dout;
  int64_t koff = 0, voff = 0;  // k and v offsets in q's storage (packed)
  const float* qp() const { return q.data(); }
  const float* kp() const { return k.defined() ? k.data() : q.data() + koff; }
  const float* vp() const { return v.defined() ? v.data() : q.data() + voff; }
};

Operands operands_of(const Case& c, uint64_t seed) {
  Operands o;
  const int64_t D = c.NH * c.HD;
  if (c.packed) {
    o.q = rand_tensor({c.B, c.T, 3 * D}, seed, -1.5f, 1.5f);
    o.koff = D, o.voff = 2 * D;
    o.dout = rand_tensor({c.B, c.T, D}, seed + 3, -2.f, 2.f);
  } else {
    o.q = rand_tensor({c.B, c.NH, c.T, c.HD}, seed, -1.5f, 1.5f);
    o.k = rand_tensor({c.B, c.NH, c.S, c.HD}, seed + 1, -1.5f, 1.5f);
    o.v = rand_tensor({c.B, c.NH, c.S, c.HD}, seed + 2);
    o.dout = rand_tensor({c.B, c.NH, c.T, c.HD}, seed + 3, -2.f, 2.f);
  }
  return o;
}

// The gradients of one backward call: dq, dk, dv (one shared buffer when packed).
struct Grads {
  Tensor dq, dk, dv;
};
Grads grads_of(const Case& c, const Operands& o) {
  Grads g;
  g.dq = Tensor(o.q.shape());
  if (!c.packed) g.dk = Tensor(o.k.shape()), g.dv = Tensor(o.v.shape());
  return g;
}
float* dkp(const Case& c, Grads& g) { return c.packed ? g.dq.data() + c.NH * c.HD : g.dk.data(); }
float* dvp(const Case& c, Grads& g) {
  return c.packed ? g.dq.data() + 2 * c.NH * c.HD : g.dv.data();
}

void check_case(const Case& c, uint64_t seed) {
  const std::string what = name_of(c);
  INFO(what);
  const AttentionCall a = call_of(c, seed);
  const Operands o = operands_of(c, seed);
  const Shape out_shape = c.packed ? Shape{c.B, c.T, c.NH * c.HD} : Shape{c.B, c.NH, c.T, c.HD};
  Tensor out(out_shape), out_ref(out_shape), lse({c.B * c.NH * c.T}), lse_ref({c.B * c.NH * c.T});
  Tensor w({c.B, c.NH, c.T, c.S}), w_ref({c.B, c.NH, c.T, c.S});
  const int64_t bad = attention_forward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data());
  const int64_t bad_ref = attention_forward_ref(a, o.qp(), o.kp(), o.vp(), out_ref.data(),
                                                lse_ref.data(), w_ref.data());
  REQUIRE(bad == bad_ref);
  if (bad >= 0) return;  // no softmax to compare (the cases that expect it check bad)
  expect_close(out, out_ref, 2e-5, what + " out");
  expect_close(lse, lse_ref, 2e-6, what + " lse");
  attention_weights(a, o.qp(), o.kp(), lse.data(), w.data());
  expect_close(w, w_ref, 2e-6, what + " weights");
  for (int64_t i = 0; i < w.numel(); ++i)  // masked keys: exactly 0
    if (w_ref.data()[i] == 0.f) REQUIRE(w.data()[i] == 0.f);

  const Tensor dw = rand_tensor(w.shape(), seed + 7, -2.f, 2.f);
  for (bool with_w : {false, true}) {
    Grads g = grads_of(c, o), r = grads_of(c, o);
    const float* dwp = with_w ? dw.data() : nullptr;
    const float* wp = with_w ? w.data() : nullptr;
    attention_backward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data(), o.dout.data(), dwp, wp,
                       g.dq.data(), dkp(c, g), dvp(c, g));
    attention_backward_ref(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data(), o.dout.data(), dwp,
                           wp, r.dq.data(), dkp(c, r), dvp(c, r));
    const std::string tag = what + (with_w ? " (dw)" : "");
    expect_close(g.dq, r.dq, 1e-4, tag + (c.packed ? " dqkv" : " dq"));
    if (!c.packed) {
      expect_close(g.dk, r.dk, 1e-4, tag + " dk");
      expect_close(g.dv, r.dv, 1e-4, tag + " dv");
    }
  }
}

TEST_SUITE("engine/attention") {
  TEST_CASE("forward, weights and backward equal the references over sizes with tails") {
    uint64_t seed = 10;
    for (int64_t HD : {1, 3, 16, 17, 33})
      for (auto [T, S] : std::vector<std::pair<int64_t, int64_t>>{
               {1, 1}, {5, 17}, {17, 5}, {63, 127}, {64, 128}, {65, 129}, {130, 260}})
        check_case({2, 2, T, S, HD}, seed += 10);
  }

  TEST_CASE("causal: T == S, T < S and T > S aligned bottom-right") {
    uint64_t seed = 1000;
    for (auto [T, S] : std::vector<std::pair<int64_t, int64_t>>{
             {7, 7}, {65, 65}, {150, 150}, {5, 9}, {70, 200}, {1, 129}})
      check_case({2, 2, T, S, 17, true}, seed += 10);
    // T > S: query t sees keys j <= t - (T - S); the first T - S rows see none.
    const Case c{1, 2, 9, 4, 8, true};
    const AttentionCall a = call_of(c, 5);
    CHECK(a.key_limit(0, 0) == 0);
    CHECK(a.key_limit(0, 5) == 1);
    CHECK(a.key_limit(0, 8) == 4);
    const Operands o = operands_of(c, 5);
    Tensor out({1, 2, 9, 8}), lse({18});
    CHECK(attention_forward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data()) == 0);
  }

  TEST_CASE("key lengths, broadcast float masks and everything at once") {
    check_case({3, 2, 6, 9, 8, false, {9, 4, 1}}, 2001);
    check_case({2, 1, 70, 300, 17, false, {300, 131}}, 2002);
    check_case({2, 2, 5, 5, 8, false, {}, {5, 5}}, 2003);
    check_case({2, 2, 4, 9, 17, false, {}, {2, 1, 4, 9}}, 2004);
    check_case({2, 3, 4, 6, 8, false, {}, {3, 1, 6}}, 2005);
    check_case({2, 2, 66, 140, 17, true, {140, 100}, {66, 140}}, 2006);
    // a zero length masks a whole batch: its first row is the one reported
    const Case z{2, 2, 3, 5, 4, false, {5, 0}};
    const AttentionCall a = call_of(z, 1);
    const Operands o = operands_of(z, 1);
    Tensor out({2, 2, 3, 4}), lse({12});
    CHECK(attention_forward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data()) == 6);
  }

  TEST_CASE("dropout: the same mask forward and backward as the reference draws") {
    check_case({2, 2, 7, 9, 8, false, {}, {}, 0.3f}, 3001);
    check_case({1, 2, 150, 150, 17, true, {}, {}, 0.5f}, 3002);
    check_case({2, 2, 8, 8, 17, true, {8, 5}, {8, 8}, 0.2f}, 3003);
  }

  TEST_CASE("the packed [B,T,3D] layout") {
    check_case({2, 2, 5, 5, 8, false, {}, {}, 0.f, true}, 4001);
    check_case({2, 3, 65, 65, 17, true, {65, 30}, {}, 0.f, true}, 4002);
    check_case({1, 2, 130, 130, 16, true, {}, {}, 0.25f, true}, 4003);
  }

  TEST_CASE("the same bits for 1 and 2 threads") {
    const Case c{2, 2, 130, 300, 16, true, {300, 200}};
    const AttentionCall a = call_of(c, 9);
    const Operands o = operands_of(c, 9);
    const int prev = num_threads();
    std::vector<Tensor> res;
    for (int nt : {1, 2}) {
      set_num_threads(nt);
      Tensor out({2, 2, 130, 16}), lse({2 * 2 * 130});
      Grads g = grads_of(c, o);
      attention_forward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data());
      attention_backward(a, o.qp(), o.kp(), o.vp(), out.data(), lse.data(), o.dout.data(), nullptr,
                         nullptr, g.dq.data(), g.dk.data(), g.dv.data());
      res.insert(res.end(), {out, g.dq, g.dk, g.dv});
    }
    set_num_threads(prev);
    for (size_t i = 0; i < 4; ++i)
      CHECK(std::equal(res[i].begin(), res[i].end(), res[i + 4].begin()));
  }
}

}  // namespace
}  // namespace qkv

// Differentiable elementwise ops: broadcasting binary ops, scalar ops, pow and
// the unary activations. Forwards run the engine kernels; each backward closure
// captures only what it reads (add: two shapes; mul: the other operand; unary
// ops: x or y as unary_backward_reads_x/_y say). Gradients of broadcast inputs
// are summed back to the input's shape by sum_to_shape (ops_layout.cpp).
// Not here: fused bias+activation, or in-place variants.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "engine/kernels/reduce.h"
#include "engine/threads.h"

namespace qkv {

// ---- expand: the adjoint of sum_to_shape (also used by ops_reduce.cpp) -----------------

namespace {

// A run of adjacent axes of the big shape along which the small shape is either
// entirely stretched (bcast) or entirely present. Axes of size 1 in the big shape
// move nothing and are dropped, so [A,1,C] vs [A,B,C] gives {A}, {B, bcast}, {C}.
struct Group {
  int64_t size;
  bool bcast;
};

std::vector<Group> broadcast_groups(const Shape& small, const Shape& big, const char* op) {
  check(small.size() <= big.size(), op, ": shape ", small, " does not broadcast to ", big);
  const size_t lead = big.size() - small.size();
  std::vector<Group> gs;
  for (size_t i = 0; i < big.size(); ++i) {
    const int64_t d = i < lead ? 1 : small[i - lead];
    check(d == big[i] || d == 1, op, ": shape ", small, " does not broadcast to ", big);
    if (big[i] == 1) continue;
    const bool bcast = d == 1;
    if (!gs.empty() && gs.back().bcast == bcast) {
      gs.back().size *= big[i];
    } else {
      gs.push_back({big[i], bcast});
    }
  }
  return gs;
}

// dst: the block of groups [k, end) of the expanded output; src: the matching
// block of the source. dstep[k]/sstep[k]: elements of dst/src per step of group k.
// A stretched group is written once and then copied, so the inner loop is always
// a memcpy or a fill.
void expand_block(const float* src, float* dst, const std::vector<Group>& gs, size_t k,
                  const std::vector<int64_t>& dstep, const std::vector<int64_t>& sstep) {
  const Group& g = gs[k];
  if (k + 1 == gs.size()) {
    if (g.bcast) {
      std::fill(dst, dst + g.size, src[0]);
    } else {
      std::memcpy(dst, src, size_t(g.size) * sizeof(float));
    }
    return;
  }
  if (g.bcast) {
    expand_block(src, dst, gs, k + 1, dstep, sstep);
    for (int64_t i = 1; i < g.size; ++i)
      std::memcpy(dst + i * dstep[k], dst, size_t(dstep[k]) * sizeof(float));
  } else {
    for (int64_t i = 0; i < g.size; ++i)
      expand_block(src + i * sstep[k], dst + i * dstep[k], gs, k + 1, dstep, sstep);
  }
}

}  // namespace

// t: [...] broadcastable to s -> [s], a contiguous copy (t itself when shapes match).
Tensor expand_to(const Tensor& t, const Shape& s) {
  if (t.shape() == s) return t;
  const std::vector<Group> gs = broadcast_groups(t.shape(), s, "expand");
  Tensor out(s);
  if (out.numel() == 0) return out;
  if (gs.empty()) {  // one element
    out.data()[0] = t.data()[0];
    return out;
  }
  const size_t ng = gs.size();
  std::vector<int64_t> dstep(ng, 1), sstep(ng, 1);
  for (size_t k = ng - 1; k-- > 0;) {
    dstep[k] = dstep[k + 1] * gs[k + 1].size;
    sstep[k] = sstep[k + 1] * (gs[k + 1].bcast ? 1 : gs[k + 1].size);
  }
  const float* src = t.data();
  float* dst = out.data();
  // Memory-bound copies: two threads help only for large outputs with a split
  // at the top. A stretched top group is written once, then copied in parallel.
  const Group& top = gs[0];
  if (!worth_threads(out.numel()) || num_threads() == 1 || top.size < 2 || ng == 1) {
    expand_block(src, dst, gs, 0, dstep, sstep);
    return out;
  }
  if (top.bcast) {
    expand_block(src, dst, gs, 1, dstep, sstep);
  }
  const int64_t first = top.bcast ? 1 : 0;
  parallel_for(top.size - first, out.numel(), [&](int64_t j) {
    const int64_t i = first + j;
    if (top.bcast) {
      std::memcpy(dst + i * dstep[0], dst, size_t(dstep[0]) * sizeof(float));
    } else {
      expand_block(src + i * sstep[0], dst + i * dstep[0], gs, 1, dstep, sstep);
    }
  });
  return out;
}

namespace {

std::vector<Tensor> grads(Tensor a, Tensor b) { return {std::move(a), std::move(b)}; }

// The captured value when the other input needs a gradient (mul, div): a Var whose
// partner is a constant keeps nothing alive.
Tensor keep_if(bool needed, const Var& v) { return needed ? v.value() : Tensor(); }

// x: [...] -> x^p. Exact special cases through the SIMD kernels; otherwise powf
// (correctly rounded in glibc, and defined for negative x with integer p).
Tensor pow_tensor(const Tensor& x, float p) {
  if (p == 1.f) return x.clone();
  if (p == 2.f) return mul(x, x);
  if (p == 0.5f) return unary(UnaryOp::sqrt, x);
  if (p == -0.5f) return unary(UnaryOp::rsqrt, x);
  if (p == -1.f) return div(Tensor::scalar(1.f), x);
  Tensor y(x.shape());
  const float* px = x.data();
  float* py = y.data();
  const int64_t n = x.numel();
  // powf is ~20x a copy: threads pay off from ~2K elements.
  parallel_for(n, n * 16, [&](int64_t i) { py[i] = std::pow(px[i], p); });
  return y;
}

}  // namespace

// ---- broadcasting binary ops --------------------------------------------------------------
// a: [...A], b: [...B] -> out: broadcast([...A], [...B]); g has out's shape.

Var add(const Var& a, const Var& b) {
  Tensor out = binary(BinaryOp::add, a.value(), b.value());
  // out = a + b:  da = sum_to_shape(g), db = sum_to_shape(g)
  return record("add", std::move(out), {a, b},
                [sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& needs) {
                  return grads(needs[0] ? sum_to_shape(g, sa) : Tensor(),
                               needs[1] ? sum_to_shape(g, sb) : Tensor());
                });
}

Var sub(const Var& a, const Var& b) {
  Tensor out = binary(BinaryOp::sub, a.value(), b.value());
  // out = a - b:  da = sum_to_shape(g), db = -sum_to_shape(g) (negated after reducing)
  return record("sub", std::move(out), {a, b},
                [sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& needs) {
                  Tensor db;
                  if (needs[1]) db = unary(UnaryOp::neg, sum_to_shape(g, sb));
                  return grads(needs[0] ? sum_to_shape(g, sa) : Tensor(), std::move(db));
                });
}

Var mul(const Var& a, const Var& b) {
  Tensor out = binary(BinaryOp::mul, a.value(), b.value());
  // out = a * b:  da = sum_to_shape(g * b), db = sum_to_shape(g * a)
  return record("mul", std::move(out), {a, b},
                [ka = keep_if(b.requires_grad(), a), kb = keep_if(a.requires_grad(), b),
                 sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& needs) {
                  Tensor da, db;
                  if (needs[0] && kb.defined()) da = sum_to_shape(mul(g, kb), sa);
                  if (needs[1] && ka.defined()) db = sum_to_shape(mul(g, ka), sb);
                  return grads(std::move(da), std::move(db));
                });
}

Var div(const Var& a, const Var& b) {
  Tensor out = binary(BinaryOp::div, a.value(), b.value());
  // out = a / b:  da = sum_to_shape(g / b), db = -sum_to_shape(g * a / b / b)
  // (dividing twice rather than by b*b, which over- or underflows sooner).
  return record("div", std::move(out), {a, b},
                [ka = keep_if(b.requires_grad(), a), kb = b.value(), sa = a.shape(),
                 sb = b.shape()](const Tensor& g, const std::vector<bool>& needs) {
                  Tensor da, db;
                  if (needs[0]) da = sum_to_shape(div(g, kb), sa);
                  if (needs[1] && ka.defined()) {
                    Tensor t = mul(g, ka);
                    binary_inplace(BinaryOp::div, t, kb);
                    binary_inplace(BinaryOp::div, t, kb);
                    db = sum_to_shape(t, sb);
                    unary_forward(UnaryOp::neg, db.data(), db.data(), db.numel());  // db is ours
                  }
                  return grads(std::move(da), std::move(db));
                });
}

namespace {

// g routed by the forward's choice: da = g where a won (ties included, and where a
// is NaN, since NaN wins the forward too), db = g elsewhere. Branch-free, so the
// compiler vectorises it; `a != a` is the NaN test.
template <bool kMax>
void route_extremum(const float* a, const float* b, const float* g, float* da, float* db,
                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const bool to_a = (a[i] != a[i]) | (kMax ? a[i] >= b[i] : a[i] <= b[i]);
    if (da) da[i] = to_a ? g[i] : 0.f;
    if (db) db[i] = to_a ? 0.f : g[i];
  }
}

// out = maximum(a, b) (is_max) or minimum(a, b).
Var extremum(bool is_max, const Var& a, const Var& b) {
  const BinaryOp op = is_max ? BinaryOp::maximum : BinaryOp::minimum;
  Tensor out = binary(op, a.value(), b.value());
  // da = sum_to_shape(g * [a chosen]), db = sum_to_shape(g * [b chosen]); both
  // operands are expanded to g's shape (a no-op when they have it already).
  return record(
      binary_name(op), std::move(out), {a, b},
      [is_max, ka = a.value(), kb = b.value()](const Tensor& g, const std::vector<bool>& needs) {
        const Tensor ea = expand_to(ka, g.shape()), eb = expand_to(kb, g.shape());
        Tensor da = needs[0] ? Tensor(g.shape()) : Tensor();
        Tensor db = needs[1] ? Tensor(g.shape()) : Tensor();
        float* pda = needs[0] ? da.data() : nullptr;
        float* pdb = needs[1] ? db.data() : nullptr;
        (is_max ? route_extremum<true> : route_extremum<false>)(ea.data(), eb.data(), g.data(), pda,
                                                                pdb, g.numel());
        return grads(needs[0] ? sum_to_shape(da, ka.shape()) : Tensor(),
                     needs[1] ? sum_to_shape(db, kb.shape()) : Tensor());
      });
}

}  // namespace

Var maximum(const Var& a, const Var& b) { return extremum(true, a, b); }
Var minimum(const Var& a, const Var& b) { return extremum(false, a, b); }

Var binary(BinaryOp op, const Var& a, const Var& b) {
  switch (op) {
    case BinaryOp::add:
      return add(a, b);
    case BinaryOp::sub:
      return sub(a, b);
    case BinaryOp::mul:
      return mul(a, b);
    case BinaryOp::div:
      return div(a, b);
    case BinaryOp::maximum:
      return maximum(a, b);
    case BinaryOp::minimum:
      return minimum(a, b);
  }
  fail("binary: unknown op ", int(op));
}

// ---- scalar ops ---------------------------------------------------------------------------
// a: [...] -> [...]

Var add_scalar(const Var& a, float s) {
  Tensor out = binary(BinaryOp::add, a.value(), Tensor::scalar(s));
  // out = a + s:  da = g
  return record("add_scalar", std::move(out), {a},
                [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
}

Var mul_scalar(const Var& a, float s) {
  Tensor out = binary(BinaryOp::mul, a.value(), Tensor::scalar(s));
  // out = a * s:  da = g * s
  return record("mul_scalar", std::move(out), {a}, [s](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{binary(BinaryOp::mul, g, Tensor::scalar(s))};
  });
}

Var rsub_scalar(const Var& a, float s) {
  Tensor out = binary(BinaryOp::sub, Tensor::scalar(s), a.value());
  // out = s - a:  da = -g
  return record("rsub_scalar", std::move(out), {a}, [](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{unary(UnaryOp::neg, g)};
  });
}

Var pow_scalar(const Var& a, float p) {
  Tensor out = pow_tensor(a.value(), p);
  // out = a^p:  da = g * p * a^(p-1); exactly 0 for p = 0 (as torch), even at a = 0
  return record("pow_scalar", std::move(out), {a},
                [p, ka = a.value()](const Tensor& g, const std::vector<bool>&) {
                  if (p == 0.f) return std::vector<Tensor>{Tensor::zeros(g.shape())};
                  if (p == 1.f) return std::vector<Tensor>{g};
                  Tensor d = pow_tensor(ka, p - 1.f);
                  float* pd = d.data();
                  const float* pg = g.data();
                  for (int64_t i = 0; i < d.numel(); ++i) pd[i] = pg[i] * (p * pd[i]);
                  return std::vector<Tensor>{std::move(d)};
                });
}

// ---- unary ops --------------------------------------------------------------------------------
// x: [...] -> y: [...]; backward is the fused engine kernel reading x or y, never both.

Var unary(UnaryOp op, const Var& x) {
  Tensor y = unary(op, x.value());
  Tensor kx = unary_backward_reads_x(op) ? x.value() : Tensor();
  Tensor ky = unary_backward_reads_y(op) ? y : Tensor();
  return record(
      unary_name(op), std::move(y), {x},
      [op, kx = std::move(kx), ky = std::move(ky)](const Tensor& g, const std::vector<bool>&) {
        Tensor dx(g.shape());
        unary_backward(op, kx.defined() ? kx.data() : nullptr, ky.defined() ? ky.data() : nullptr,
                       g.data(), dx.data(), g.numel());
        return std::vector<Tensor>{std::move(dx)};
      });
}

Var neg(const Var& x) { return unary(UnaryOp::neg, x); }
Var exp(const Var& x) { return unary(UnaryOp::exp, x); }
Var log(const Var& x) { return unary(UnaryOp::log, x); }
Var sqrt(const Var& x) { return unary(UnaryOp::sqrt, x); }
Var rsqrt(const Var& x) { return unary(UnaryOp::rsqrt, x); }
Var abs(const Var& x) { return unary(UnaryOp::abs, x); }
Var tanh(const Var& x) { return unary(UnaryOp::tanh, x); }
Var sigmoid(const Var& x) { return unary(UnaryOp::sigmoid, x); }
Var relu(const Var& x) { return unary(UnaryOp::relu, x); }
Var gelu(const Var& x) { return unary(UnaryOp::gelu, x); }

}  // namespace qkv

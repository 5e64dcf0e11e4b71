// `qkv bench optim`: one optimizer update (Adam, AdamW, SGD with momentum)
// over 1M and 10M parameters, split into 16K-element chunks over the threads
// as Optimizer::step splits them. Checked first against the scalar reference,
// which it must equal bit for bit.
// Napkin math: Adam reads p, g, m, v and writes p, m, v: 28 bytes per element,
// 280 MB at 10M, so DRAM bandwidth (~45 GB/s one core) sets the floor, ~6 ms;
// 1M (28 MB) mostly fits the L3. SGD with momentum moves 20 bytes per element.
#include <cmath>
#include <cstring>
#include <string>

#include "bench/bench.h"
#include "engine/kernels/optim.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "engine/threads.h"

namespace qkv::bench {
namespace {

constexpr int64_t kChunk = 16384;  // nn/optim.cpp's work item

// fn(begin, end) over [0, n) in kChunk pieces on the threads in force.
template <class Fn>
void chunked(int64_t n, Fn fn) {
  const int64_t items = (n + kChunk - 1) / kChunk;
  parallel_for(items, items > 1 ? n : 0, [&](int64_t k) {
    const int64_t b = k * kChunk;
    fn(b, std::min(n, b + kChunk));
  });
}

std::string millions(int64_t n) { return std::to_string(n / 1000000) + "M"; }

AdamStep adam_step(bool decoupled) {
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, wd = 1e-2, t = 10;
  return {float(b1),
          float(1 - b1),
          float(b2),
          float(1 - b2),
          decoupled ? 0.f : float(wd),
          decoupled ? float(1 - lr * wd) : 1.f,
          float(std::sqrt(1 - std::pow(b2, t))),
          1e-8f,
          float(-(lr / (1 - std::pow(b1, t))))};
}

void adam_case(const Options& opt, int64_t n, bool decoupled, std::vector<Result>& out) {
  Generator g(7);
  Tensor p = uniform({n}, -1.f, 1.f, g), grad = uniform({n}, -1.f, 1.f, g);
  Tensor m = uniform({n}, -0.1f, 0.1f, g), v = uniform({n}, 0.f, 0.01f, g);
  const AdamStep c = adam_step(decoupled);
  const std::string name = std::string(decoupled ? "adamw " : "adam ") + millions(n);
  {  // one step on copies, against the reference
    Tensor p1 = p.clone(), m1 = m.clone(), v1 = v.clone();
    Tensor p2 = p.clone(), m2 = m.clone(), v2 = v.clone();
    chunked(n, [&](int64_t b, int64_t e) {
      adam_update(p1.data() + b, grad.data() + b, m1.data() + b, v1.data() + b, nullptr, e - b, c);
    });
    adam_update_ref(p2.data(), grad.data(), m2.data(), v2.data(), nullptr, n, c);
    verify(name + " p", p1.data(), p2.data(), long(n), 0.0);
    verify(name + " m", m1.data(), m2.data(), long(n), 0.0);
    verify(name + " v", v1.data(), v2.data(), long(n), 0.0);
  }
  // Repeated steps drift p, m, v a little: harmless for timing.
  time_bandwidth(
      opt, "optim", name, 28.0 * double(n),
      [&] {
        chunked(n, [&](int64_t b, int64_t e) {
          adam_update(p.data() + b, grad.data() + b, m.data() + b, v.data() + b, nullptr, e - b, c);
        });
      },
      out);
}

void sgd_case(const Options& opt, int64_t n, std::vector<Result>& out) {
  Generator g(8);
  Tensor p = uniform({n}, -1.f, 1.f, g), grad = uniform({n}, -1.f, 1.f, g);
  Tensor buf = uniform({n}, -0.1f, 0.1f, g);
  SgdStep c;
  c.weight_decay = 1e-4f, c.momentum = 0.9f, c.one_minus_damp = 1.f, c.neg_lr = -0.01f;
  const std::string name = "sgd momentum " + millions(n);
  {
    Tensor p1 = p.clone(), b1 = buf.clone(), p2 = p.clone(), b2 = buf.clone();
    chunked(n, [&](int64_t b, int64_t e) {
      sgd_update(p1.data() + b, grad.data() + b, b1.data() + b, e - b, c);
    });
    sgd_update_ref(p2.data(), grad.data(), b2.data(), n, c);
    verify(name + " p", p1.data(), p2.data(), long(n), 0.0);
    verify(name + " buf", b1.data(), b2.data(), long(n), 0.0);
  }
  time_bandwidth(
      opt, "optim", name, 20.0 * double(n),
      [&] {
        chunked(n, [&](int64_t b, int64_t e) {
          sgd_update(p.data() + b, grad.data() + b, buf.data() + b, e - b, c);
        });
      },
      out);
}

}  // namespace

std::vector<Result> suite_optim(const Options& opt) {
  std::vector<Result> out;
  const std::vector<int64_t> sizes =
      opt.quick ? std::vector<int64_t>{1000000} : std::vector<int64_t>{1000000, 10000000};
  for (int64_t n : sizes) {
    adam_case(opt, n, false, out);
    adam_case(opt, n, true, out);
    sgd_case(opt, n, out);
  }
  return out;
}

}  // namespace qkv::bench

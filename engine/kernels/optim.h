// Optimizer update kernels: one fused pass over a parameter, its gradient and
// its state for SGD (momentum, dampening, Nesterov, L2) and Adam/AdamW (L2 or
// decoupled decay, AMSGrad), reproducing torch.optim 1.13's single-tensor op
// order bit for bit (nn/optim.h says how; the coefficients come rounded from
// there). The *_ref forms are the same formulas as plain scalar loops; the
// SIMD kernels equal them exactly (every step is an IEEE-rounded add, multiply,
// fma, divide or sqrt, in the same order on every lane).
// Serial: the caller splits a parameter into chunks over threads.
#pragma once
#include <cstdint>

namespace qkv {

// This step's SGD coefficients.
struct SgdStep {
  float weight_decay = 0;    // L2: d = g + wd*p (0: off)
  float momentum = 0;        // buf = momentum*buf + one_minus_damp*d
  float one_minus_damp = 1;  // 1 - dampening
  float neg_lr = 0;          // p = p + neg_lr*d
  bool first = false;        // the buffer's first step: buf = d
  bool nesterov = false;     // d = d + momentum*buf, else d = buf
};
// p, g, buf: [n]; buf null when momentum is off (momentum == 0).
//   d = fma(p, wd, g);  buf = first ? d : fma(d, 1-damp, buf*momentum)
//   d = nesterov ? fma(buf, momentum, d) : buf;  p = fma(d, -lr, p)
void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdStep& c);
void sgd_update_ref(float* p, const float* g, float* buf, int64_t n, const SgdStep& c);

// This step's Adam coefficients, each rounded to float once as torch rounds them.
struct AdamStep {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float weight_decay;  // L2 factor (Adam), 0 when off
  float decay;         // AdamW: p *= decay; 1 when off
  float bc2_sqrt;      // sqrt(1 - beta2^t)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^t)
};
// p, g, m (exp_avg), v (exp_avg_sq): [n]; vmax (max_exp_avg_sq) [n] or null
// (no AMSGrad). torch 1.13 _single_tensor_adam(w), element by element:
//   grad.add(param, alpha=wd)                 g = fma(p, wd, g)             (Adam)
//   param.mul_(1 - lr*wd)                     p = p * decay                 (AdamW)
//   exp_avg.mul_(b1).add_(g, alpha=1-b1)      m = fma(g, 1-b1, m*b1)
//   exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2)  v = fma((1-b2)*g, g, v*b2)
//   maximum(max_exp_avg_sq, v)                vmax = max(vmax, v), NaN wins (amsgrad)
//   (v.sqrt() / bc2_sqrt).add_(eps)           denom = sqrt(v) / bc2_sqrt + eps
//   param.addcdiv_(m, denom, -step_size)      p = p + (-step_size*m) / denom
void adam_update(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                 const AdamStep& c);
void adam_update_ref(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                     const AdamStep& c);

}  // namespace qkv

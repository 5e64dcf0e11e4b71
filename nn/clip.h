// Gradient clipping over a parameter list, as torch.nn.utils.clip_grad_norm_
// and clip_grad_value_. Parameters without a gradient are skipped. Gradients
// are scaled in place (a leaf's gradient owns its buffer after backward).
//
// Deterministic for any thread count: each gradient is reduced over fixed
// chunks whose partial sums are added in order, in double.
#pragma once
#include <vector>

#include "autograd/var.h"

namespace qkv {

// Scales every gradient by max_norm / (total + 1e-6) when that is below 1,
// where total is the norm_type-norm of all gradients seen as one vector,
// computed as torch does: the norm of the per-parameter norms (max of the
// per-parameter max |g| for norm_type = +inf). Returns total (0 with no
// gradients). A NaN total leaves the gradients unscaled (torch would scale them
// by NaN). Errors: max_norm < 0 or NaN, norm_type <= 0 or NaN.
float clip_grad_norm(std::vector<Var>& params, float max_norm, float norm_type = 2.f);

// Clamps every gradient element into [-clip, clip] (NaN stays NaN). clip >= 0.
void clip_grad_value(std::vector<Var>& params, float clip);

// The total norm clip_grad_norm would compute, without scaling anything.
float grad_norm(const std::vector<Var>& params, float norm_type = 2.f);

}  // namespace qkv

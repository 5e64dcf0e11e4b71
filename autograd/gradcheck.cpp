#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/rng.h"

namespace qkv {
namespace {

// L = sum(out * r) in double, with gradients off.
double objective(const std::function<Var(const std::vector<Var>&)>& f,
                 const std::vector<Var>& inputs, const Tensor& r) {
  NoGrad ng;
  Var out = f(inputs);
  check(out.shape() == r.shape(), "gradcheck: output shape changed between calls: ",
        out.shape(), " vs ", r.shape());
  double s = 0;
  for (int64_t i = 0; i < r.numel(); ++i) s += double(out.value().data()[i]) * r.data()[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Var>& inputs, const GradcheckOptions& opt) {
  Generator gen(opt.seed);
  for (const Var& v : inputs) {
    check(v.defined(), "gradcheck: undefined input");
    const_cast<Var&>(v).zero_grad();
  }
  tape_clear();
  Var out = f(inputs);
  check(out.requires_grad(), "gradcheck: the output does not depend on any input that requires a gradient");
  Tensor r = uniform(out.shape(), -1.f, 1.f, gen);
  backward(out, r);

  GradcheckResult res;
  for (size_t idx = 0; idx < inputs.size(); ++idx) {
    Var x = inputs[idx];
    if (!x.requires_grad()) continue;
    const int64_t n = x.numel();
    std::vector<int64_t> elems;
    if (n <= opt.max_per_input) {
      for (int64_t i = 0; i < n; ++i) elems.push_back(i);
    } else {
      for (int64_t i = 0; i < opt.max_per_input; ++i) elems.push_back(gen.next_below(n));
    }
    float* data = x.value_mut().data();
    for (int64_t e : elems) {
      const float x0 = data[e];
      const double h = opt.eps * std::max(1.0, std::fabs(double(x0)));
      data[e] = float(x0 + h);
      const double hp = double(data[e]) - x0;  // the step actually taken in float
      double lp = objective(f, inputs, r);
      data[e] = float(x0 - h);
      const double hm = x0 - double(data[e]);
      double lm = objective(f, inputs, r);
      data[e] = x0;
      const double numeric = (lp - lm) / (hp + hm);
      const double analytic = x.has_grad() ? double(x.grad().data()[e]) : 0.0;
      if (!(std::fabs(analytic - numeric) <= opt.atol + opt.rtol * std::fabs(numeric))) {
        std::ostringstream o;
        o << "gradcheck: input " << idx;
        if (!x.name().empty()) o << " ('" << x.name() << "')";
        o << " shape " << shape_str(x.shape()) << " element " << e << ": analytic " << analytic
          << " vs numeric " << numeric;
        res.ok = false;
        res.report = o.str();
        return res;
      }
    }
  }
  return res;
}

}  // namespace qkv

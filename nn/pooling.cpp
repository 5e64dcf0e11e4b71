#include "nn/pooling.h"

#include <sstream>

#include "autograd/ops.h"

namespace qkv {

namespace {
Pool2dOptions resolved(Pool2dOptions o, const char* what) {
  if (o.stride_h == 0) o.stride_h = o.kernel_h;
  if (o.stride_w == 0) o.stride_w = o.kernel_w;
  check(o.kernel_h >= 1 && o.kernel_w >= 1 && o.stride_h >= 1 && o.stride_w >= 1, what,
        ": kernel_size and stride must be >= 1, got ", o.kernel_h, "x", o.kernel_w, " and ",
        o.stride_h, "x", o.stride_w);
  return o;
}
Pool2dParams params(const Pool2dOptions& o) {
  return {o.kernel_h, o.kernel_w, o.stride_h, o.stride_w, o.pad_h, o.pad_w};
}
std::string describe_pool(const char* name, const Pool2dOptions& o) {
  std::ostringstream s;
  s << name << "(kernel_size=(" << o.kernel_h << ", " << o.kernel_w << "), stride=(" << o.stride_h
    << ", " << o.stride_w << "), padding=(" << o.pad_h << ", " << o.pad_w << "))";
  return s.str();
}
std::string describe_adaptive(const char* name, int64_t h, int64_t w) {
  std::ostringstream s;
  s << name << "(output_size=(" << h << ", " << w << "))";
  return s.str();
}
}  // namespace

MaxPool2d::MaxPool2d(const Pool2dOptions& opt) : options(resolved(opt, "MaxPool2d")) {}
Var MaxPool2d::forward(const Var& x) { return max_pool2d(x, params(options)); }
std::string MaxPool2d::describe() const { return describe_pool("MaxPool2d", options); }

AvgPool2d::AvgPool2d(const Pool2dOptions& opt) : options(resolved(opt, "AvgPool2d")) {}
Var AvgPool2d::forward(const Var& x) { return avg_pool2d(x, params(options)); }
std::string AvgPool2d::describe() const { return describe_pool("AvgPool2d", options); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t h, int64_t w) : out_h(h), out_w(w) {
  check(h >= 1 && w >= 1, "AdaptiveAvgPool2d: output_size must be >= 1, got ", h, "x", w);
}
Var AdaptiveAvgPool2d::forward(const Var& x) { return adaptive_avg_pool2d(x, out_h, out_w); }
std::string AdaptiveAvgPool2d::describe() const {
  return describe_adaptive("AdaptiveAvgPool2d", out_h, out_w);
}

AdaptiveMaxPool2d::AdaptiveMaxPool2d(int64_t h, int64_t w) : out_h(h), out_w(w) {
  check(h >= 1 && w >= 1, "AdaptiveMaxPool2d: output_size must be >= 1, got ", h, "x", w);
}
Var AdaptiveMaxPool2d::forward(const Var& x) { return adaptive_max_pool2d(x, out_h, out_w); }
std::string AdaptiveMaxPool2d::describe() const {
  return describe_adaptive("AdaptiveMaxPool2d", out_h, out_w);
}

Flatten::Flatten(int64_t s, int64_t e) : start_dim(s), end_dim(e) {}

Var Flatten::forward(const Var& x) {
  const int64_t r = x.dim();
  const int s = normalize_axis(start_dim, r, "Flatten"), e = normalize_axis(end_dim, r, "Flatten");
  check(s <= e, "Flatten: start_dim ", start_dim, " after end_dim ", end_dim, " for x ", x.shape());
  Shape out;
  int64_t merged = 1;
  for (int i = 0; i < int(r); ++i) {
    if (i < s || i > e) out.push_back(x.size(i));
    else merged *= x.size(i);
    if (i == e) out.push_back(merged);
  }
  return reshape(x, out);
}

std::string Flatten::describe() const {
  return "Flatten(start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim) + ")";
}

}  // namespace qkv

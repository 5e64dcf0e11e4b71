#include "nn/init.h"

#include <cmath>

namespace qkv::init {

Fans fans(const Shape& s) {
  check(s.size() >= 2, "init: fan in and fan out need a weight of rank >= 2, got ", s);
  int64_t field = 1;
  for (size_t i = 2; i < s.size(); ++i) field *= s[i];
  return {s[1] * field, s[0] * field};
}

void uniform(Tensor& t, float lo, float hi, Generator& g) {
  g.fill_uniform(t.data(), t.numel(), lo, hi);
}

void normal(Tensor& t, float mean, float stddev, Generator& g) {
  g.fill_normal(t.data(), t.numel(), mean, stddev);
}

void constant(Tensor& t, float v) { t.fill(v); }

float gain(const std::string& nl, float param) {
  if (nl == "linear" || nl == "sigmoid" || nl.rfind("conv", 0) == 0) return 1.f;
  if (nl == "tanh") return 5.f / 3.f;
  if (nl == "relu") return std::sqrt(2.f);
  if (nl == "leaky_relu") return std::sqrt(2.f / (1.f + param * param));
  fail("init: unknown nonlinearity '", nl, "' (linear, sigmoid, tanh, relu, leaky_relu)");
}

void xavier_uniform(Tensor& t, Generator& g, float gn) {
  Fans f = fans(t.shape());
  const float a = gn * std::sqrt(6.f / float(f.in + f.out));
  uniform(t, -a, a, g);
}

void xavier_normal(Tensor& t, Generator& g, float gn) {
  Fans f = fans(t.shape());
  normal(t, 0.f, gn * std::sqrt(2.f / float(f.in + f.out)), g);
}

namespace {
float kaiming_std(const Tensor& t, float a, const std::string& mode, const std::string& nl) {
  Fans f = fans(t.shape());
  check(mode == "fan_in" || mode == "fan_out", "init: mode must be fan_in or fan_out, got '",
        mode, "'");
  const int64_t fan = mode == "fan_in" ? f.in : f.out;
  return gain(nl, a) / std::sqrt(float(std::max<int64_t>(fan, 1)));
}
}  // namespace

void kaiming_uniform(Tensor& t, Generator& g, float a, const std::string& mode,
                     const std::string& nl) {
  const float bound = std::sqrt(3.f) * kaiming_std(t, a, mode, nl);
  uniform(t, -bound, bound, g);
}

void kaiming_normal(Tensor& t, Generator& g, float a, const std::string& mode,
                    const std::string& nl) {
  normal(t, 0.f, kaiming_std(t, a, mode, nl), g);
}

}  // namespace qkv::init

// Parameter initialisation, as torch.nn.init, drawing from the experiment's
// generator. fan_in / fan_out follow torch: for a weight [out, in, k...],
// fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once
#include <string>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::init {

struct Fans {
  int64_t in = 1, out = 1;
};
Fans fans(const Shape& s);  // Error for rank < 2, as torch

void uniform(Tensor& t, float lo, float hi, Generator& g);
void normal(Tensor& t, float mean, float stddev, Generator& g);
void constant(Tensor& t, float v);
// gain * sqrt(6 / (fan_in + fan_out)) bound / gain * sqrt(2 / (fan_in + fan_out)) std.
void xavier_uniform(Tensor& t, Generator& g, float gain = 1.f);
void xavier_normal(Tensor& t, Generator& g, float gain = 1.f);
// nonlinearity: "relu", "leaky_relu" (slope a), "linear", "tanh", "sigmoid";
// mode: "fan_in" or "fan_out". bound = gain * sqrt(3 / fan), std = gain / sqrt(fan).
void kaiming_uniform(Tensor& t, Generator& g, float a = 0.f, const std::string& mode = "fan_in",
                     const std::string& nonlinearity = "leaky_relu");
void kaiming_normal(Tensor& t, Generator& g, float a = 0.f, const std::string& mode = "fan_in",
                    const std::string& nonlinearity = "leaky_relu");
float gain(const std::string& nonlinearity, float param = 0.f);

}  // namespace qkv::init

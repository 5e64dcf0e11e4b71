// JSON makers for the vision modules (see nn/builder_makers.h), with PyTorch's
// option names: conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
// adaptive_max_pool2d, batch_norm2d, flatten, channel_attention,
// spatial_attention, cbam, se, basic_block. Sizes (kernel_size, stride,
// padding, dilation, output_size) take an integer or an [h, w] pair.
#include <utility>

#include "nn/batchnorm.h"
#include "nn/builder_makers.h"
#include "nn/cbam.h"
#include "nn/conv.h"
#include "nn/pooling.h"
#include "nn/resnet.h"

namespace qkv {

namespace {

// An integer or an [h, w] pair of integers >= lo under key (def when missing).
std::pair<int64_t, int64_t> get_pair(JsonReader& r, const std::string& key, int64_t def,
                                     int64_t lo) {
  const Json v = r.get_raw(key);
  if (!v.is_array()) {  // an integer (or missing): read through get_int for its checks
    const int64_t x = r.get_int(key, def, lo);
    return {x, x};
  }
  const std::string path = r.path_of(key);
  check(v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer(), path,
        ": expected an integer or a pair [h, w] of integers, got ", v.dump());
  const int64_t h = v[0].get<int64_t>(), w = v[1].get<int64_t>();
  check(h >= lo && w >= lo, path, ": expected values >= ", lo, ", got ", v.dump());
  return {h, w};
}

Pool2dOptions pool_options(JsonReader& r) {
  Pool2dOptions o;
  std::tie(o.kernel_h, o.kernel_w) = get_pair(r, "kernel_size", 2, 1);
  if (r.has("stride")) std::tie(o.stride_h, o.stride_w) = get_pair(r, "stride", 1, 1);
  std::tie(o.pad_h, o.pad_w) = get_pair(r, "padding", 0, 0);
  check(2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w, r.path_of("padding"),
        ": padding must be at most half the kernel size (", o.kernel_h, "x", o.kernel_w, ")");
  return o;
}

}  // namespace

void add_vision_makers(MakerMap& m) {
  m["conv2d"] = [](JsonReader& r, Generator& g) {
    Conv2dOptions o;
    o.in_channels = r.require_int("in_channels", 1);
    o.out_channels = r.require_int("out_channels", 1);
    std::tie(o.kernel_h, o.kernel_w) = get_pair(r, "kernel_size", 3, 1);
    std::tie(o.stride_h, o.stride_w) = get_pair(r, "stride", 1, 1);
    std::tie(o.pad_h, o.pad_w) = get_pair(r, "padding", 0, 0);
    std::tie(o.dil_h, o.dil_w) = get_pair(r, "dilation", 1, 1);
    o.groups = r.get_int("groups", 1, 1);
    check(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, r.path_of("groups"),
          ": in_channels ", o.in_channels, " and out_channels ", o.out_channels,
          " must be divisible by groups ", o.groups);
    o.bias = r.get_bool("bias", true);
    return std::make_shared<Conv2d>(o, g);
  };
  m["max_pool2d"] = [](JsonReader& r, Generator&) {
    return std::make_shared<MaxPool2d>(pool_options(r));
  };
  m["avg_pool2d"] = [](JsonReader& r, Generator&) {
    return std::make_shared<AvgPool2d>(pool_options(r));
  };
  m["adaptive_avg_pool2d"] = [](JsonReader& r, Generator&) {
    const auto [h, w] = get_pair(r, "output_size", 1, 1);
    return std::make_shared<AdaptiveAvgPool2d>(h, w);
  };
  m["adaptive_max_pool2d"] = [](JsonReader& r, Generator&) {
    const auto [h, w] = get_pair(r, "output_size", 1, 1);
    return std::make_shared<AdaptiveMaxPool2d>(h, w);
  };
  m["batch_norm2d"] = [](JsonReader& r, Generator&) {
    BatchNorm2dOptions o;
    o.num_features = r.require_int("num_features", 1);
    o.eps = float(r.get_number("eps", 1e-5, 0.0, 1.0, true));
    o.momentum = float(r.get_number("momentum", 0.1, 0.0, 1.0));
    o.affine = r.get_bool("affine", true);
    return std::make_shared<BatchNorm2d>(o);
  };
  m["flatten"] = [](JsonReader& r, Generator&) {
    return std::make_shared<Flatten>(r.get_int("start_dim", 1), r.get_int("end_dim", -1));
  };
  m["channel_attention"] = [](JsonReader& r, Generator& g) {
    const int64_t c = r.require_int("channels", 1);
    return std::make_shared<ChannelAttention>(c, r.get_int("ratio", 16, 1, c), g);
  };
  m["spatial_attention"] = [](JsonReader& r, Generator& g) {
    return std::make_shared<SpatialAttention>(r.get_int("kernel_size", 7, 3, 7), g);
  };
  m["cbam"] = [](JsonReader& r, Generator& g) {
    const int64_t c = r.require_int("channels", 1);
    const int64_t ratio = r.get_int("ratio", 16, 1, c);
    return std::make_shared<CBAM>(c, ratio, r.get_int("kernel_size", 7, 3, 7), g);
  };
  m["se"] = [](JsonReader& r, Generator& g) {
    const int64_t c = r.require_int("channels", 1);
    return std::make_shared<SqueezeExcitation>(c, r.get_int("reduction", 16, 1, c), g);
  };
  m["basic_block"] = [](JsonReader& r, Generator& g) {
    BasicBlockOptions o;
    o.in_channels = r.require_int("in_channels", 1);
    o.out_channels = r.require_int("out_channels", 1);
    o.stride = r.get_int("stride", 1, 1);
    o.cbam = r.get_bool("cbam", false);
    if (o.cbam) {
      o.ratio = r.get_int("ratio", 16, 1, o.out_channels);
      o.kernel_size = r.get_int("kernel_size", 7, 3, 7);
    }
    return std::make_shared<BasicBlock>(o, g);
  };
}

}  // namespace qkv

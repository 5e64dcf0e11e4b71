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
  std::tie(o.kernel_h, o.kernel_w) = get_pair(r, "kernel_size", o.kernel_h, 1);
  // No stride given: the kernel size (stride 0 in the struct), not resolved as a number.
  if (r.has("stride")) std::tie(o.stride_h, o.stride_w) = get_pair(r, "stride", 1, 1);
  std::tie(o.pad_h, o.pad_w) = get_pair(r, "padding", o.pad_h, 0);
  check(2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w, r.path_of("padding"),
        ": padding must be at most half the kernel size (", o.kernel_h, "x", o.kernel_w, ")");
  return o;
}

AdaptivePool2dOptions adaptive_options(JsonReader& r) {
  AdaptivePool2dOptions o;
  std::tie(o.out_h, o.out_w) = get_pair(r, "output_size", o.out_h, 1);  // one default for both
  return o;
}

}  // namespace

void add_vision_makers(MakerMap& m) {
  m["conv2d"] = [](JsonReader& r, Generator& g) {
    Conv2dOptions o;
    o.in_channels = r.require_int("in_channels", 1);
    o.out_channels = r.require_int("out_channels", 1);
    std::tie(o.kernel_h, o.kernel_w) = get_pair(r, "kernel_size", o.kernel_h, 1);
    std::tie(o.stride_h, o.stride_w) = get_pair(r, "stride", o.stride_h, 1);
    std::tie(o.pad_h, o.pad_w) = get_pair(r, "padding", o.pad_h, 0);
    std::tie(o.dil_h, o.dil_w) = get_pair(r, "dilation", o.dil_h, 1);
    o.groups = r.get_int("groups", o.groups, 1);
    check(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, r.path_of("groups"),
          ": in_channels ", o.in_channels, " and out_channels ", o.out_channels,
          " must be divisible by groups ", o.groups);
    o.bias = r.get_bool("bias", o.bias);
    r.check_fits(kFloatBytes * double(o.out_channels) * double(o.in_channels / o.groups) *
                     double(o.kernel_h) * double(o.kernel_w),
                 "the parameters", {"in_channels", "out_channels", "kernel_size"});
    return std::make_shared<Conv2d>(o, g);
  };
  m["max_pool2d"] = [](JsonReader& r, Generator&) {
    return std::make_shared<MaxPool2d>(pool_options(r));
  };
  m["avg_pool2d"] = [](JsonReader& r, Generator&) {
    return std::make_shared<AvgPool2d>(pool_options(r));
  };
  m["adaptive_avg_pool2d"] = [](JsonReader& r, Generator&) {
    const AdaptivePool2dOptions o = adaptive_options(r);
    return std::make_shared<AdaptiveAvgPool2d>(o.out_h, o.out_w);
  };
  m["adaptive_max_pool2d"] = [](JsonReader& r, Generator&) {
    const AdaptivePool2dOptions o = adaptive_options(r);
    return std::make_shared<AdaptiveMaxPool2d>(o.out_h, o.out_w);
  };
  m["batch_norm2d"] = [](JsonReader& r, Generator&) {
    BatchNorm2dOptions o;
    o.num_features = r.require_int("num_features", 1);
    o.eps = r.get_float("eps", o.eps, 0.0, 1.0, true);
    o.momentum = r.get_float("momentum", o.momentum, 0.0, 1.0);
    o.affine = r.get_bool("affine", o.affine);
    r.check_fits(kFloatBytes * 2 * double(o.num_features), "the parameters", {"num_features"});
    return std::make_shared<BatchNorm2d>(o);
  };
  m["flatten"] = [](JsonReader& r, Generator&) {
    FlattenOptions o;
    // end_dim first: the key order of the resolved configs of earlier runs.
    o.end_dim = r.get_int("end_dim", o.end_dim);
    o.start_dim = r.get_int("start_dim", o.start_dim);
    return std::make_shared<Flatten>(o.start_dim, o.end_dim);
  };
  m["channel_attention"] = [](JsonReader& r, Generator& g) {
    CbamOptions o;
    o.channels = r.require_int("channels", 1);
    o.ratio = r.get_int("ratio", o.ratio, 1, o.channels);
    r.check_fits(kFloatBytes * 2 * double(o.channels) * double(o.channels / o.ratio),
                 "the parameters", {"channels", "ratio"});
    return std::make_shared<ChannelAttention>(o.channels, o.ratio, g);
  };
  m["spatial_attention"] = [](JsonReader& r, Generator& g) {
    CbamOptions o;
    o.kernel_size = r.get_int("kernel_size", o.kernel_size, 3, 7);
    return std::make_shared<SpatialAttention>(o.kernel_size, g);
  };
  m["cbam"] = [](JsonReader& r, Generator& g) {
    CbamOptions o;
    o.channels = r.require_int("channels", 1);
    o.ratio = r.get_int("ratio", o.ratio, 1, o.channels);
    o.kernel_size = r.get_int("kernel_size", o.kernel_size, 3, 7);
    r.check_fits(kFloatBytes * 2 * double(o.channels) * double(o.channels / o.ratio),
                 "the parameters", {"channels", "ratio"});
    return std::make_shared<CBAM>(o.channels, o.ratio, o.kernel_size, g);
  };
  m["se"] = [](JsonReader& r, Generator& g) {
    SqueezeExcitationOptions o;
    o.channels = r.require_int("channels", 1);
    o.reduction = r.get_int("reduction", o.reduction, 1, o.channels);
    r.check_fits(kFloatBytes * 2 * double(o.channels) * double(o.channels / o.reduction),
                 "the parameters", {"channels", "reduction"});
    return std::make_shared<SqueezeExcitation>(o.channels, o.reduction, g);
  };
  m["basic_block"] = [](JsonReader& r, Generator& g) {
    BasicBlockOptions o;
    o.in_channels = r.require_int("in_channels", 1);
    o.out_channels = r.require_int("out_channels", 1);
    o.stride = r.get_int("stride", o.stride, 1);
    o.cbam = r.get_bool("cbam", o.cbam);
    if (o.cbam) {
      o.ratio = r.get_int("ratio", o.ratio, 1, o.out_channels);
      o.kernel_size = r.get_int("kernel_size", o.kernel_size, 3, 7);
    }
    // Two 3x3 convolutions.
    const double C = double(o.out_channels);
    r.check_fits(kFloatBytes * 9 * C * (double(o.in_channels) + C), "the parameters",
                 {"in_channels", "out_channels"});
    return std::make_shared<BasicBlock>(o, g);
  };
}

}  // namespace qkv

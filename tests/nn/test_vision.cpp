// The vision modules against PyTorch (fixtures from tests/fixtures/make_vision.py):
// each case builds its module from the JSON config stored in the file, loads
// torch's parameters and buffers, runs forward in the recorded mode, then
// backward of sum(y * upstream); the output, the input gradient, every
// parameter gradient and the buffers after the step (running statistics)
// must match within |got - want| <= 1e-5 + 1e-4 |want|. Also: gradcheck of
// CBAM, its attention maps' shapes and ranges, a tiny CBAM CNN that learns,
// and the JSON builder's options and errors.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/batchnorm.h"
#include "nn/builder.h"
#include "nn/checkpoint.h"
#include "nn/cbam.h"
#include "nn/optim.h"
#include "nn/resnet.h"
#include "nn/safetensors.h"
#include "nn/sequential.h"
#include "tests/grad_utils.h"

namespace qkv {
namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;

void expect_parity(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what, ": shapes ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  REQUIRE(got.shape() == want.shape());
  double max_abs = 0, worst_excess = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = got.data()[i], b = want.data()[i];
    const double d = std::isnan(a) || std::isnan(b) ? INFINITY : std::fabs(a - b);
    max_abs = std::max(max_abs, d);
    const double excess = d - (kAtol + kRtol * std::fabs(b));
    if (!(excess <= 0)) ++bad, worst_excess = std::max(worst_excess, excess);
  }
  INFO(what, ": ", bad, " of ", got.numel(), " elements off; max_abs=", max_abs);
  CHECK(bad == 0);
}

const Tensor& get(const TensorFile& f, const std::string& name) {
  auto it = f.floats.find(name);
  INFO("fixture tensor ", name);
  REQUIRE(it != f.floats.end());
  return it->second;
}

// Tensors under `prefix`, prefix stripped.
template <class T>
std::map<std::string, TensorT<T>> under(const std::map<std::string, TensorT<T>>& tensors,
                                        const std::string& prefix) {
  std::map<std::string, TensorT<T>> out;
  for (const auto& [n, t] : tensors)
    if (n.rfind(prefix, 0) == 0) out[n.substr(prefix.size())] = t;
  return out;
}

void run_fixture(const std::string& name) {
  INFO("fixture ", name);
  const TensorFile f = load_safetensors(test::fixture_path("vision/" + name + ".safetensors"));
  Generator gen(1);
  Built b = build_module(Json::parse(f.metadata.at("config")), gen);
  auto m = std::dynamic_pointer_cast<UnaryModule>(b.module);
  REQUIRE(m != nullptr);
  std::map<std::string, Tensor> state = under(f.floats, "param.");
  for (const auto& [n, t] : under(f.floats, "buffer.")) state[n] = t;
  m->load_state_dict(state, under(f.ints, "buffer."));  // strict: names and shapes as torch's
  m->train(f.metadata.at("train") == "1");
  Var x(get(f, "input.x").clone(), true);
  Var y = m->forward(x);
  expect_parity(y.value(), get(f, "output.y"), name + " output");
  backward(y, get(f, "upstream.y"));
  expect_parity(x.grad(), get(f, "grad.x"), name + " grad x");
  for (const auto& [n, p] : m->named_parameters())
    expect_parity(p.grad(), get(f, "grad.param." + n), name + " grad " + n);
  for (const auto& [n, t] : m->named_buffers())
    expect_parity(t, get(f, "buffer_after." + n), name + " buffer " + n);
  for (const auto& [n, t] : m->named_int_buffers()) {
    INFO(name, " int buffer ", n);
    REQUIRE(f.ints.count("buffer_after." + n) == 1);
    CHECK(t.to_vector() == f.ints.at("buffer_after." + n).to_vector());
  }
}

TEST_SUITE("nn/vision") {
  TEST_CASE("parity with PyTorch: Conv2d") {
    for (const char* n : {"conv_3x3_pad1", "conv_stride2_groups2", "conv_dilation2_nobias",
                          "conv_7x7_2to1", "conv_1x1"})
      run_fixture(n);
  }

  TEST_CASE("parity with PyTorch: pools") {
    for (const char* n : {"max_pool_k3s2p1", "avg_pool_k3s2p1", "avg_pool_k2", "adaptive_avg_3x4",
                          "adaptive_max_3x4", "adaptive_avg_global", "adaptive_max_global"})
      run_fixture(n);
  }

  TEST_CASE("parity with PyTorch: BatchNorm2d train (running stats) and eval") {
    run_fixture("batch_norm_train");
    run_fixture("batch_norm_eval");
  }

  TEST_CASE("parity with PyTorch: CBAM, its gates, SE, basic blocks, a CNN") {
    for (const char* n : {"cbam_c32", "channel_attention_c32", "spatial_attention_k3", "se_c16",
                          "basic_block_cbam", "basic_block_eval", "sequential_cnn"})
      run_fixture(n);
  }

  TEST_CASE("CBAM gradcheck (small instance), through the input and every parameter") {
    Generator gen(3);
    auto cbam = std::make_shared<CBAM>(4, 2, 3, gen);
    std::vector<Var> in{test::rv({2, 4, 3, 4}, 70)};
    for (const Var& p : cbam->parameters()) in.push_back(p);
    GradcheckOptions opt;
    opt.eps = 1e-3;  // below the gaps between the max-pooled values
    test::expect_ok([cbam](const std::vector<Var>& v) { return cbam->forward(v[0]); }, in, "CBAM",
                    opt);
  }

  TEST_CASE("CBAM maps: channel [B,C,1,1] and spatial [B,1,H,W], both in (0,1)") {
    Generator gen(4);
    CBAM cbam(32, 16, 7, gen);
    const Var x = test::rv({3, 32, 9, 11}, 71, -3.f, 3.f, false);
    const Var y = cbam.forward(x);
    CHECK(y.shape() == x.shape());
    const Tensor& cm = cbam.last_channel_map().value();
    const Tensor& sm = cbam.last_spatial_map().value();
    CHECK(cm.shape() == Shape{3, 32, 1, 1});
    CHECK(sm.shape() == Shape{3, 1, 9, 11});
    for (const Tensor* t : {&cm, &sm})
      for (float v : *t) {
        REQUIRE(v > 0.f);
        REQUIRE(v < 1.f);
      }
    // y = (x * cm) * sm, element by element
    const float want = x.value().at({1, 5, 2, 3}) * cm.at({1, 5, 0, 0}) * sm.at({1, 0, 2, 3});
    CHECK(y.value().at({1, 5, 2, 3}) == doctest::Approx(want).epsilon(1e-5));
  }

  TEST_CASE("a tiny CNN with CBAM learns a synthetic image task (loss falls)") {
    // Class 0: a bright 3x3 blob in the top-left quadrant, class 1: bottom-right; noise elsewhere.
    Generator gen(8);
    const int64_t B = 32, H = 10, W = 10;
    Tensor x = uniform({B, 1, H, W}, -0.3f, 0.3f, gen);
    IntTensor y({B});
    for (int64_t b = 0; b < B; ++b) {
      const int32_t cls = int32_t(b % 2);
      y.data()[b] = cls;
      const int64_t h0 = cls ? 6 : 1, w0 = cls ? 6 : 1;
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j) x.at({b, 0, h0 + i, w0 + j}) += 1.f;
    }
    Built net = build_module(Json::parse(R"({"type": "sequential", "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "relu"},
        {"type": "cbam", "channels": 8, "ratio": 4, "kernel_size": 3},
        {"type": "max_pool2d", "kernel_size": 2},
        {"type": "adaptive_avg_pool2d", "output_size": 2},
        {"type": "flatten"},
        {"type": "linear", "in_features": 32, "out_features": 2}]})"),
                             gen);
    auto model = std::dynamic_pointer_cast<UnaryModule>(net.module);
    Adam opt(model->parameters(), 0.02);
    float first = 0, last = 0;
    for (int step = 0; step < 40; ++step) {
      Var loss = cross_entropy(model->forward(Var(x)), y);
      if (step == 0) first = loss.item();
      last = loss.item();
      model->zero_grad();
      backward(loss);
      opt.step();
    }
    INFO("loss ", first, " -> ", last);
    CHECK(last < 0.5f * first);
  }

  TEST_CASE("builder: vision types, options and resolved defaults") {
    Generator gen(2);
    Built c = build_module(Json::parse(R"({"type": "conv2d", "in_channels": 4, "out_channels": 8,
                                           "kernel_size": [3, 5], "stride": 2, "groups": 2})"), gen);
    CHECK(c.module->named_parameters().size() == 2);
    CHECK(c.module->state_dict().at("weight").shape() == Shape{8, 2, 3, 5});
    CHECK(c.resolved["padding"] == 0);
    CHECK(c.resolved["bias"] == true);
    Built bb = build_module(Json::parse(R"({"type": "basic_block", "in_channels": 8,
                                            "out_channels": 16, "stride": 2, "cbam": true})"), gen);
    const auto sd = bb.module->state_dict();
    CHECK(bb.module->int_state_dict().count("bn1.num_batches_tracked") == 1);
    for (const char* n : {"conv1.weight", "bn1.weight", "bn1.running_var",
                          "conv2.weight", "bn2.bias", "downsample.0.weight", "downsample.1.running_mean",
                          "cbam.ca.fc.0.weight", "cbam.ca.fc.2.weight", "cbam.sa.conv1.weight"})
      CHECK_MESSAGE(sd.count(n) == 1, n);
    CHECK(sd.at("cbam.ca.fc.0.weight").shape() == Shape{1, 16, 1, 1});
    CHECK(sd.at("cbam.sa.conv1.weight").shape() == Shape{1, 2, 7, 7});
    Built se = build_module(Json::parse(R"({"type": "se", "channels": 16, "reduction": 4})"), gen);
    CHECK(se.module->state_dict().at("fc1.weight").shape() == Shape{4, 16, 1, 1});
    // Conv2d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 2*3*5.
    const float bound = 1.f / std::sqrt(30.f);
    // A copy: state_dict() is a temporary map, gone before a range-for over its
    // element would run.
    const Tensor weight = c.module->state_dict().at("weight");
    for (float v : weight) REQUIRE(std::fabs(v) <= bound);
  }

  TEST_CASE("builder: errors name the JSON path") {
    Generator gen(2);
    auto err = [&](const char* cfg) {
      return test::error_of([&] { build_module(Json::parse(cfg), gen); });
    };
    CHECK(err(R"({"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3]})") ==
          "model.kernel_size: expected an integer or a pair [h, w] of integers, got [3]");
    CHECK(err(R"({"type": "conv2d", "in_channels": 3, "out_channels": 4, "groups": 2})") ==
          "model.groups: in_channels 3 and out_channels 4 must be divisible by groups 2");
    CHECK(err(R"({"type": "sequential", "layers": [{"type": "cbam", "channels": 8, "ratio": 16}]})")
              .rfind("model.layers[0].ratio:", 0) == 0);
    CHECK(err(R"({"type": "max_pool2d", "kernel_size": 2, "padding": 2})") ==
          "model.padding: padding must be at most half the kernel size (2x2)");
    CHECK(err(R"({"type": "batch_norm2d", "num_features": 4, "momentun": 0.1})")
              .find("momentun") != std::string::npos);
    CHECK(err(R"({"type": "spatial_attention", "kernel_size": 5})")
              .rfind("SpatialAttention: kernel_size must be 3 or 7", 0) == 0);
  }

  TEST_CASE("a state_dict saved by PyTorch (I64 num_batches_tracked) loads strictly") {
    const TensorFile f = load_safetensors(test::fixture_path("vision/state_dict_cnn.safetensors"));
    REQUIRE(f.i64.count("1.num_batches_tracked") == 1);
    Generator gen(3);
    Built b = build_module(Json::parse(f.metadata.at("config")), gen);
    CHECK(b.module->load_state_dict(f.floats, f.ints).ok());  // strict: throws on any mismatch
    const auto ints = b.module->int_state_dict();
    CHECK(ints.at("1.num_batches_tracked").item() == 2);  // two training steps in torch
    CHECK(b.module->state_dict().at("1.running_mean").to_vector() ==
          f.floats.at("1.running_mean").to_vector());
    // Written back, the counter is I64 again, and the file reads back the same.
    TensorFile out;
    out.floats = b.module->state_dict();
    out.ints = ints;
    for (const auto& [n, _] : ints) out.i64.insert(n);
    const TensorFile back = parse_safetensors(serialize_safetensors(out), "round trip");
    CHECK(back.i64 == f.i64);
    CHECK(back.ints.at("1.num_batches_tracked").item() == 2);
    // A checkpoint does the same, and restores the counter into a fresh model.
    const std::string path = "/tmp/qkv_test_vision_" + std::to_string(getpid()) + ".safetensors";
    save_checkpoint(path, *b.module, nullptr);
    CHECK(load_safetensors(path).i64 == f.i64);
    Built fresh = build_module(Json::parse(f.metadata.at("config")), gen);
    load_checkpoint(path, *fresh.module);
    std::remove(path.c_str());
    CHECK(fresh.module->int_state_dict().at("1.num_batches_tracked").item() == 2);
    // Without the int tensors the counter is missing; a float counter (older files) is taken.
    CHECK(test::error_of([&] { b.module->load_state_dict(f.floats); }) ==
          "load_state_dict: missing [1.num_batches_tracked]");
    std::map<std::string, Tensor> old = f.floats;
    old["1.num_batches_tracked"] = Tensor::scalar(5.f);
    CHECK(b.module->load_state_dict(old).ok());
    CHECK(b.module->int_state_dict().at("1.num_batches_tracked").item() == 5);
    old["1.num_batches_tracked"] = Tensor::scalar(5.5f);
    CHECK(!b.module->load_state_dict(old, /*strict=*/false).ok());
  }

  TEST_CASE("BatchNorm2d: train updates running stats and the counter; eval does not") {
    BatchNorm2dOptions o;
    o.num_features = 2;
    BatchNorm2d bn(o);
    const Var x = test::rv({4, 2, 3, 3}, 80, 1.f, 3.f, false);
    bn.forward(x);
    CHECK(bn.num_batches_tracked.item() == 1.f);
    CHECK(bn.running_mean.data()[0] == doctest::Approx(0.2).epsilon(0.2));  // 0.1 * ~2
    const std::vector<float> rm = bn.running_mean.to_vector();
    bn.eval();
    bn.forward(x);
    CHECK(bn.num_batches_tracked.item() == 1.f);
    CHECK(bn.running_mean.to_vector() == rm);
  }
}

}  // namespace
}  // namespace qkv

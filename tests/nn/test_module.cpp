// Module system: dotted parameter names, counts, train/eval, summaries,
// state_dict round trips and strict/non-strict loading; Linear, Embedding,
// activations, Dropout, Sequential; init functions.
#include <cmath>

#include "autograd/ops.h"
#include "engine/kernels/matmul.h"
#include "nn/activation.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

std::shared_ptr<Sequential> mlp(Generator& g) {
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<Linear>(LinearOptions{4, 8}, g));
  net->push_back(std::make_shared<Activation>(UnaryOp::relu));
  net->push_back(std::make_shared<Dropout>(0.5f, g));
  net->push_back(std::make_shared<Linear>(LinearOptions{8, 3, false}, g));
  return net;
}

TEST_SUITE("nn/module") {
  TEST_CASE("dotted names, counts and summary follow torch.nn.Sequential") {
    Generator g(1);
    auto net = mlp(g);
    std::vector<std::string> names;
    for (auto& [n, v] : net->named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight"});
    CHECK(net->num_parameters() == 4 * 8 + 8 + 8 * 3);
    CHECK(net->parameters()[0].shape() == Shape{8, 4});
    const std::string s = net->summary();
    CHECK(s.find("Sequential(4 layers)  [64 params]") == 0);
    CHECK(s.find("  0: Linear(in_features=4, out_features=8, bias=true)  [40 params]") !=
          std::string::npos);
    CHECK(s.find("  2: Dropout(p=0.5)  [0 params]") != std::string::npos);
  }

  TEST_CASE("train/eval reaches every child; dropout is the identity in eval") {
    Generator g(2);
    auto net = mlp(g);
    Var x(test::rand_tensor({16, 4}, 3));
    net->eval();
    CHECK_FALSE((*net)[2].training());
    Tensor y1 = net->forward(x).value(), y2 = net->forward(x).value();
    CHECK(y1.to_vector() == y2.to_vector());
    net->train();
    CHECK((*net)[2].training());
    CHECK(net->forward(x).value().to_vector() != y1.to_vector());
  }

  TEST_CASE("Linear computes x W^T + b on any leading shape, and trains") {
    Generator g(4);
    Linear lin({5, 3}, g);
    Tensor x = test::rand_tensor({2, 7, 5}, 5);
    Tensor want = matmul_ref(x.view({14, 5}), lin.weight.value(), false, true);
    for (int64_t i = 0; i < 14; ++i)
      for (int64_t j = 0; j < 3; ++j) want.at({i, j}) += lin.bias.value().at({j});
    Var y = lin(Var(x));
    CHECK(y.shape() == Shape{2, 7, 3});
    test::expect_close(y.value().view({14, 3}), want, 1e-6, "linear");
    CHECK(lin(Var(test::rand_tensor({5}, 6))).shape() == Shape{3});
    backward(sum(y));
    CHECK(lin.weight.has_grad());
    CHECK(lin.bias.grad().at({0}) == doctest::Approx(14.f));
    CHECK(test::error_of([&] { lin(Var(zeros({2, 4}))); }) ==
          "Linear: input [2,4] does not end in in_features=5");
  }

  TEST_CASE("default initialisation matches torch's distributions") {
    Generator g(7);
    Linear lin({100, 50}, g);
    const float bound = 1.f / std::sqrt(100.f);
    float lo = 1, hi = -1;
    for (float v : lin.weight.value()) { lo = std::min(lo, v); hi = std::max(hi, v); }
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(hi > 0.95f * bound);  // uses the whole range
    for (float v : lin.bias.value()) CHECK(std::fabs(v) <= bound);
    Embedding emb({1000, 16, 3}, g);
    double s = 0, ss = 0;
    for (float v : emb.weight.value()) { s += v; ss += double(v) * v; }
    const double n = 1000 * 16 - 16;  // the padding row is zero
    CHECK(s / n == doctest::Approx(0).epsilon(0.05));
    CHECK(ss / n == doctest::Approx(1).epsilon(0.05));
    for (int64_t j = 0; j < 16; ++j) CHECK(emb.weight.value().at({3, j}) == 0.f);
  }

  TEST_CASE("Embedding gathers rows; the padding row gets no gradient") {
    Generator g(8);
    Embedding emb({10, 4, 0}, g);
    IntTensor ids = IntTensor::from({2, 3}, {1, 0, 5, 5, 9, 0});
    Var e = emb.forward(ids);
    CHECK(e.shape() == Shape{2, 3, 4});
    CHECK(e.value().at({1, 1, 2}) == emb.weight.value().at({9, 2}));
    backward(sum(e));
    CHECK(emb.weight.grad().at({0, 1}) == 0.f);
    CHECK(emb.weight.grad().at({5, 1}) == 2.f);
    CHECK(emb.describe() == "Embedding(10, 4, padding_idx=0)");
    CHECK_THROWS_WITH_AS(emb.forward(IntTensor::from({1}, {10})),
                         doctest::Contains("index_select: id 10"), Error);
  }

  TEST_CASE("state_dict round trip; strict and non-strict loading") {
    Generator g1(9), g2(10);
    auto a = mlp(g1), b = mlp(g2);
    auto sd = a->state_dict();
    CHECK(sd.size() == 3);
    CHECK(b->load_state_dict(sd).ok());
    for (auto& [n, v] : b->named_parameters()) CHECK(v.value().to_vector() == sd[n].to_vector());

    auto bad = sd;
    bad.erase("0.bias");
    bad["extra.weight"] = zeros({2});
    bad["3.weight"] = zeros({8, 3});
    const std::string msg = test::error_of([&] { b->load_state_dict(bad); });
    CHECK(msg ==
          "load_state_dict: missing [0.bias] unexpected [extra.weight] mis-shaped [3.weight: "
          "file [8,3] vs module [3,8]]");
    // strict failure copies nothing
    CHECK(b->named_parameters()[0].second.value().to_vector() == sd["0.weight"].to_vector());
    bad["0.weight"] = full({8, 4}, 0.25f);
    LoadReport r = b->load_state_dict(bad, /*strict=*/false);
    CHECK(r.missing == std::vector<std::string>{"0.bias"});
    CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
    CHECK(r.mismatched.size() == 1);
    CHECK(b->named_parameters()[0].second.value().at({0, 0}) == 0.25f);  // what matched loaded
  }

  TEST_CASE("init functions") {
    Generator g(11);
    Tensor w({64, 32, 3});
    CHECK(init::fans(w.shape()).in == 96);
    CHECK(init::fans(w.shape()).out == 192);
    init::xavier_uniform(w, g);
    const float a = std::sqrt(6.f / (96 + 192));
    for (float v : w) REQUIRE(std::fabs(v) <= a);
    init::kaiming_normal(w, g, 0.f, "fan_in", "relu");
    double ss = 0;
    for (float v : w) ss += double(v) * v;
    CHECK(ss / w.numel() == doctest::Approx(2.0 / 96).epsilon(0.05));
    CHECK(init::gain("tanh") == doctest::Approx(5.0 / 3));
    CHECK_THROWS_WITH_AS(init::fans({5}), doctest::Contains("init: fan in and fan out"), Error);
    CHECK_THROWS_WITH_AS(init::gain("swish"), doctest::Contains("unknown nonlinearity 'swish'"),
                         Error);
  }
}

}  // namespace
}  // namespace qkv

// A program built against the installed qkv library (see README.md here):
// trains a small MLP with AdamW on a toy problem and saves a checkpoint, then
// loads a state_dict that PyTorch saved as safetensors into the same module
// and prints its output beside PyTorch's.
//   usage: mlp [DIR]   DIR holds torch_mlp.*.safetensors (default: .)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "nn/activation.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/sequential.h"

namespace {

// The toy problem: which quadrant a 2-D point lies in (4 classes).
// x: [B,2], labels: [B]
void quadrants(qkv::Generator& gen, qkv::Tensor& x, qkv::IntTensor& labels) {
  const int64_t B = labels.numel();
  for (int64_t i = 0; i < B; ++i) {
    const int cls = int(gen.next_below(4));
    const float a = 0.1f + gen.next_uniform(), b = 0.1f + gen.next_uniform();
    x.at({i, 0}) = (cls & 1) ? -a : a;
    x.at({i, 1}) = (cls & 2) ? -b : b;
    labels.at({i}) = cls;
  }
}

// The README's MLP step, repeated: the loss of one fixed batch goes down.
void train_mlp(const std::string& checkpoint) {
  qkv::Generator gen(42);
  auto net = std::make_shared<qkv::Sequential>();
  net->push_back(std::make_shared<qkv::Linear>(qkv::LinearOptions{2, 32}, gen));
  net->push_back(std::make_shared<qkv::Activation>(qkv::UnaryOp::relu));
  net->push_back(std::make_shared<qkv::Linear>(qkv::LinearOptions{32, 4}, gen));
  qkv::AdamW opt(net->parameters(), 1e-2);

  const int64_t B = 64;
  qkv::Tensor x({B, 2});
  qkv::IntTensor labels({B});
  quadrants(gen, x, labels);
  for (int step = 0; step <= 20; ++step) {
    qkv::Var loss = qkv::cross_entropy(net->forward(qkv::Var(x)), labels);
    if (step % 5 == 0) std::printf("step %d loss %.4f\n", step, loss.item());
    qkv::backward(loss);
    opt.step();
    opt.zero_grad();
  }
  qkv::save_checkpoint(checkpoint, *net, &opt);  // atomic; loads into PyTorch by name
  std::printf("saved %s\n", checkpoint.c_str());
}

// nn.Sequential(nn.Linear(6, 10), nn.GELU(), nn.Linear(10, 4)) saved by PyTorch:
// its state_dict loads by name ("0.weight", ...) and gives PyTorch's output.
void load_pytorch(const std::string& dir) {
  qkv::Generator gen(0);
  qkv::Sequential net;
  net.push_back(std::make_shared<qkv::Linear>(qkv::LinearOptions{6, 10}, gen));
  net.push_back(std::make_shared<qkv::Activation>(qkv::UnaryOp::gelu));
  net.push_back(std::make_shared<qkv::Linear>(qkv::LinearOptions{10, 4}, gen));
  net.load_state_dict(qkv::load_safetensors(dir + "/torch_mlp.weights.safetensors").floats);

  const qkv::Tensor x =
      qkv::load_safetensors(dir + "/torch_mlp.input.safetensors").floats.at("input");
  const qkv::Tensor want =
      qkv::load_safetensors(dir + "/torch_mlp.expected.safetensors").floats.at("output");
  qkv::check(want.numel() == x.numel() / 6 * 4, "torch_mlp: input and expected output disagree");
  qkv::NoGrad no_grad;
  const qkv::Tensor y = net.forward(qkv::Var(x)).value();  // x: [B,T,6] -> y: [B,T,4]
  float worst = 0.f;
  for (int64_t i = 0; i < y.numel(); ++i)
    worst = std::max(worst, std::fabs(y.data()[i] - want.data()[i]));
  for (int64_t i = 0; i < std::min<int64_t>(3, y.numel() / 4); ++i) {
    std::printf("row %lld:", (long long)i);
    for (int64_t j = 0; j < 4; ++j)
      std::printf(" %9.5f (torch %9.5f)", y.data()[i * 4 + j], want.data()[i * 4 + j]);
    std::printf("\n");
  }
  std::printf("max abs diff vs PyTorch: %.3g\n", worst);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    train_mlp("mlp.safetensors");
    load_pytorch(argc > 1 ? argv[1] : ".");
    return 0;
  } catch (const std::exception& e) {  // qkv::Error: one line naming what is wrong
    std::fprintf(stderr, "mlp: %s\n", e.what());
    return 1;
  }
}

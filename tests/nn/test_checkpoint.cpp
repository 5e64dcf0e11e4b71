// Checkpoints: a run resumed from a checkpoint continues bit-for-bit as if it
// had never stopped (model, optimizer moments and step counts restored), and
// bad checkpoints are rejected with the file's name.
#include <unistd.h>

#include <cstdio>

#include "autograd/ops.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/qkv_test_ckpt_" + std::to_string(getpid()) + "_" + name;
}

void train_steps(Linear& m, Optimizer& opt, const Tensor& x, const Tensor& y, int steps) {
  for (int s = 0; s < steps; ++s) {
    Var loss = mse_loss(m(Var(x)), Var(y));
    backward(loss);
    opt.step();
    opt.zero_grad();
  }
}

TEST_SUITE("nn/checkpoint") {
  TEST_CASE("resume continues bit-for-bit") {
    Tensor x = test::rand_tensor({16, 5}, 1), y = test::rand_tensor({16, 3}, 2);
    Generator g1(3);
    Linear straight({5, 3}, g1);
    AdamW opt1(straight.parameters(), 0.01);
    train_steps(straight, opt1, x, y, 5);

    Generator g2(3);
    Linear first({5, 3}, g2);
    AdamW opt2(first.parameters(), 0.01);
    train_steps(first, opt2, x, y, 3);
    const std::string path = temp_path("resume.safetensors");
    save_checkpoint(path, first, &opt2, {{"epoch", "7"}});

    Generator g3(99);  // a different initialisation: everything must come from the file
    Linear resumed({5, 3}, g3);
    AdamW opt3(resumed.parameters(), 0.5);
    auto meta = load_checkpoint(path, resumed, &opt3);
    CHECK(meta.at("epoch") == "7");
    CHECK(opt3.step_count() == 3);
    CHECK(opt3.lr() == 0.01);
    train_steps(resumed, opt3, x, y, 2);
    CHECK(resumed.weight.value().to_vector() == straight.weight.value().to_vector());
    CHECK(resumed.bias.value().to_vector() == straight.bias.value().to_vector());
    std::remove(path.c_str());
  }

  TEST_CASE("errors name the file and what is wrong") {
    Generator g(4);
    Linear a({5, 3}, g), b({4, 3}, g);
    const std::string path = temp_path("model_only.safetensors");
    save_checkpoint(path, a, nullptr);
    SGD opt(a.parameters(), 0.1);
    CHECK(test::error_of([&] { load_checkpoint(path, a, &opt); }) ==
          path + ": the checkpoint holds no optimizer state (saved without one?)");
    CHECK(test::error_of([&] { load_checkpoint(path, b); }) ==
          path + ": load_state_dict: mis-shaped [weight: file [3,5] vs module [3,4]]");
    CHECK_NOTHROW(load_checkpoint(path, a));
    std::remove(path.c_str());
    CHECK(test::error_of([&] { load_checkpoint(path, a); }).find(path) != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

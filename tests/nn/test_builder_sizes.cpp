// Sizes checked before they are allocated: each module type refuses a config
// whose parameters cannot fit under the memory limit at once, naming its JSON
// path, the keys and the bytes, with nothing allocated; and the estimate is a
// lower bound, so a module that fits is never refused by it.
#include <chrono>
#include <string>

#include "engine/memory.h"
#include "engine/rng.h"
#include "nn/builder.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// Sets the memory limit for a test's lifetime.
struct LimitGuard {
  size_t old;
  explicit LimitGuard(size_t bytes) : old(memory_limit_set(bytes)) {}
  ~LimitGuard() { memory_limit_set(old); }
};

std::string build_error(const std::string& config) {
  Generator gen(0);
  return test::error_of([&] { build_module(Json::parse(config), gen, "model"); });
}

// One config of every module type with parameters.
const char* const kConfigs[] = {
    R"({"type": "linear", "in_features": 300, "out_features": 200})",
    R"({"type": "embedding", "num_embeddings": 500, "embedding_dim": 64})",
    R"({"type": "lstm", "input_size": 30, "hidden_size": 40, "num_layers": 2, "bidirectional": true})",
    R"({"type": "gru", "input_size": 30, "hidden_size": 40})",
    R"({"type": "lstm_cell", "input_size": 30, "hidden_size": 40})",
    R"({"type": "gru_cell", "input_size": 30, "hidden_size": 40, "bias": false})",
    R"({"type": "attn_classifier", "vocab": 300, "embed": 16, "hidden": 24, "classes": 3})",
    R"({"type": "seq2seq", "src_vocab": 40, "tgt_vocab": 30, "embed": 16, "hidden": 32,
        "bidirectional": true, "attention": {"type": "luong"}})",
    R"({"type": "seq2seq", "src_vocab": 40, "tgt_vocab": 30, "rnn": "gru"})",
    R"({"type": "multihead_attention", "embed_dim": 32, "num_heads": 4, "kdim": 16, "vdim": 8})",
    R"({"type": "layer_norm", "normalized_shape": 64})",
    R"({"type": "transformer_encoder_layer", "d_model": 32, "nhead": 4, "dim_feedforward": 64})",
    R"({"type": "transformer_decoder_layer", "d_model": 32, "nhead": 4, "dim_feedforward": 64})",
    R"({"type": "transformer_encoder", "d_model": 32, "nhead": 4, "dim_feedforward": 64,
        "num_layers": 2})",
    R"({"type": "transformer", "src_vocab": 40, "tgt_vocab": 30, "d_model": 32, "nhead": 4,
        "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 64, "max_len": 100})",
    R"({"type": "transformer_lm", "vocab": 50, "d_model": 32, "nhead": 4, "num_layers": 2,
        "dim_feedforward": 64, "max_len": 100, "positional": "learned"})",
    R"({"type": "conv2d", "in_channels": 8, "out_channels": 16, "kernel_size": [3, 5], "groups": 2})",
    R"({"type": "batch_norm2d", "num_features": 16})",
    R"({"type": "channel_attention", "channels": 32, "ratio": 4})",
    R"({"type": "cbam", "channels": 32, "ratio": 4})",
    R"({"type": "se", "channels": 32, "reduction": 4})",
    R"({"type": "basic_block", "in_channels": 8, "out_channels": 16, "stride": 2, "cbam": true})",
};

TEST_SUITE("nn/builder_sizes") {
  TEST_CASE("absurd sizes are refused at once, naming the keys and the bytes, allocating nothing") {
    const size_t live = live_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    // An embedding 100 million wide, under a 1 GiB limit.
    {
      LimitGuard limit(size_t(1) << 30);
      CHECK(build_error(
                R"({"type": "embedding", "num_embeddings": 40, "embedding_dim": 100000000})") ==
            "model: the parameters (model.num_embeddings = 40, model.embedding_dim = 100000000) "
            "need 16000000000 bytes (14.9 GiB), more than the memory limit of 1073741824 bytes "
            "(1.0 GiB) (set QKV_MEMORY_LIMIT to change it)");
    }
    // A hidden size of 10^7: 1.6e15 bytes, more than any machine has.
    const std::string e =
        build_error(R"({"type": "seq2seq", "src_vocab": 40, "tgt_vocab": 30, "hidden": 10000000})");
    INFO(e);
    CHECK(e.rfind("model: the parameters (", 0) == 0);
    CHECK(e.find("model.hidden = 10000000") != std::string::npos);
    CHECK(e.find("need 1600") != std::string::npos);
    // Nested: the path names the layer.
    CHECK(build_error(R"({"type": "sequential", "layers": [{"type": "relu"},
                         {"type": "linear", "in_features": 100000000, "out_features": 100000000}]})")
              .rfind("model.layers[1]: the parameters (model.layers[1].in_features = 100000000, ",
                     0) == 0);
    CHECK(live_bytes() == live);  // nothing was allocated
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(seconds < 1.0);
  }

  TEST_CASE("the estimate is a lower bound: what fits is never refused by it") {
    for (const char* config : kConfigs) {
      INFO(config);
      Generator gen(0);
      const Built b = build_module(Json::parse(config), gen, "model");
      size_t bytes = 0;  // parameters and float buffers (a position table)
      for (const auto& [_, t] : b.module->state_dict()) bytes += size_t(t.numel()) * sizeof(float);
      // Room for them exactly: the estimate must let the build through (the
      // allocator may still refuse: its blocks are rounded up).
      LimitGuard limit(live_bytes() + bytes);
      const std::string e = build_error(config);
      INFO(e);
      CHECK(e.find("the parameters") == std::string::npos);
    }
  }

  TEST_CASE("allocation failures name what was being allocated") {
    LimitGuard limit(live_bytes() + (size_t(1) << 20));
    // The estimate counts the first layer (320 KB): the allocator refuses the fourth.
    const std::string e =
        build_error(R"({"type": "lstm", "input_size": 100, "hidden_size": 100, "num_layers": 4})");
    INFO(e);
    CHECK(e.rfind("model: out of memory allocating ", 0) == 0);
    CHECK(e.find("more than the memory limit") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

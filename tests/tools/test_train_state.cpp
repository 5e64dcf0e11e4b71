// The training state in checkpoint metadata: every field round-trips exactly
// (doubles bit for bit, NaN, the largest generator state), the keys and the
// format string are those qkv has always written (metadata as an earlier qkv
// wrote it reads back and writes out unchanged but for the doubles, now in
// their shortest exact form), and a missing, foreign or
// malformed entry is an error naming the file and the key.
#include <cmath>
#include <cstring>
#include <set>

#include "tests/test_utils.h"
#include "tools/runner/train_state.h"

namespace qkv::runner {
namespace {

using Meta = std::map<std::string, std::string>;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void check_equal(const TrainState& a, const TrainState& b) {
  CHECK(a.step == b.step);
  CHECK(a.epoch == b.epoch);
  CHECK(a.batch_in_epoch == b.batch_in_epoch);
  CHECK(a.gen_seed == b.gen_seed);
  CHECK(a.gen_counter == b.gen_counter);
  CHECK(same_bits(a.best, b.best));
  CHECK(a.best_metric == b.best_metric);
  CHECK(a.best_step == b.best_step);
  CHECK(a.bad_evals == b.bad_evals);
  CHECK(same_bits(a.train_seconds, b.train_seconds));
  CHECK(same_bits(a.loss_sum, b.loss_sum));
  CHECK(a.loss_n == b.loss_n);
  CHECK(a.config == b.config);
}

// The metadata of the best checkpoint of configs/dates_luong.json trained for
// 60 steps, as the trainer wrote it before TrainState existed (the config,
// one long line of JSON, shortened).
Meta earlier_metadata() {
  return {{"qkv.format", "qkv-checkpoint 1"},
          {"qkv.step", "60"},
          {"qkv.epoch", "0"},
          {"qkv.batch_in_epoch", "60"},
          {"qkv.gen_seed", "1"},
          {"qkv.gen_counter", "116628"},
          {"qkv.best", "0.42199999999999999"},
          {"qkv.best_metric", "exact_match"},
          {"qkv.best_step", "60"},
          {"qkv.bad_evals", "0"},
          {"qkv.train_seconds", "16.759189625000001"},
          {"qkv.loss_sum", "0"},
          {"qkv.loss_n", "0"},
          {"qkv.config", R"({"name":"dates_luong","seed":42})"}};
}

std::string error_of_meta(const Meta& m) {
  return test::error_of([&] { (void)TrainState::from_metadata(m, "dir/model.safetensors"); });
}

TEST_SUITE("tools/runner") {
  TEST_CASE("train state: every field round-trips through the metadata exactly") {
    TrainState s;
    s.step = 123456789012;
    s.epoch = 7;
    s.batch_in_epoch = 3;
    s.gen_seed = ~uint64_t(0);  // the largest, beyond int64
    s.gen_counter = uint64_t(1) << 40;
    s.best = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
    s.best_metric = "exact_match";
    s.best_step = 40;
    s.bad_evals = 2;
    s.train_seconds = 1234.5678901234567;
    s.loss_sum = 1.0 / 3.0;
    s.loss_n = 5;
    s.config = R"({"name":"x","data":{"name":"dates"}})";
    const Meta m = s.to_metadata();
    check_equal(TrainState::from_metadata(m, "f"), s);

    TrainState fresh;  // no evaluation yet: best is NaN
    fresh.loss_sum = -0.0;
    const TrainState back = TrainState::from_metadata(fresh.to_metadata(), "f");
    CHECK(std::isnan(back.best));
    check_equal(back, fresh);
    CHECK(std::signbit(back.loss_sum));
  }

  TEST_CASE("train state: the keys and format of earlier checkpoints") {
    const Meta old = earlier_metadata();
    const TrainState s = TrainState::from_metadata(old, "f");
    CHECK(s.step == 60);
    CHECK(s.best == 0.422);
    CHECK(s.gen_counter == 116628);
    CHECK(s.train_seconds == 16.759189625);
    CHECK(s.config == old.at("qkv.config"));
    Meta now = old;  // same keys, same strings, the doubles written shortest
    now["qkv.best"] = "0.422";
    now["qkv.train_seconds"] = "16.759189625";
    CHECK(s.to_metadata() == now);
    CHECK(std::string(kCheckpointFormat) == "qkv-checkpoint 1");
    // A checkpoint's other entries (the optimizer's) are not the state's business.
    Meta with_optim = old;
    with_optim["optim.optimizer"] = "adam";
    CHECK(TrainState::from_metadata(with_optim, "f").to_metadata() == now);
  }

  TEST_CASE("train state: missing, foreign and malformed metadata name the file and key") {
    Meta m = earlier_metadata();
    m.erase("qkv.loss_n");
    CHECK(error_of_meta(m) ==
          "dir/model.safetensors: not a qkv training checkpoint (no 'qkv.loss_n' in its metadata)");
    CHECK(error_of_meta({}) ==
          "dir/model.safetensors: not a qkv training checkpoint (no 'qkv.format' in its metadata)");
    m = earlier_metadata();
    m["qkv.format"] = "qkv-checkpoint 2";
    CHECK(error_of_meta(m) ==
          "dir/model.safetensors: unknown checkpoint format 'qkv-checkpoint 2'");
    m = earlier_metadata();
    m["qkv.step"] = "12x";
    CHECK(error_of_meta(m) ==
          "dir/model.safetensors: metadata 'qkv.step' is not an integer: '12x'");
    m = earlier_metadata();
    m["qkv.gen_seed"] = "-1";
    CHECK(error_of_meta(m) ==
          "dir/model.safetensors: metadata 'qkv.gen_seed' is not an unsigned integer: '-1'");
    m = earlier_metadata();
    m["qkv.best"] = "";
    CHECK(error_of_meta(m) == "dir/model.safetensors: metadata 'qkv.best' is not a number: ''");
    m = earlier_metadata();
    m["qkv.bad_evals"] = "99999999999999999999";  // beyond int64
    CHECK(error_of_meta(m).find("'qkv.bad_evals' is not an integer") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv::runner

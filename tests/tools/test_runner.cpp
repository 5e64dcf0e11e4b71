// The experiment runner on a tiny fake seq2seq data set (reverse strings over
// 4 letters): config errors name their JSON path, training writes its files
// and lowers the loss, --resume reproduces an uninterrupted run bit for bit, a
// diverging run stops and leaves its checkpoint intact, teacher-forced
// exact_match equals greedy decoding, a truncated checkpoint is refused; and
// a fake text classification trains an attn_classifier to its target.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/safetensors.h"
#include "nn/schedule.h"
#include "nn/seq_model.h"
#include "tests/test_utils.h"
#include "tests/tools/fake_majority.h"
#include "tools/runner/config.h"
#include "tools/runner/experiment.h"
#include "tools/runner/inspect.h"
#include "tools/runner/predict.h"
#include "tools/runner/train.h"

namespace qkv {
namespace {

namespace fs = std::filesystem;
using data::Batch;
using data::Split;
using data::Vocab;

// ---- a fake data set: "abca" -> "acba" ------------------------------------------
class FakeReverse : public data::Dataset {
 public:
  explicit FakeReverse(uint64_t seed) {
    src_vocab_ = Vocab({"a", "b", "c", "d"}, Vocab::Level::chars);
    tgt_vocab_ = src_vocab_;
    max_target_len_ = 6;
    Generator g(seed);
    const int64_t sizes[3] = {96, 24, 24};
    for (int s = 0; s < 3; ++s)
      for (int64_t i = 0; i < sizes[s]; ++i) {
        std::string x;
        const int64_t len = 2 + g.next_below(4);
        for (int64_t k = 0; k < len; ++k) x += char('a' + g.next_below(4));
        src_[s].push_back(x);
      }
  }
  data::Task task() const override { return data::Task::seq2seq; }
  std::string name() const override { return "fake_reverse"; }
  int64_t size(Split s) const override { return int64_t(src_[int(s)].size()); }
  std::string source_text(Split s, int64_t i) const override { return src_[int(s)][size_t(i)]; }
  std::string target_text(Split s, int64_t i) const override {
    std::string t = source_text(s, i);
    return std::string(t.rbegin(), t.rend());
  }
  Batch batch(Split s, const std::vector<int64_t>& idx) const override {
    std::vector<std::string> src, tgt;
    for (int64_t i : idx) {
      src.push_back(source_text(s, i));
      tgt.push_back(target_text(s, i));
    }
    return make(src, tgt);
  }
  Batch encode_input(const std::string& text) const override { return make({text}, {text}); }

 private:
  Batch make(const std::vector<std::string>& src, const std::vector<std::string>& tgt) const {
    const int64_t B = int64_t(src.size());
    int64_t S = 1, T = 1;
    for (const auto& x : src) S = std::max<int64_t>(S, int64_t(x.size()));
    for (const auto& y : tgt) T = std::max<int64_t>(T, int64_t(y.size()) + 1);
    Batch b;
    b.size = B;
    b.src = IntTensor::zeros({B, S});
    b.src_len = IntTensor::zeros({B});
    b.tgt_in = IntTensor::zeros({B, T});
    b.tgt_out = IntTensor::zeros({B, T});
    for (int64_t i = 0; i < B; ++i) {
      const auto s = src_vocab_.encode(src[size_t(i)]), t = tgt_vocab_.encode(tgt[size_t(i)]);
      for (size_t k = 0; k < s.size(); ++k) b.src.data()[i * S + int64_t(k)] = s[k];
      b.src_len.data()[i] = int32_t(s.size());
      b.tgt_in.data()[i * T] = Vocab::bos;
      for (size_t k = 0; k < t.size(); ++k) {
        b.tgt_in.data()[i * T + int64_t(k) + 1] = t[k];  // T = longest target + 1
        b.tgt_out.data()[i * T + int64_t(k)] = t[k];
      }
      b.tgt_out.data()[i * T + int64_t(t.size())] = Vocab::eos;
    }
    return b;
  }
  std::vector<std::string> src_[3];
};

using test::FakeMajority;

Json tiny_config(const std::string& out) {
  return Json::parse(R"({
    "name": "tiny", "seed": 3, "output": ")" +
                     out + R"(",
    "data": {"name": "fake"},
    "model": {"type": "seq2seq", "embed": 8, "hidden": 16, "bidirectional": true,
              "attention": {"type": "luong"}},
    "train": {"optimizer": {"type": "adam", "lr": 0.01}, "batch_size": 16, "steps": 12,
              "eval_every": 4, "eval_samples": 16, "log_every": 2}
  })");
}

runner::Experiment tiny_experiment(const Json& root) {
  return runner::make_experiment(runner::parse_config(root, "x"), std::make_unique<FakeReverse>(7));
}

// Per process, so two test runs on one machine never share a run directory.
std::string temp_dir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("qkv_test_runner_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

runner::RunOptions quiet() {
  runner::RunOptions o;
  o.quiet = true;
  return o;
}

std::string config_error(Json root) {
  return test::error_of([&] { (void)tiny_experiment(root); });
}

TEST_SUITE("tools/runner") {
  TEST_CASE("config errors name the JSON path") {
    Json c = tiny_config("/tmp/unused");
    c["train"]["optimizer"]["lr"] = -0.1;
    CHECK(config_error(c) == "train.optimizer.lr: expected a number > 0, got -0.1");
    c = tiny_config("/tmp/unused");
    c["train"]["optimzer"] = Json::object();
    CHECK(config_error(c).rfind("train.optimzer: unknown key", 0) == 0);
    c = tiny_config("/tmp/unused");
    c["train"]["batch_size"] = "big";
    CHECK(config_error(c) == "train.batch_size: expected an integer, got \"big\"");
    c = tiny_config("/tmp/unused");
    c["train"]["epochs"] = 3;
    CHECK(config_error(c) == "train.steps: give train.epochs or train.steps, not both");
    c = tiny_config("/tmp/unused");
    c["train"]["target"] = {{"metric", "accuracy"}, {"value", 0.9}};
    CHECK(
        config_error(c) ==
        "train.target.metric: expected one of loss, token_accuracy, exact_match, got \"accuracy\"");
    c = tiny_config("/tmp/unused");
    c["model"]["hidden"] = 0;
    CHECK(config_error(c) == "model.hidden: expected an integer >= 1, got 0");
    c = tiny_config("/tmp/unused");
    c.erase("model");
    CHECK(config_error(c) == "model: missing (required)");
    Json s = tiny_config("/tmp/unused");
    json_set_path(s, "train.optimizer.lr=0.5");
    CHECK(tiny_experiment(s).cfg.train.optimizer.lr() == 0.5);
    CHECK(test::error_of([&] {
            json_set_path(s, "train.optimizer.lr.x=1");
          }).find("train.optimizer.lr is not an object") != std::string::npos);
  }

  TEST_CASE("the resolved config fills defaults and the data set's vocab sizes") {
    runner::Experiment ex = tiny_experiment(tiny_config("/tmp/unused"));
    const Json& r = ex.cfg.resolved;
    CHECK(r["model"]["src_vocab"] == 8);  // 4 specials + a b c d
    CHECK(r["model"]["tgt_vocab"] == 8);
    CHECK(r["train"]["optimizer"]["beta2"] == 0.999);
    CHECK(r["train"]["schedule"]["type"] == "constant");
    CHECK(r["threads"] == 0);
  }

  TEST_CASE("training lowers the loss and writes its files") {
    const std::string dir = temp_dir("train");
    Json c = tiny_config(dir);
    c["train"]["steps"] = 60;
    c["train"]["eval_every"] = 20;
    runner::Experiment ex = tiny_experiment(c);
    const runner::TrainResult r = runner::train(ex, quiet());
    CHECK(r.steps == 60);
    CHECK(!r.interrupted);
    for (const char* f :
         {"config.json", "metrics.jsonl", "model.safetensors", "best.safetensors", "curves.svg"})
      CHECK_MESSAGE(fs::exists(fs::path(dir) / f), f);
    std::ifstream in(fs::path(dir) / "metrics.jsonl");
    std::string line;
    std::vector<double> train_loss;
    int valid_lines = 0;
    while (std::getline(in, line)) {
      const Json j = Json::parse(line);
      if (j["split"] == "train") train_loss.push_back(j["loss"].get<double>());
      if (j["split"] == "valid") ++valid_lines;
    }
    REQUIRE(train_loss.size() == 30);
    CHECK(train_loss.back() < 0.7 * train_loss.front());
    CHECK(valid_lines == 4);  // 3 periodic + the final one
    CHECK(r.summary["name"] == "tiny");
    CHECK(r.summary["valid"].contains("exact_match"));
    CHECK(r.summary["test"].contains("token_accuracy"));
    CHECK(file_bytes(dir + "/curves.svg").find("<svg") != std::string::npos);
    CHECK(Json::parse(file_bytes(dir + "/config.json"))["model"]["hidden"] == 16);
  }

  TEST_CASE("resume after an interruption reproduces the uninterrupted weights exactly") {
    const std::string a = temp_dir("straight"), b = temp_dir("resumed");
    {
      runner::Experiment ex = tiny_experiment(tiny_config(a));
      runner::train(ex, quiet());
    }
    {
      runner::Experiment ex = tiny_experiment(tiny_config(b));
      runner::RunOptions o = quiet();
      o.after_step = [](int64_t step) {
        if (step == 5) runner::stop_flag().store(true);  // as SIGINT does, mid-eval-interval
      };
      const runner::TrainResult r = runner::train(ex, o);
      runner::stop_flag().store(false);
      CHECK(r.interrupted);
      CHECK(r.steps == 5);
    }
    {
      runner::Experiment ex = tiny_experiment(tiny_config(b));
      runner::RunOptions o = quiet();
      o.resume = true;
      const runner::TrainResult r = runner::train(ex, o);
      CHECK(r.steps == 12);
    }
    const TensorFile fa = load_safetensors(a + "/model.safetensors");
    const TensorFile fb = load_safetensors(b + "/model.safetensors");
    REQUIRE(fa.floats.size() == fb.floats.size());
    for (const auto& [name, t] : fa.floats) {
      INFO(name);
      REQUIRE(fb.floats.count(name));
      const Tensor& u = fb.floats.at(name);
      REQUIRE(u.numel() == t.numel());
      CHECK(std::memcmp(t.data(), u.data(), size_t(t.numel()) * sizeof(float)) == 0);
    }
    CHECK(fa.metadata.at("qkv.step") == "12");
    // The resumed log continues the interrupted one: same records, same losses.
    auto records = [](const std::string& dir) {
      std::vector<std::string> out;
      std::ifstream in(dir + "/metrics.jsonl");
      for (std::string line; std::getline(in, line);) {
        Json j = Json::parse(line);
        j.erase("seconds");
        j.erase("examples_per_s");
        out.push_back(j.dump());
      }
      return out;
    };
    CHECK(records(a) == records(b));
    CHECK(records(a).size() == 11);  // 6 train, 3 valid, 2 final
  }

  TEST_CASE("a diverging run stops with a clear message and keeps its last good checkpoint") {
    const std::string dir = temp_dir("nan");
    {
      Json c = tiny_config(dir);
      c["train"]["steps"] = 4;
      runner::Experiment ex = tiny_experiment(c);
      runner::train(ex, quiet());
    }
    const std::string before = file_bytes(dir + "/model.safetensors");
    REQUIRE(!before.empty());
    Json c = tiny_config(dir);
    c["train"]["steps"] = 40;
    c["train"]["eval_every"] = 100;
    c["train"]["optimizer"]["lr"] = 1e38;  // Adam's first step overflows to Inf
    runner::Experiment ex = tiny_experiment(c);
    runner::RunOptions o = quiet();
    o.resume = true;
    const std::string err = test::error_of([&] { runner::train(ex, o); });
    INFO(err);
    CHECK(err.rfind("train: the loss is ", 0) == 0);
    CHECK(err.find("model.safetensors (step 4) is intact") != std::string::npos);
    CHECK(file_bytes(dir + "/model.safetensors") == before);
  }

  TEST_CASE("teacher-forced exact_match equals greedy decoding") {
    const std::string dir = temp_dir("greedy");
    Json c = tiny_config(dir);
    c["train"]["steps"] = 40;
    runner::Experiment ex = tiny_experiment(c);
    const runner::TrainResult r = runner::train(ex, quiet());
    auto model = std::dynamic_pointer_cast<SeqToSeqModel>(ex.model);
    REQUIRE(model);
    model->eval();
    int64_t hits = 0;
    const int64_t n = ex.data->size(Split::valid);
    for (int64_t i = 0; i < n; ++i) {
      const Decoded d =
          model->greedy(ex.data->encode_input(ex.data->source_text(Split::valid, i)).src, 6);
      hits += ex.data->tgt_vocab()->decode(d.tokens) == ex.data->target_text(Split::valid, i) &&
              !d.tokens.empty() && d.tokens.back() == Vocab::eos;
    }
    const double em = runner::metric_value(r.valid, "exact_match");
    CHECK(em == doctest::Approx(double(hits) / double(n)));
    CHECK(em > 0.0);  // not a vacuous 0 == 0
    CHECK(em < 1.0);  // nor a vacuous 1 == 1 (40 steps are not enough)
    // Beam search (train.beam > 1) decodes each example: same token metrics, an exact
    // match that may differ from greedy but not by much on this easy task.
    auto beam_task = runner::make_task(*ex.data, ex.model, 3);
    const runner::Metrics mb = runner::evaluate(*beam_task, *ex.data, Split::valid, 0, 16);
    CHECK(runner::metric_value(mb, "token_accuracy") ==
          runner::metric_value(r.valid, "token_accuracy"));
    CHECK(std::fabs(runner::metric_value(mb, "exact_match") - em) <= 0.25);

    // By source length: the buckets hold every example once, and their exact matches,
    // weighted by their sizes, give the whole split's (greedy and beam alike).
    for (auto* task : {ex.task.get(), beam_task.get()}) {
      const double whole = runner::metric_value(
          runner::evaluate(*task, *ex.data, Split::valid, 0, 16), "exact_match");
      const std::vector<runner::LengthBucket> buckets =
          runner::evaluate_by_length(*task, *ex.data, Split::valid, 2, 16);
      REQUIRE(buckets.size() >= 2);
      int64_t examples = 0;
      double hits_by_length = 0;
      for (const runner::LengthBucket& b : buckets) {
        CHECK(b.max_len == b.min_len + 1);
        int64_t in_range = 0;  // the examples whose source length is in [min_len, max_len]
        for (int64_t i = 0; i < n; ++i) {
          const int64_t len = ex.data->batch(Split::valid, {i}).src_len.data()[0];
          in_range += len >= b.min_len && len <= b.max_len;
        }
        CHECK(b.examples == in_range);
        examples += b.examples;
        hits_by_length += double(b.examples) * runner::metric_value(b.metrics, "exact_match");
      }
      CHECK(examples == n);
      CHECK(hits_by_length / double(n) == doctest::Approx(whole));
    }

    // Predictions are decoded (greedily, the batch at once), not the teacher-forced argmax.
    std::vector<std::vector<int32_t>> predictions;
    EvalOptions eo;
    eo.max_len = 6;
    eo.predictions = &predictions;
    EvalSums sums;
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
    model->eval_batch(ex.data->batch(Split::valid, all), sums, eo);
    REQUIRE(int64_t(predictions.size()) == n);
    for (int64_t i = 0; i < n; ++i)
      CHECK(predictions[size_t(i)] ==
            model->greedy(ex.data->encode_input(ex.data->source_text(Split::valid, i)).src, 6)
                .tokens);
  }

  TEST_CASE("evaluation sums and loss units split over slices add up to the whole") {
    // What data-parallel training relies on: sums of two slices added name by
    // name give the whole batch's metrics, and the mean loss scaled by each
    // slice's share of the loss units gives the whole batch's mean loss.
    runner::Experiment ex = tiny_experiment(tiny_config("/tmp/unused"));
    ex.model->eval();
    NoGrad ng;
    std::vector<int64_t> all(16), first(7), second(9);
    for (int64_t i = 0; i < 16; ++i) all[size_t(i)] = i;
    std::copy(all.begin(), all.begin() + 7, first.begin());
    std::copy(all.begin() + 7, all.end(), second.begin());
    const Batch b = ex.data->batch(Split::valid, all), b1 = ex.data->batch(Split::valid, first),
                b2 = ex.data->batch(Split::valid, second);
    EvalSums whole, s1, s2;
    ex.task->eval_batch(b, whole);
    ex.task->eval_batch(b1, s1);
    ex.task->eval_batch(b2, s2);
    for (const auto& [name, v] : s2) s1[name] += v;
    const runner::Metrics mw = ex.task->metrics(whole), ms = ex.task->metrics(s1);
    REQUIRE(mw.size() == 3);
    for (size_t i = 0; i < mw.size(); ++i) CHECK(ms[i].second == doctest::Approx(mw[i].second));
    const int64_t u = ex.model->loss_units(b), u1 = ex.model->loss_units(b1),
                  u2 = ex.model->loss_units(b2);
    CHECK(u == u1 + u2);
    CHECK(u1 != 7);  // tokens, not examples
    const double lw = ex.model->loss(b).item(), l1 = ex.model->loss(b1).item(),
                 l2 = ex.model->loss(b2).item();
    CHECK(l1 * double(u1) / double(u) + l2 * double(u2) / double(u) ==
          doctest::Approx(lw).epsilon(1e-5));
  }

  TEST_CASE("inspect's FLOPs per step for a Transformer, from its dimensions") {
    // 1 encoder and 2 decoder layers; the count rebuilt from d_model, FF,
    // the vocabulary and the first batch, not from the parameter list.
    Json c = tiny_config(temp_dir("flops"));
    c["model"] = Json::parse(R"({"type": "transformer", "d_model": 8, "nhead": 2,
        "num_encoder_layers": 1, "num_decoder_layers": 2, "dim_feedforward": 12,
        "dropout": 0.0, "max_len": 16, "positional": "learned"})");
    const runner::Experiment ex = tiny_experiment(c);
    std::vector<int64_t> idx(16);
    for (int64_t i = 0; i < 16; ++i) idx[size_t(i)] = i;
    const Batch b = ex.data->batch(Split::train, idx);  // batch_size 16
    double src = 0, tgt = 0;
    for (int32_t l : b.src_len) src += l;
    for (int32_t t : b.tgt_out) tgt += t != Vocab::pad;
    const double D = 8, FF = 12, Le = 1, Ld = 2, V = double(ex.data->tgt_vocab()->size());
    const double S = double(b.src.size(1)), T = double(b.tgt_in.size(1));
    // encoder layer: in_proj 3D^2, out_proj D^2, two FF matrices; decoder layer:
    // self-attention 4D^2, cross-attention q and out 2D^2 (target tokens) and its
    // k, v projections 2D^2 (source tokens), FF; the output layer V x D
    const double weights = Le * (4 * D * D + 2 * D * FF) * src + Ld * 2 * D * D * src +
                           (Ld * (6 * D * D + 2 * D * FF) + V * D) * tgt;
    const double attn = 4 * D * (Le * S * src + Ld * (T + S) * tgt);
    std::string how;
    CHECK(runner::flops_per_step(ex, &how) == doctest::Approx(6 * weights + 3 * attn));
    CHECK(how.find("source tokens") != std::string::npos);
  }

  TEST_CASE("the schedule sets each step's lr; early stopping ends a stalled run") {
    const std::string dir = temp_dir("schedule");
    Json c = tiny_config(dir);
    c["train"]["optimizer"]["lr"] = 1e-7;  // nothing improves
    c["train"]["schedule"] = {{"type", "cosine"}, {"warmup", 3}, {"warmup_start", 0.1}};
    c["train"]["steps"] = 40;
    c["train"]["log_every"] = 1;
    c["train"]["early_stopping"] = {{"metric", "exact_match"}, {"patience", 2}};
    runner::Experiment ex = tiny_experiment(c);
    const runner::TrainResult r = runner::train(ex, quiet());
    CHECK(r.steps == 12);  // best at the eval of step 4, no better at 8 and 12
    const Schedule want = runner::make_schedule(ex.cfg.train.schedule, 1e-7, 40);
    std::ifstream in(fs::path(dir) / "metrics.jsonl");
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      const Json j = Json::parse(line);
      if (j["split"] != "train") continue;
      CHECK(j["lr"].get<double>() == want.lr_at(j["step"].get<int64_t>() - 1));
      ++n;
    }
    CHECK(n == 12);
    CHECK(want.lr_at(0) == doctest::Approx(1e-8));
  }

  TEST_CASE("text classification trains an attn_classifier and reports accuracy") {
    const std::string dir = temp_dir("classify");
    Json c = Json::parse(R"({"name": "cls", "seed": 1, "output": ")" + dir + R"(",
      "data": {"name": "fake"}, "model": {"type": "attn_classifier", "embed": 8, "hidden": 8},
      "train": {"optimizer": {"lr": 0.02}, "batch_size": 32, "epochs": 15,
                "target": {"metric": "accuracy", "value": 0.95}}})");
    runner::Experiment ex =
        runner::make_experiment(runner::parse_config(c, "x"), std::make_unique<FakeMajority>());
    CHECK(ex.cfg.resolved["model"]["vocab"] == 6);
    CHECK(ex.cfg.resolved["model"]["classes"] == 2);
    const runner::TrainResult r = runner::train(ex, quiet());
    CHECK(ex.task->metric_names() == std::vector<std::string>{"loss", "accuracy"});
    INFO(r.summary.dump());
    CHECK(runner::metric_value(r.valid, "accuracy") >= 0.9);
    CHECK(r.steps <= 60);  // epochs of 4 steps; the target stops it early
    const runner::Prediction p = runner::predict(ex, "aabaa");
    CHECK(p.text == "yes");
    CHECK(p.attention.shape() == Shape{1, 5});
  }

  TEST_CASE("a truncated checkpoint is refused, naming the file") {
    const std::string dir = temp_dir("corrupt");
    Json c = tiny_config(dir);
    c["train"]["steps"] = 2;
    runner::Experiment ex = tiny_experiment(c);
    runner::train(ex, quiet());
    const std::string path = dir + "/model.safetensors";
    const std::string bytes = file_bytes(path);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    const std::string err = test::error_of([&] { runner::load_model(ex, path); });
    CHECK(err.rfind(path + ": ", 0) == 0);
    CHECK(test::error_of([&] {
            runner::load_model(ex, dir + "/nope.safetensors");
          }).find("no such checkpoint file") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv

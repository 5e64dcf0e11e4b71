// A model type added from this file alone: a toy bag-of-embeddings text
// classifier, registered with register_module_type (its maker and the config
// keys the data set fills in), then trained, evaluated, inspected and run on
// one input through the experiment runner, which never learns its type. Also
// the registry's and the task check's errors.
#include <algorithm>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/builder.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "tests/test_utils.h"
#include "tests/tools/fake_majority.h"
#include "tests/tools/temp_dir.h"
#include "tools/runner/config.h"
#include "tools/runner/experiment.h"
#include "tools/runner/inspect.h"
#include "tools/runner/predict.h"
#include "tools/runner/train.h"

namespace qkv {
namespace {

using data::Split;
using data::Vocab;

// ---- the toy model: logits = out(sum of the tokens' embeddings) ------------------
class ToyBag : public Model {
 public:
  ToyBag(int64_t vocab, int64_t embed, int64_t classes, Generator& g) {
    embedding = register_module("embedding",
                                std::make_shared<Embedding>(EmbeddingOptions{vocab, embed, 0}, g));
    out = register_module("out", std::make_shared<Linear>(LinearOptions{embed, classes, true}, g));
  }
  // ids: [B,T] (pad 0 embeds to zeros) -> logits [B,classes]
  Var logits(const IntTensor& ids) { return out->forward(sum(embedding->forward(ids), {1})); }
  std::string describe() const override { return "ToyBag"; }

  std::vector<TaskKind> tasks() const override { return {TaskKind::text_classification}; }
  Var loss(const Batch& b) override { return classification_loss(logits(b.src), b); }
  int64_t loss_units(const Batch& b) const override { return b.size; }
  void eval_batch(const Batch& b, EvalSums& s, const EvalOptions& o) override {
    classification_eval(logits(b.src), b, s, o);
  }
  Metrics metrics(const EvalSums& s) const override { return classification_metrics(s); }
  Predicted predict(const Batch& one, const PredictParams&) override {
    NoGrad ng;
    return {{argmax_rows(logits(one.src).value())[0]}, Tensor()};
  }
  double flops_per_step(const Batch& b, std::string* how) const override {
    if (how) *how = "toy: 6 x out weights x examples";
    return 6 * double(out->weight.numel()) * double(b.size);
  }

  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<Linear> out;
};

std::shared_ptr<Module> make_toy(JsonReader& r, Generator& g) {
  const int64_t vocab = r.require_int("vocab", 1);
  const int64_t embed = r.get_int("embed", 4, 1);
  const int64_t classes = r.require_int("classes", 2);
  return std::make_shared<ToyBag>(vocab, embed, classes, g);
}

// The one registration: the maker, and the keys the data set fills in.
void register_toy() {
  static const bool once = [] {
    register_module_type("toy_bag",
                         ModuleType(make_toy, {{"vocab", "src_vocab"}, {"classes", "classes"}}));
    return true;
  }();
  (void)once;
}

// ---- a fake text classification: more a's than b's? ---------------------------
std::unique_ptr<test::FakeMajority> fake_majority(
    data::Task task = data::Task::text_classification) {
  return std::make_unique<test::FakeMajority>(test::FakeMajorityOptions{11, 256, 64, 4, task});
}

Json toy_config(const std::string& type = "toy_bag") {
  return Json::parse(R"({"name": "toy", "seed": 2, "output": "/tmp/unused",
    "data": {"name": "fake"}, "model": {"type": ")" +
                     type + R"("},
    "train": {"optimizer": {"lr": 0.05}, "batch_size": 32, "steps": 60, "eval_every": 20,
              "log_every": 20}})");
}

runner::Experiment toy_experiment(const Json& c,
                                  data::Task task = data::Task::text_classification) {
  return runner::make_experiment(runner::parse_config(c, "x"), fake_majority(task));
}

TEST_SUITE("tools/model_registry") {
  TEST_CASE("a model type registered from a test file trains, evaluates, inspects and predicts") {
    register_toy();
    const test::TempDir dir;
    Json c = toy_config();
    c["output"] = dir.path;
    runner::Experiment ex = toy_experiment(c);
    // The registration's data fills: vocab and classes come from the data set.
    CHECK(ex.cfg.resolved["model"]["vocab"] == 6);  // 4 specials + a b
    CHECK(ex.cfg.resolved["model"]["classes"] == 2);
    CHECK(ex.cfg.resolved["model"]["embed"] == 4);
    CHECK(ex.task->metric_names() == std::vector<std::string>{"loss", "accuracy"});

    const runner::Metrics before = runner::evaluate(*ex.task, *ex.data, Split::valid, 0, 32);
    runner::RunOptions quiet;
    quiet.quiet = true;
    const runner::TrainResult r = runner::train(ex, quiet);
    CHECK(r.steps == 60);
    INFO(r.summary.dump());
    CHECK(runner::metric_value(r.valid, "loss") < runner::metric_value(before, "loss"));
    CHECK(runner::metric_value(r.valid, "accuracy") >= 0.9);
    // evaluate agrees with the trainer's final evaluation.
    const runner::Metrics again = runner::evaluate(*ex.task, *ex.data, Split::valid, 0, 32);
    CHECK(runner::metric_value(again, "accuracy") == runner::metric_value(r.valid, "accuracy"));

    const std::string text = runner::inspect_text(ex);
    CHECK(text.find("ToyBag") != std::string::npos);
    CHECK(text.find("toy: 6 x out weights x examples") != std::string::npos);
    std::string how;
    CHECK(runner::flops_per_step(ex, &how) == 6.0 * (4 * 2) * 32);

    CHECK(runner::predict(ex, "aaaba").text == "yes");
    CHECK(runner::predict(ex, "bbbab").text == "no");
  }

  TEST_CASE("the registry refuses a taken name; the runner refuses a mismatched model") {
    register_toy();
    Generator g(1);
    CHECK(test::error_of([] { register_module_type("toy_bag", ModuleType()); }) ==
          "register_module_type: 'toy_bag' is already a module type");
    CHECK(test::error_of([] { register_module_type("sequential", ModuleType()); }) ==
          "register_module_type: 'sequential' is already a module type");
    const auto types = module_types();
    CHECK(std::find(types.begin(), types.end(), "toy_bag") != types.end());
    // A data set whose task the model does not do: the error names both.
    CHECK(test::error_of([] { toy_experiment(toy_config(), data::Task::image_classification); }) ==
          "model: data set 'fake_majority' is for image classification, which the model "
          "ToyBag cannot do (it does: text classification)");
    // A module that is no model.
    Json c = toy_config("linear");
    c["model"]["in_features"] = 2;
    c["model"]["out_features"] = 2;
    CHECK(test::error_of([&] {
            toy_experiment(c);
          }).rfind("model: a linear is a module, not a model", 0) == 0);
  }
}

}  // namespace
}  // namespace qkv

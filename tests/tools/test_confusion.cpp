// The confusion matrix of `qkv eval --confusion`: on a fake text classification
// trained two steps (not yet right), each cell equals the count of examples of that true class
// that predict() (a separate path) puts in that class, the diagonal is the
// evaluation's accuracy, and a data set without classes is refused by name.
#include <algorithm>
#include <filesystem>

#include "tests/test_utils.h"
#include "tests/tools/fake_majority.h"
#include "tests/tools/temp_dir.h"
#include "tools/runner/config.h"
#include "tools/runner/confusion.h"
#include "tools/runner/experiment.h"
#include "tools/runner/predict.h"
#include "tools/runner/train.h"

namespace qkv {
namespace {

using data::Split;

int32_t class_id(const data::Dataset& d, const std::string& name) {
  const auto& c = d.class_names();
  const auto it = std::find(c.begin(), c.end(), name);
  REQUIRE(it != c.end());
  return int32_t(it - c.begin());
}

TEST_SUITE("tools/runner") {
  TEST_CASE("confusion matrix: cells from the model's predictions, diagonal = accuracy") {
    test::TempDir dir;
    Json c = Json::parse(R"({"name": "cls", "seed": 1, "output": ")" + dir.path + R"(",
      "data": {"name": "fake"}, "model": {"type": "attn_classifier", "embed": 8, "hidden": 8},
      "train": {"optimizer": {"lr": 0.02}, "batch_size": 32, "steps": 2}})");
    test::FakeMajorityOptions fo;
    fo.valid_test = 41;  // not a multiple of the batch size below
    runner::Experiment ex = runner::make_experiment(runner::parse_config(c, "x"),
                                                    std::make_unique<test::FakeMajority>(fo));
    runner::RunOptions quiet;
    quiet.quiet = true;
    runner::train(ex, quiet);
    const data::Dataset& d = *ex.data;

    const runner::Confusion m = runner::confusion_matrix(*ex.model, d, Split::test, 16);
    CHECK(m.classes == d.class_names());
    REQUIRE(m.counts.size() == 4);
    std::vector<int64_t> want(4, 0);
    for (int64_t i = 0; i < d.size(Split::test); ++i) {
      const int32_t t = class_id(d, d.target_text(Split::test, i));
      const int32_t p = class_id(d, runner::predict(ex, d.source_text(Split::test, i)).text);
      ++want[size_t(t * 2 + p)];
    }
    // Two steps leave mistakes of one kind only, so rows and columns differ.
    REQUIRE(want[1] != want[2]);
    CHECK(m.counts == want);
    CHECK(m.total() == 41);
    const runner::Metrics e = runner::evaluate(*ex.task, d, Split::test, 0, 16);
    CHECK(double(m.correct()) == doctest::Approx(41 * runner::metric_value(e, "accuracy")));
    const Json j = runner::confusion_json(m);
    CHECK(j["classes"] == Json({"no", "yes"}));
    CHECK(j["counts"] == Json({{want[0], want[1]}, {want[2], want[3]}}));
  }

  TEST_CASE("confusion matrix: a data set without classes is refused by name") {
    Json c = Json::parse(R"({"name": "seq", "seed": 1,
      "data": {"name": "sequence", "task": "reverse", "min_len": 2, "max_len": 3, "symbols": 3,
               "train": 8, "valid": 4, "test": 4},
      "model": {"type": "seq2seq", "embed": 4, "hidden": 4}})");
    runner::Experiment ex = runner::make_experiment(runner::parse_config(c, "x"));
    CHECK(test::error_of([&] { runner::confusion_matrix(*ex.model, *ex.data, Split::test, 4); }) ==
          "eval --confusion: the sequence data set has no classes (a confusion matrix "
          "needs a classification task)");
  }
}

}  // namespace
}  // namespace qkv

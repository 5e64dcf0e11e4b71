// One home for each default, experiment side: the train section, every
// optimizer type and every schedule type, read from their required keys alone,
// resolve to the members of default-constructed config / options structs; so
// does every data set. An optimizer, schedule or data set without an entry
// here fails the test. The module types: tests/nn/test_defaults.cpp.
#include <map>
#include <sstream>

#include "tests/defaults_utils.h"
#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/addition.h"
#include "tools/data/dates.h"
#include "tools/data/fashion_mnist.h"
#include "tools/data/g2p.h"
#include "tools/data/language_id.h"
#include "tools/data/pairs_tsv.h"
#include "tools/data/sequence.h"
#include "tools/data/text.h"
#include "tools/runner/config.h"

namespace qkv {
namespace {

using runner::OptimizerConfig;
using runner::OptimizerType;
using runner::ScheduleConfig;

// A config with nothing but the required keys, and `train` inside it.
runner::ExperimentConfig parse_train(const Json& train) {
  Json root = {{"data", {{"name", "dates"}}}, {"model", {{"type", "seq2seq"}}}};
  if (!train.is_null()) root["train"] = train;
  return runner::parse_config(root, "x");
}

Json sgd_defaults() {
  const SgdOptions d;
  return {{"lr", d.lr},
          {"momentum", d.momentum},
          {"nesterov", d.nesterov},
          {"weight_decay", d.weight_decay}};
}

template <class Options>
Json adam_defaults() {
  const Options d;
  return {{"lr", d.lr},
          {"beta1", d.beta1},
          {"beta2", d.beta2},
          {"eps", d.eps},
          {"weight_decay", d.weight_decay}};
}

const std::map<OptimizerType, Json (*)()>& optimizer_cases() {
  static const std::map<OptimizerType, Json (*)()> c = {
      {OptimizerType::sgd, sgd_defaults},
      {OptimizerType::adam, adam_defaults<AdamOptions>},
      {OptimizerType::adamw, adam_defaults<AdamWOptions>},
  };
  return c;
}

// Each schedule type's required keys and the keys it reads beyond warmup.
struct ScheduleCase {
  Json required;
  std::function<Json(const ScheduleConfig&)> own;
};

const std::map<ScheduleKind, ScheduleCase>& schedule_cases() {
  static const std::map<ScheduleKind, ScheduleCase> c = {
      {ScheduleKind::constant,
       {Json::object(), [](const ScheduleConfig&) { return Json::object(); }}},
      {ScheduleKind::step,
       {{{"step_size", 10}},
        [](const ScheduleConfig& d) {
          return Json{{"gamma", d.gamma}};
        }}},
      // torch's ExponentialLR has no default gamma, and neither has qkv.
      {ScheduleKind::exponential,
       {{{"gamma", 0.99}}, [](const ScheduleConfig&) { return Json::object(); }}},
      {ScheduleKind::cosine,
       {Json::object(),
        [](const ScheduleConfig& d) {
          return Json{{"t_max", d.t_max}, {"eta_min", d.eta_min}};
        }}},
      {ScheduleKind::inverse_sqrt,
       {Json::object(),
        [](const ScheduleConfig& d) {
          return Json{{"timescale", d.timescale}};
        }}},
      {ScheduleKind::noam,
       {{{"d_model", 64}},
        [](const ScheduleConfig& d) {
          return Json{{"factor", d.factor}};
        }}},
  };
  return c;
}

TEST_SUITE("tools/config_defaults") {
  TEST_CASE("the train section and the top level resolve to TrainConfig's and ExperimentConfig's") {
    const runner::ExperimentConfig c = parse_train(Json());
    const runner::TrainConfig t;
    const runner::ExperimentConfig e;
    const Json train = {{"optimizer", Json::object()},  // below
                        {"schedule", Json::object()},
                        {"clip_norm", t.clip_norm},
                        {"batch_size", t.batch_size},
                        {"epochs", t.epochs},
                        {"steps", t.steps},
                        {"eval_every", t.eval_every},
                        {"eval_samples", t.eval_samples},
                        // patience resolves to 0 while early stopping is off (no metric)
                        {"early_stopping", {{"metric", t.early_stopping.metric}, {"patience", 0}}},
                        {"target", {{"metric", t.target.metric}}},
                        {"log_every", t.log_every},
                        {"beam", t.beam}};
    Json resolved = c.resolved["train"];
    resolved.erase("optimizer");
    resolved.erase("schedule");
    Json want = train;
    want.erase("optimizer");
    want.erase("schedule");
    test::check_defaults(resolved, Json::object(), want, "train");
    const Json top = {{"name", "x"},  // the file's stem
                      {"comment", e.comment},
                      {"expected", e.expected},
                      {"seed", e.seed},
                      {"threads", e.threads},
                      {"output", "runs/x"},  // runs/<name>
                      {"train", c.resolved["train"]}};
    test::check_defaults(c.resolved, {{"data", c.data}, {"model", c.model}}, top, "config");

    // With early stopping on, patience takes TrainConfig's default.
    const auto on = parse_train({{"early_stopping", {{"metric", "loss"}}}});
    CHECK(on.train.early_stopping.patience == t.early_stopping.patience);
    CHECK(on.resolved["train"]["early_stopping"]["patience"] == t.early_stopping.patience);
  }

  TEST_CASE("every optimizer type resolves to its nn options struct's defaults") {
    for (const auto& n : enum_names(OptimizerType{})) {
      CAPTURE(std::string(n.name));
      auto it = optimizer_cases().find(n.value);
      REQUIRE_MESSAGE(it != optimizer_cases().end(), std::string(n.name),
                      " has no entry in optimizer_cases()");
      const Json given = {{"type", n.name}};
      const auto c = parse_train({{"optimizer", given}});
      test::check_defaults(c.resolved["train"]["optimizer"], given, it->second(),
                           "train.optimizer");
    }
    CHECK(OptimizerConfig{}.type == OptimizerType::adam);
    CHECK(parse_train(Json()).resolved["train"]["optimizer"]["type"] == "adam");
  }

  TEST_CASE("every schedule type resolves to ScheduleConfig's defaults") {
    const ScheduleConfig d;
    for (const auto& n : enum_names(ScheduleKind{})) {
      CAPTURE(std::string(n.name));
      auto it = schedule_cases().find(n.value);
      REQUIRE_MESSAGE(it != schedule_cases().end(), std::string(n.name),
                      " has no entry in schedule_cases()");
      Json given = it->second.required;
      given["type"] = n.name;
      const auto c = parse_train({{"schedule", given}, {"steps", 100}});
      Json want = it->second.own(d);
      want["warmup"] = d.warmup;
      want["warmup_start"] = d.warmup_start;
      test::check_defaults(c.resolved["train"]["schedule"], given, want, "train.schedule");
      // The schedule is made from the resolved values.
      CHECK(runner::make_schedule(c.train.schedule, 0.1, 100).kind() == n.value);
    }
    CHECK(ScheduleConfig{}.type == ScheduleKind::constant);
    CHECK(test::error_of([] {
            parse_train({{"schedule", {{"type", "exponential"}}}});
          }) == "train.schedule.gamma: missing (required)");
  }

  TEST_CASE("the README's table of schedule keys states ScheduleConfig's defaults") {
    const std::string readme = test::read_text(test::fixture_path("../../README.md"));
    REQUIRE(!readme.empty());
    const ScheduleConfig d;
    auto num = [](double x) {
      std::ostringstream o;
      o << x;
      return o.str();
    };
    for (const std::string& s :
         {"`warmup` (" + num(d.warmup) + " steps", "`warmup_start` (" + num(d.warmup_start),
          "`gamma` (" + num(d.gamma) + ", as StepLR)", "`t_max` (" + num(d.t_max),
          "`eta_min` (" + num(d.eta_min) + ")", "`timescale` (" + num(d.timescale) + ")",
          "`factor` (" + num(d.factor) + ")", std::string("`gamma` (required")})
      CHECK_MESSAGE(readme.find(s) != std::string::npos, "README.md lacks: ", s);
  }

  // ---- data sets ------------------------------------------------------------------

  Json split_defaults(const data::SplitSizes& n) {
    return {{"train", n.train}, {"valid", n.valid}, {"test", n.test}};
  }

  TEST_CASE("every data set resolves to its options struct's defaults") {
    test::TempDir dir;
    test::write_text(dir / "classes/pos.txt", "good\nfine\ngreat\nnice\nwell\n");
    test::write_text(dir / "classes/neg.txt", "bad\npoor\nawful\nugly\nill\n");
    std::string text;
    for (int i = 0; i < 200; ++i) text += "the quick brown fox jumps over the lazy dog. ";
    test::write_text(dir / "lm.txt", text);
    std::string pairs, cmu = "MNCL\n";
    for (int i = 0; i < 40; ++i) {
      const std::string w(size_t(1 + i / 26), char('a' + i % 26));
      pairs += w + "\t" + w + w + "\n";
      cmu += "(\"" + w + "\" nil (((" + w.substr(0, 1) + ") 1)))\n";
    }
    test::write_text(dir / "pairs.tsv", pairs);
    test::write_text(dir / "cmu.out", cmu);

    using Want = std::function<Json()>;
    // Each data set's required keys and its defaults; built with make_dataset
    // when that is cheap, else read by its options reader alone.
    struct DataCase {
      Json required;
      Want defaults;
      // Built with make_dataset when null, else read by this options reader alone.
      std::function<void(JsonReader&)> read_options = nullptr;
    };
    const std::map<std::string, DataCase> cases = {
        {"dates",
         {Json::object(),
          [] {
            Json j = split_defaults(data::DatesOptions{}.n);
            j["formats"] = data::date_format_names();  // empty: all of them
            return j;
          }}},
        {"addition",
         {Json::object(),
          [] {
            const data::AdditionOptions d;
            Json j = split_defaults(d.n);
            j["digits"] = d.digits;
            j["reverse_source"] = d.reverse_source;
            return j;
          }}},
        {"sequence",
         {Json::object(),
          [] {
            const data::SequenceOptions d;
            Json j = split_defaults(d.n);
            j["task"] = d.task;
            j["min_len"] = d.min_len;
            j["max_len"] = d.max_len;
            j["symbols"] = d.symbols;
            return j;
          }}},
        {"fashion-mnist",
         {Json::object(),
          [] {
            const data::FashionMnistOptions d;
            return Json{{"dir", d.dir}, {"valid", d.valid}, {"limit", d.limit}};
          },
          [](JsonReader& r) { data::fashion_mnist_options(r); }}},
        {"pairs",
         {{{"file", dir / "pairs.tsv"}},
          [] {
            const data::PairsOptions d;
            return Json{{"tokens", d.tokens}, {"valid", d.valid}, {"test", d.test}};
          }}},
        {"g2p",
         {{{"file", dir / "cmu.out"}},
          [] {
            const data::G2pOptions d;
            return Json{{"stress", d.stress},
                        {"phones", enum_name(d.phones)},
                        {"valid", d.valid},
                        {"test", d.test}};
          }}},
        // Its defaults read every installed word list: options only.
        {"language-id",
         {Json::object(),
          [] {
            const data::LanguageIdOptions d;
            return Json{{"dir", d.dir},
                        {"per_class", d.per_class},
                        {"max_len", d.max_len},
                        {"valid", d.valid},
                        {"test", d.test}};
          },
          [](JsonReader& r) { data::language_id_options(r); }}},
        {"text-classification",
         {{{"dir", dir / "classes"}},
          [] {
            const data::TextClassificationOptions d;
            return Json{{"file", d.file},
                        {"tokens", d.tokens},
                        {"max_len", d.max_len},
                        {"min_freq", d.min_freq},
                        {"valid", d.valid},
                        {"test", d.test}};
          }}},
        {"text-lm",
         {{{"files", Json::array({dir / "lm.txt"})}},
          [] {
            const data::TextLmOptions d;
            return Json{
                {"dir", d.dir}, {"seq_len", d.seq_len}, {"valid", d.valid}, {"test", d.test}};
          }}},
    };
    for (const auto& name : data::dataset_names()) {
      CAPTURE(name);
      auto it = cases.find(name);
      REQUIRE_MESSAGE(it != cases.end(), name, " has no entry in the data set cases");
      Json given = it->second.required;
      given["name"] = name;
      Json resolved;
      if (!it->second.read_options) {
        resolved = data::make_dataset(given, 1).resolved;
      } else {
        JsonReader r(given, "data");
        r.get_string("name", "");
        it->second.read_options(r);
        r.finish();
        resolved = r.resolved();
      }
      test::check_defaults(resolved, given, it->second.defaults(), "data");
    }
    CHECK(cases.size() == data::dataset_names().size());
  }
}

}  // namespace
}  // namespace qkv

// Experiment config parsing: every field through a JsonReader, so the resolved
// config (all defaults filled in) comes back for printing and saving.
#include "tools/runner/config.h"

#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace qkv::runner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Every reader passes the config struct's member as the default: the struct is
// the one home of each default (tests/tools/test_config_defaults.cpp checks it).

void parse_sgd(JsonReader& r, SgdOptions& o) {
  o.lr = r.get_number("lr", o.lr, 0, kInf, /*lo_open=*/true);
  o.momentum = r.get_number("momentum", o.momentum, 0, 1);
  o.nesterov = r.get_bool("nesterov", o.nesterov);
  o.weight_decay = r.get_number("weight_decay", o.weight_decay, 0);
}

template <class Options>  // AdamOptions or AdamWOptions
void parse_adam(JsonReader& r, Options& o) {
  o.lr = r.get_number("lr", o.lr, 0, kInf, /*lo_open=*/true);
  o.beta1 = r.get_number("beta1", o.beta1, 0, 0.999999);
  o.beta2 = r.get_number("beta2", o.beta2, 0, 0.999999);
  o.eps = r.get_number("eps", o.eps, 0, kInf, true);
  o.weight_decay = r.get_number("weight_decay", o.weight_decay, 0);
}

OptimizerConfig parse_optimizer(JsonReader& r) {
  OptimizerConfig o;
  o.type = r.get_enum("type", o.type);
  switch (o.type) {
    case OptimizerType::sgd:
      parse_sgd(r, o.sgd);
      break;
    case OptimizerType::adam:
      parse_adam(r, o.adam);
      break;
    case OptimizerType::adamw:
      parse_adam(r, o.adamw);
      break;
  }
  return o;
}

ScheduleConfig parse_schedule(JsonReader& r) {
  using K = ScheduleKind;
  ScheduleConfig s;
  s.type = r.get_enum("type", s.type);
  s.warmup = r.get_int("warmup", s.warmup, 0);
  s.warmup_start = r.get_number("warmup_start", s.warmup_start, 0, 1);
  switch (s.type) {
    case K::constant:
      break;
    case K::step:
      s.step_size = r.require_int("step_size", 1);
      s.gamma = r.get_number("gamma", s.gamma, 0);
      break;
    case K::exponential:
      s.gamma = r.require_number("gamma", 0, kInf, /*lo_open=*/true);
      break;
    case K::cosine:
      s.t_max = r.get_int("t_max", s.t_max, 0);
      s.eta_min = r.get_number("eta_min", s.eta_min, 0);
      break;
    case K::inverse_sqrt:
      s.timescale = r.get_int("timescale", s.timescale, 1);
      break;
    case K::noam:
      s.d_model = r.require_int("d_model", 1);
      s.factor = r.get_number("factor", s.factor, 0, kInf, true);
      break;
  }
  return s;
}

TrainConfig parse_train(JsonReader& r) {
  TrainConfig t;
  JsonReader o = r.child("optimizer");
  t.optimizer = parse_optimizer(o);
  o.finish();
  r.set_child("optimizer", o);
  JsonReader s = r.child("schedule");
  t.schedule = parse_schedule(s);
  s.finish();
  r.set_child("schedule", s);
  t.clip_norm = r.get_number("clip_norm", t.clip_norm, 0);
  t.batch_size = r.get_int("batch_size", t.batch_size, 1, 1 << 20);
  const bool has_epochs = r.has("epochs"), has_steps = r.has("steps");
  check(!(has_epochs && has_steps), r.path_of("steps"),
        ": give train.epochs or train.steps, not both");
  t.epochs = r.get_int("epochs", has_steps ? 0 : t.epochs, has_steps ? 0 : 1, 1 << 20);
  t.steps = r.get_int("steps", t.steps, has_steps ? 1 : 0);
  t.eval_every = r.get_int("eval_every", t.eval_every, 0);
  t.eval_samples = r.get_int("eval_samples", t.eval_samples, 0);
  JsonReader e = r.child("early_stopping");
  EarlyStopping& es = t.early_stopping;
  es.metric = e.get_string("metric", es.metric);
  es.patience = e.get_int("patience", es.metric.empty() ? 0 : es.patience, 0);  // 0 when off
  e.finish();
  r.set_child("early_stopping", e);
  JsonReader g = r.child("target");
  t.target.metric = g.get_string("metric", t.target.metric);
  if (!t.target.metric.empty()) t.target.value = g.get_number("value", t.target.value);
  g.finish();
  r.set_child("target", g);
  t.log_every = r.get_int("log_every", t.log_every, 1);
  t.beam = r.get_int("beam", t.beam, 1, 64);
  return t;
}

Json require_object(JsonReader& r, const std::string& key) {
  const std::string path = r.path_of(key);
  check(r.has(key), path, ": missing (required)");
  Json v = r.get_raw(key);
  check(v.is_object(), path, ": expected an object, got ", v.dump().substr(0, 40));
  return v;
}

}  // namespace

ExperimentConfig parse_config(const Json& root, const std::string& default_name) {
  JsonReader r(root, "");
  ExperimentConfig c;
  c.name = r.get_string("name", default_name);
  check(!c.name.empty() && c.name.find('/') == std::string::npos,
        "name: expected a non-empty name without '/', got \"", c.name, "\"");
  c.comment = r.get_string("comment", c.comment);
  c.expected = r.get_string("expected", c.expected);
  c.seed = uint64_t(r.get_int("seed", int64_t(c.seed), 0));
  c.threads = r.get_int("threads", c.threads, 0, 1024);
  c.output = r.get_string("output", "runs/" + c.name);
  c.data = require_object(r, "data");
  c.model = require_object(r, "model");
  JsonReader t = r.child("train");
  c.train = parse_train(t);
  t.finish();
  r.finish();
  c.resolved = r.resolved();
  c.resolved["data"] = c.data;
  c.resolved["model"] = c.model;
  c.resolved["train"] = t.resolved();
  return c;
}

Json load_config_file(const std::string& path, const std::vector<std::string>& sets) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), path, ": cannot open the config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), path, sets);
}

Json parse_config_text(std::string_view text, const std::string& path,
                       const std::vector<std::string>& sets) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error; out_of_range for a number past double's range
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    std::string what = e.what();
    const auto at = what.find("parse error");
    fail(path, ": not valid JSON: ", at == std::string::npos ? what : what.substr(at));
  }
  check(root.is_object(), path, ": expected a JSON object at the top");
  for (const auto& s : sets) json_set_path(root, s);
  return root;
}

double OptimizerConfig::lr() const {
  switch (type) {
    case OptimizerType::sgd:
      return sgd.lr;
    case OptimizerType::adam:
      return adam.lr;
    case OptimizerType::adamw:
      return adamw.lr;
  }
  return adam.lr;
}

Schedule make_schedule(const ScheduleConfig& s, double lr, int64_t total_steps) {
  using K = ScheduleKind;
  const int64_t body = std::max<int64_t>(1, total_steps - s.warmup);
  Schedule out = Schedule::constant(lr);
  switch (s.type) {
    case K::constant:
      break;
    case K::step:
      out = Schedule::step(lr, s.step_size, s.gamma);
      break;
    case K::exponential:
      out = Schedule::exponential(lr, s.gamma);
      break;
    case K::cosine:
      out = Schedule::cosine(lr, s.t_max ? s.t_max : body, s.eta_min);
      break;
    case K::inverse_sqrt:
      out = Schedule::inverse_sqrt(lr, s.timescale);
      break;
    // noam has its own warmup; the others get a linear one in front when asked.
    case K::noam:
      return Schedule::noam(s.d_model, std::max<int64_t>(1, s.warmup), s.factor);
  }
  if (s.warmup > 0) out = out.with_warmup(s.warmup, s.warmup_start);
  return out;
}

}  // namespace qkv::runner

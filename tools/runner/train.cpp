// The training loop; see train.h for what it guarantees (resume, NaN, SIGINT).
#include "tools/runner/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "autograd/ops.h"
#include "nn/checkpoint.h"
#include "nn/clip.h"
#include "tools/plot.h"
#include "tools/runner/progress.h"

namespace qkv::runner {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Doubles in metadata round-trip exactly.
std::string fmt_double(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// Epoch e's order of the n training examples: a pure function of (seed, e),
// so a resumed run sees the same order without saving it.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  Generator g(seed ^ 0x5eed0fda7a0bde55ull);
  g.set_state(g.seed(), uint64_t(epoch) << 32);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(g.next_below(i + 1))]);
  return p;
}

bool params_finite(const Module& m) {
  for (const auto& [_, v] : m.named_parameters())
    for (float x : v.value())
      if (!std::isfinite(x)) return false;
  return true;
}

// What a checkpoint carries besides the tensors.
struct LoopState {
  int64_t step = 0;
  double best = std::numeric_limits<double>::quiet_NaN();
  int64_t best_step = -1;
  int64_t bad_evals = 0;  // evaluations since the best one (early stopping)
  double seconds = 0;     // training time before this process (resumed runs)
  double loss_sum = 0;    // train losses since the last log line (their mean is logged)
  int64_t loss_n = 0;
};

std::string meta_get(const std::map<std::string, std::string>& m, const std::string& key,
                     const std::string& path) {
  auto it = m.find(key);
  check(it != m.end(), path, ": not a qkv training checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

std::vector<std::vector<plot::Series>> curve_panels(const std::vector<Json>& records,
                                                    const std::vector<std::string>& names) {
  plot::Series train_loss{"train loss", {}, {}};
  std::vector<plot::Series> valid;
  for (const auto& n : names) valid.push_back({"valid " + n, {}, {}});
  for (const auto& r : records) {
    const double x = double(r.value("step", int64_t(0)));
    const std::string split = r.value("split", "");
    auto num = [&](const std::string& k) {
      return r.contains(k) && r[k].is_number() ? r[k].get<double>() : NAN;
    };
    if (split == "train") {
      train_loss.x.push_back(x);
      train_loss.y.push_back(num("loss"));
    } else if (split == "valid" && !r.value("final", false)) {
      for (size_t i = 0; i < names.size(); ++i) {
        valid[i].x.push_back(x);
        valid[i].y.push_back(num(names[i]));
      }
    }
  }
  std::vector<std::vector<plot::Series>> panels(1);
  panels[0].push_back(train_loss);
  std::vector<plot::Series> rates, ppl;
  for (auto& s : valid) {
    if (s.name == "valid loss")
      panels[0].push_back(s);
    else if (s.name == "valid perplexity")
      ppl.push_back(s);
    else
      rates.push_back(s);
  }
  if (!rates.empty()) panels.push_back(rates);
  if (!ppl.empty()) panels.push_back(ppl);
  return panels;
}

class Trainer {
 public:
  Trainer(Experiment& ex, const RunOptions& opt)
      : ex_(ex),
        cfg_(ex.cfg),
        tc_(ex.cfg.train),
        opt_(opt),
        dir_(opt.out_dir.empty() ? ex.cfg.output : opt.out_dir) {}

  TrainResult run();

 private:
  void log_line(const std::string& s) {
    if (!opt_.quiet) progress_->line(s);
  }
  std::map<std::string, std::string> metadata() const;
  void save(const std::string& file);
  // Periodic evaluation after the current step; returns true to stop.
  bool evaluate_now();
  void write_curves();

  Experiment& ex_;
  const ExperimentConfig& cfg_;
  const TrainConfig& tc_;
  RunOptions opt_;
  std::filesystem::path dir_;
  std::unique_ptr<Optimizer> optim_;
  std::unique_ptr<Progress> progress_;
  MetricsLog log_;
  LoopState st_;
  std::string best_metric_;
  int64_t total_ = 0, steps_per_epoch_ = 1;
  int64_t saved_step_ = -1;
  Clock::time_point t0_;
  TrainResult res_;
};

std::map<std::string, std::string> Trainer::metadata() const {
  return {{"qkv.format", kCheckpointFormat},
          {"qkv.step", std::to_string(st_.step)},
          {"qkv.epoch", std::to_string(st_.step / steps_per_epoch_)},
          {"qkv.batch_in_epoch",
           std::to_string(st_.step % steps_per_epoch_)},  // data order: next batch
          {"qkv.gen_seed", std::to_string(ex_.gen->seed())},
          {"qkv.gen_counter", std::to_string(ex_.gen->counter())},
          {"qkv.best", fmt_double(st_.best)},
          {"qkv.best_metric", best_metric_},
          {"qkv.best_step", std::to_string(st_.best_step)},
          {"qkv.bad_evals", std::to_string(st_.bad_evals)},
          {"qkv.train_seconds", fmt_double(st_.seconds + seconds_since(t0_))},
          {"qkv.loss_sum", fmt_double(st_.loss_sum)},
          {"qkv.loss_n", std::to_string(st_.loss_n)},
          {"qkv.config", cfg_.resolved.dump()}};
}

void Trainer::save(const std::string& file) {
  // Never overwrite a good checkpoint with a diverged model.
  check(params_finite(*ex_.model), "train: the parameters hold NaN/Inf at step ", st_.step,
        "; stopped without saving (the last good checkpoint ", (dir_ / file).string(),
        " is intact)");
  save_checkpoint((dir_ / file).string(), *ex_.model, optim_.get(), metadata());
}

void Trainer::write_curves() {
  plot::write_file(
      (dir_ / "curves.svg").string(),
      plot::curves_svg(curve_panels(log_.records(), ex_.task->metric_names()), cfg_.name));
}

bool Trainer::evaluate_now() {
  const Metrics m = evaluate(*ex_.task, *ex_.model, *ex_.data, data::Split::valid, tc_.eval_samples,
                             tc_.batch_size);
  Json rec = {{"step", st_.step}, {"epoch", st_.step / steps_per_epoch_}, {"split", "valid"}};
  rec.update(metrics_json(m));
  rec["seconds"] = st_.seconds + seconds_since(t0_);
  log_.write(rec);
  log_line("eval step " + std::to_string(st_.step) + "  valid " + metrics_text(m));
  for (const auto& [k, v] : m)
    check(k != "loss" || std::isfinite(v), "train: valid loss is ", v, " at step ", st_.step,
          "; stopped (the last good checkpoint ", (dir_ / "model.safetensors").string(),
          " is intact)");
  const double v = metric_value(m, best_metric_);
  bool stop = false;
  if (metric_better(best_metric_, v, st_.best)) {
    st_.best = v;
    st_.best_step = st_.step;
    st_.bad_evals = 0;
    save("best.safetensors");
  } else {
    st_.bad_evals += 1;
    if (tc_.early_stopping.patience > 0 && st_.bad_evals >= tc_.early_stopping.patience) {
      log_line("early stopping: no better " + best_metric_ + " for " +
               std::to_string(st_.bad_evals) + " evaluations");
      stop = true;
    }
  }
  if (!tc_.target.metric.empty()) {
    const double t = metric_value(m, tc_.target.metric);
    const bool reached =
        metric_lower_is_better(tc_.target.metric) ? t <= tc_.target.value : t >= tc_.target.value;
    if (reached) {
      res_.target_reached = true;
      res_.target_step = st_.step;
      log_line("target reached: valid " + tc_.target.metric + " " + std::to_string(t) +
               " at step " + std::to_string(st_.step));
      stop = true;
    }
  }
  save("model.safetensors");
  saved_step_ = st_.step;
  write_curves();
  return stop;
}

TrainResult Trainer::run() {
  std::filesystem::create_directories(dir_);
  const int64_t N = ex_.data->size(data::Split::train), B = tc_.batch_size;
  check(N > 0, "train: the data set has no training examples");
  steps_per_epoch_ = (N + B - 1) / B;
  total_ = tc_.steps > 0 ? tc_.steps : tc_.epochs * steps_per_epoch_;
  best_metric_ = !tc_.early_stopping.metric.empty() ? tc_.early_stopping.metric
                 : !tc_.target.metric.empty()       ? tc_.target.metric
                                                    : "loss";
  const Schedule schedule = make_schedule(tc_.schedule, tc_.optimizer.lr(), total_);
  std::vector<Var> params = ex_.model->parameters();
  optim_ = make_optimizer(tc_.optimizer, params);
  progress_ = std::make_unique<Progress>(opt_.tty, total_, tc_.log_every);
  t0_ = Clock::now();

  if (opt_.resume) {
    const std::string path = (dir_ / "model.safetensors").string();
    check(std::filesystem::exists(path), path, ": no checkpoint to resume from");
    std::map<std::string, std::string> meta;
    try {
      meta = load_checkpoint(path, *ex_.model, optim_.get());
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind(path, 0) == 0) throw;
      fail(path, ": ", what);  // optimizer errors do not name the file
    }
    check(meta_get(meta, "qkv.format", path) == kCheckpointFormat, path,
          ": unknown checkpoint format '", meta_get(meta, "qkv.format", path), "'");
    st_.step = std::stoll(meta_get(meta, "qkv.step", path));
    st_.best = std::stod(meta_get(meta, "qkv.best", path));
    st_.best_step = std::stoll(meta_get(meta, "qkv.best_step", path));
    st_.bad_evals = std::stoll(meta_get(meta, "qkv.bad_evals", path));
    st_.seconds = std::stod(meta_get(meta, "qkv.train_seconds", path));
    st_.loss_sum = std::stod(meta_get(meta, "qkv.loss_sum", path));
    st_.loss_n = std::stoll(meta_get(meta, "qkv.loss_n", path));
    ex_.gen->set_state(std::stoull(meta_get(meta, "qkv.gen_seed", path)),
                       std::stoull(meta_get(meta, "qkv.gen_counter", path)));
    saved_step_ = st_.step;
  }
  plot::write_file((dir_ / "config.json").string(), cfg_.resolved.dump(2) + "\n");
  if (!opt_.quiet) {
    std::fprintf(stderr, "config: %s\n", cfg_.resolved.dump().c_str());
    std::fprintf(stderr, "model: %s, %lld parameters; %lld steps (%lld per epoch)%s\n",
                 ex_.model->describe().c_str(), (long long)ex_.model->num_parameters(),
                 (long long)total_, (long long)steps_per_epoch_,
                 opt_.resume ? (", resuming at step " + std::to_string(st_.step)).c_str() : "");
  }
  log_.open((dir_ / "metrics.jsonl").string(), opt_.resume, st_.step);

  ex_.model->train();
  std::vector<int64_t> order, idx;
  int64_t order_epoch = -1;
  auto t_log = Clock::now();
  int64_t examples_since_log = 0;
  double examples_per_s = 0;
  while (st_.step < total_) {
    if (stop_flag().load()) {
      res_.interrupted = true;
      break;
    }
    const int64_t epoch = st_.step / steps_per_epoch_, pos = st_.step % steps_per_epoch_;
    if (epoch != order_epoch) {
      order = epoch_order(N, cfg_.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t begin = pos * B, end = std::min(N, begin + B);
    idx.assign(order.begin() + begin, order.begin() + end);
    const data::Batch batch = ex_.data->batch(data::Split::train, idx);

    const double lr = schedule.lr_at(st_.step);
    optim_->set_lr(lr);
    const Var loss = ex_.task->loss(batch);
    const double lv = double(loss.item());
    if (!std::isfinite(lv)) {
      tape_clear();
      fail("train: the loss is ",
           std::isnan(lv) ? "NaN"
           : lv > 0       ? "+Inf"
                          : "-Inf",
           " at step ", st_.step + 1, " (epoch ", epoch,
           "); stopped. Lower train.optimizer.lr or set train.clip_norm; the last good checkpoint ",
           saved_step_ >= 0 ? (dir_ / "model.safetensors").string() + " (step " +
                                  std::to_string(saved_step_) + ") is intact"
                            : std::string("was never written"));
    }
    backward(loss);
    if (tc_.clip_norm > 0) clip_grad_norm(params, float(tc_.clip_norm));
    optim_->step();
    optim_->zero_grad();
    st_.step += 1;

    st_.loss_sum += lv;
    st_.loss_n += 1;
    examples_since_log += end - begin;
    const double since = std::chrono::duration<double>(Clock::now() - t_log).count();
    if (since > 0.5 || examples_per_s == 0) {
      examples_per_s = double(examples_since_log) / std::max(since, 1e-9);
      examples_since_log = 0;
      t_log = Clock::now();
    }
    if (!opt_.quiet)
      progress_->update(st_.step, epoch, lv, lr, examples_per_s, st_.seconds + seconds_since(t0_));
    if (st_.step % tc_.log_every == 0 || st_.step == total_) {
      log_.write({{"step", st_.step},
                  {"epoch", epoch},
                  {"split", "train"},
                  {"loss", st_.loss_sum / double(st_.loss_n)},
                  {"lr", lr},
                  {"examples_per_s", examples_per_s},
                  {"seconds", st_.seconds + seconds_since(t0_)}});
      st_.loss_sum = 0;
      st_.loss_n = 0;
    }
    if (opt_.after_step) opt_.after_step(st_.step);
    const bool eval_due =
        tc_.eval_every > 0 ? st_.step % tc_.eval_every == 0 : st_.step % steps_per_epoch_ == 0;
    if ((eval_due || st_.step == total_) && evaluate_now()) break;
  }
  if (!opt_.quiet) progress_->finish();
  res_.train_seconds = st_.seconds + seconds_since(t0_);
  res_.steps = st_.step;
  if (saved_step_ != st_.step) {
    save("model.safetensors");
    saved_step_ = st_.step;
  }
  if (!res_.interrupted) {
    res_.valid = evaluate(*ex_.task, *ex_.model, *ex_.data, data::Split::valid, 0, tc_.batch_size);
    res_.test = evaluate(*ex_.task, *ex_.model, *ex_.data, data::Split::test, 0, tc_.batch_size);
    Json v = {{"step", st_.step}, {"split", "valid"}, {"final", true}};
    v.update(metrics_json(res_.valid));
    log_.write(v);
    Json t = {{"step", st_.step}, {"split", "test"}, {"final", true}};
    t.update(metrics_json(res_.test));
    log_.write(t);
  }
  write_curves();
  res_.summary = {{"name", cfg_.name},
                  {"steps", res_.steps},
                  {"train_seconds", std::round(res_.train_seconds * 1000) / 1000}};
  if (!tc_.target.metric.empty())
    res_.summary["target_step"] = res_.target_reached ? Json(res_.target_step) : Json();
  if (res_.interrupted) res_.summary["interrupted"] = true;
  res_.summary["valid"] = metrics_json(res_.valid);
  res_.summary["test"] = metrics_json(res_.test);
  return res_;
}

}  // namespace

std::atomic<bool>& stop_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c, std::vector<Var> params) {
  switch (c.type) {
    case OptimizerType::sgd:
      return std::make_unique<SGD>(std::move(params), c.sgd);
    case OptimizerType::adam:
      return std::make_unique<Adam>(std::move(params), c.adam);
    case OptimizerType::adamw:
      return std::make_unique<AdamW>(std::move(params), c.adamw);
  }
  fail("make_optimizer: unknown optimizer type ", int(c.type));
}

TrainResult train(Experiment& ex, const RunOptions& opt) { return Trainer(ex, opt).run(); }

}  // namespace qkv::runner

// The training loop; see train.h for what it guarantees (resume, NaN, SIGINT,
// data-parallel over the ranks of dist/).
#include "tools/runner/train.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "autograd/ops.h"
#include "dist/comm.h"
#include "engine/collective.h"
#include "engine/memory.h"
#include "engine/threads.h"
#include "nn/checkpoint.h"
#include "nn/clip.h"
#include "tools/plot.h"
#include "tools/runner/progress.h"
#include "tools/runner/train_state.h"

namespace qkv::runner {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
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

// Examples per second, measured over windows of at least half a second (the
// first update sets it at once, so the display never starts at zero).
class Throughput {
 public:
  double add(int64_t examples) {
    examples_ += examples;
    const double since = seconds_since(t_);
    if (since > 0.5 || per_second_ == 0) {
      per_second_ = double(examples_) / std::max(since, 1e-9);
      examples_ = 0;
      t_ = Clock::now();
    }
    return per_second_;
  }

 private:
  Clock::time_point t_ = Clock::now();
  int64_t examples_ = 0;
  double per_second_ = 0;
};

// Rows [begin, end) of every field a batch defines: views, no copies. The
// padded widths stay the whole batch's, so a slice's tensors are rows of the
// whole's (what example-keyed dropout relies on).
data::Batch batch_rows_of(const data::Batch& b, int64_t begin, int64_t end) {
  data::Batch s;
  s.size = end - begin;
  auto rows = [&](const auto& t) { return t.defined() ? t.narrow_rows(begin, end) : t; };
  s.src = rows(b.src);
  s.src_len = rows(b.src_len);
  s.tgt_in = rows(b.tgt_in);
  s.tgt_out = rows(b.tgt_out);
  s.labels = rows(b.labels);
  s.images = rows(b.images);
  return s;
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

// Refuses an output directory that cannot be created or written to. Writability
// is tried by creating a file: root ignores permission bits, so access() would
// let a run start that cannot save.
void output_dir_check(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec, "train: cannot create the output directory '", dir.string(), "': ", ec.message());
  const std::string probe = (dir / (".write_test." + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    fail("train: the output directory '", dir.string(), "' is not writable: ", std::strerror(err));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

// run() in order: prepare, resume_from_checkpoint, open_outputs, train_loop
// (next_batch, train_step, log_step, evaluate_now), close_loop,
// final_evaluation, summary. train_step is the one update from a batch; every
// file and terminal write goes through the "writes" section.
class Trainer {
 public:
  Trainer(Experiment& ex, const RunOptions& opt)
      : ex_(ex),
        cfg_(ex.cfg),
        tc_(ex.cfg.train),
        opt_(opt),
        dir_(opt.out_dir.empty() ? ex.cfg.output : opt.out_dir),
        ranks_(dist::size()),
        writer_(dist::writer()) {
    if (!writer_) opt_.quiet = true;  // rank 0 alone prints
  }

  TrainResult run();

 private:
  // ---- the run's steps
  void prepare();  // sizes, best metric, schedule, optimizer, clock
  void resume_from_checkpoint();
  void train_loop();
  data::Batch next_batch();  // the batch at st_.step in its epoch's order
  // One update from one batch at learning rate lr; returns the batch's loss.
  double train_step(const data::Batch& batch, double lr);
  // The same over the ranks: this rank's slice forward and backward, the
  // gradients summed over the ranks; returns the whole batch's loss.
  double train_step_ranks(const data::Batch& batch);
  void check_split() const;  // every batch has at least one example per rank
  bool stop_requested() const { return ranks_ > 1 ? stop_seen_ : stop_flag().load(); }
  [[noreturn]] void fail_non_finite(double loss) const;
  void log_step(int64_t epoch, double loss, double lr, double examples_per_s);
  bool eval_due() const;
  bool evaluate_now();  // periodic evaluation after the current step; returns true to stop
  void close_loop();    // after the loop: the result's counters, the last checkpoint
  void final_evaluation();
  Json summary() const;
  double elapsed() const { return st_.train_seconds + seconds_since(t0_); }
  TrainState state_now() const;

  // ---- writes: the files of DIR and the terminal
  void open_outputs();  // DIR, config.json, the config and model lines, metrics.jsonl
  void log_line(const std::string& s) {
    if (!opt_.quiet) progress_->line(s);
  }
  void show_progress(int64_t epoch, double loss, double lr, double examples_per_s) {
    if (!opt_.quiet) progress_->update(st_.step, epoch, loss, lr, examples_per_s, elapsed());
  }
  void end_progress() {
    if (!opt_.quiet) progress_->finish();
  }
  void write_record(const Json& rec) {
    if (writer_) log_.write(rec);
  }
  void save(const std::string& file);
  void write_curves();

  Experiment& ex_;
  const ExperimentConfig& cfg_;
  const TrainConfig& tc_;
  RunOptions opt_;
  std::filesystem::path dir_;
  std::vector<Var> params_;  // the model's, in optimizer order
  std::unique_ptr<Optimizer> optim_;
  Schedule schedule_ = Schedule::constant(0);  // set by prepare()
  std::unique_ptr<Progress> progress_;
  MetricsLog log_;
  // Live: step, best, best_step, bad_evals, loss_sum, loss_n; train_seconds is
  // the time before this process. state_now() fills in the rest when saving.
  TrainState st_;
  std::string best_metric_;
  int64_t total_ = 0, steps_per_epoch_ = 1;
  int64_t saved_step_ = -1;
  std::vector<int64_t> order_, idx_;  // the epoch's order of the training examples; the batch's
  int64_t order_epoch_ = -1;
  Clock::time_point t0_;
  TrainResult res_;
  // ---- data-parallel (ranks_ > 1): rank 0 alone writes
  int ranks_ = 1;
  bool writer_ = true;
  bool stop_seen_ = false;  // some rank saw stop_flag() (exchanged each step)
  Tensor grad_flat_;        // [sum of numels + one has-gradient flag per parameter]
};

TrainResult Trainer::run() {
  output_dir_check(dir_);  // before any training: a run must be able to save what it learns
  prepare();
  if (opt_.resume) resume_from_checkpoint();
  open_outputs();
  train_loop();
  close_loop();
  if (!res_.interrupted) final_evaluation();
  write_curves();
  res_.summary = summary();
  return res_;
}

void Trainer::prepare() {
  const int64_t N = ex_.data->size(data::Split::train), B = tc_.batch_size;
  check(N > 0, "train: the data set has no training examples");
  steps_per_epoch_ = (N + B - 1) / B;
  total_ = tc_.steps > 0 ? tc_.steps : tc_.epochs * steps_per_epoch_;
  best_metric_ = !tc_.early_stopping.metric.empty() ? tc_.early_stopping.metric
                 : !tc_.target.metric.empty()       ? tc_.target.metric
                                                    : "loss";
  schedule_ = make_schedule(tc_.schedule, tc_.optimizer.lr(), total_);
  params_ = ex_.model->parameters();
  optim_ = make_optimizer(tc_.optimizer, params_);
  progress_ = std::make_unique<Progress>(opt_.tty, total_, tc_.log_every);
  if (ranks_ > 1) {
    check_split();
    int64_t n = int64_t(params_.size());
    for (const Var& p : params_) n += p.numel();
    grad_flat_ = Tensor(Shape{n});
  }
  t0_ = Clock::now();
}

void Trainer::check_split() const {
  const int64_t N = ex_.data->size(data::Split::train), B = tc_.batch_size;
  const int64_t smallest = N % B == 0 ? std::min(N, B) : std::min(B, N % B);
  check(smallest >= ranks_, "train: a batch of ", smallest, " examples (train.batch_size ", B, ", ",
        N, " training examples) cannot be split over ", ranks_,
        " ranks; every batch needs at least one example per rank");
}

// Bit for bit: the weights, the optimizer's moments and the model's generator
// come back from the file; the data order and the schedule follow from the step.
void Trainer::resume_from_checkpoint() {
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
  st_ = TrainState::from_metadata(meta, path);
  ex_.gen->set_state(st_.gen_seed, st_.gen_counter);
  saved_step_ = st_.step;
}

void Trainer::train_loop() {
  ex_.model->train();
  Throughput throughput;
  while (st_.step < total_) {
    if (stop_requested()) {
      res_.interrupted = true;
      return;
    }
    const int64_t epoch = st_.step / steps_per_epoch_;
    const data::Batch batch = next_batch();
    const double lr = schedule_.lr_at(st_.step);
    const double lv = train_step(batch, lr);
    st_.step += 1;
    log_step(epoch, lv, lr, throughput.add(int64_t(idx_.size())));
    if (opt_.after_step) opt_.after_step(st_.step);
    if (eval_due() && evaluate_now()) return;
  }
}

data::Batch Trainer::next_batch() {
  const int64_t N = ex_.data->size(data::Split::train), B = tc_.batch_size;
  const int64_t epoch = st_.step / steps_per_epoch_, pos = st_.step % steps_per_epoch_;
  if (epoch != order_epoch_) {
    order_ = epoch_order(N, cfg_.seed, epoch);
    order_epoch_ = epoch;
  }
  const int64_t begin = pos * B, end = std::min(N, begin + B);
  idx_.assign(order_.begin() + begin, order_.begin() + end);
  return ex_.data->batch(data::Split::train, idx_);
}

// Forward, backward, clipping, optimizer step. Over several ranks, the
// gradients are summed over the ranks between backward and clipping.
double Trainer::train_step(const data::Batch& batch, double lr) {
  optim_->set_lr(lr);
  if (ranks_ > 1) {
    const double lv = train_step_ranks(batch);
    if (tc_.clip_norm > 0) clip_grad_norm(params_, float(tc_.clip_norm));  // the global norm
    optim_->step();
    optim_->zero_grad();
    return lv;
  }
  const Var loss = ex_.task->loss(batch);
  const double lv = double(loss.item());
  if (!std::isfinite(lv)) fail_non_finite(lv);
  backward(loss);
  if (tc_.clip_norm > 0) clip_grad_norm(params_, float(tc_.clip_norm));
  optim_->step();
  optim_->zero_grad();
  return lv;
}

// Rank r takes rows [B r / R, B (r+1) / R) of the global batch. Its loss is
// the mean over its slice's loss units, so backward starts from loss *
// local/global units: the sum over the ranks is then the gradient of the
// global batch's mean, uneven slices and padding included (every rank holds
// the global batch, so the global count needs no communication). The scale
// goes in before backward, not after: synchronised BatchNorm's backward mixes
// the ranks' upstream gradients. All gradients travel in one contiguous
// buffer, with one has-gradient flag per parameter (a parameter no rank
// reached keeps no gradient, as in one process).
double Trainer::train_step_ranks(const data::Batch& batch) {
  const int64_t B = batch.size, r = dist::rank();
  const int64_t begin = B * r / ranks_, end = B * (r + 1) / ranks_;
  const data::Batch part = batch_rows_of(batch, begin, end);
  const double w = double(ex_.task->loss_units(part)) / double(ex_.task->loss_units(batch));
  double lv = 0;
  {
    BatchRowsScope rows(begin, end - begin, B);  // dropout keyed by the global example row
    const Var loss = ex_.task->loss(part);
    lv = double(loss.item());
    if (!std::isfinite(lv)) fail_non_finite(lv);
    backward(loss * float(w));
  }
  float* flat = grad_flat_.data();
  const int64_t P = int64_t(params_.size());
  int64_t off = P;
  for (int64_t i = 0; i < P; ++i) {
    const Var& p = params_[size_t(i)];
    flat[i] = p.has_grad() ? 1.f : 0.f;
    if (p.has_grad())
      std::copy(p.grad().begin(), p.grad().end(), flat + off);
    else
      std::fill(flat + off, flat + off + p.numel(), 0.f);
    off += p.numel();
  }
  dist::allreduce_sum(flat, grad_flat_.numel());
  off = P;
  for (int64_t i = 0; i < P; ++i) {
    Var& p = params_[size_t(i)];
    if (flat[i] > 0) p.set_grad(grad_flat_.narrow_rows(off, off + p.numel()).view(p.shape()));
    off += p.numel();
  }
  // The loss of the global batch and the stop flag, in one small exchange.
  double status[2] = {lv * w, stop_flag().load() ? 1.0 : 0.0};
  dist::allreduce_sum(status, 2);
  stop_seen_ = status[1] > 0;
  return status[0];
}

// Nothing is saved after a non-finite loss: the last checkpoint stays the last good one.
void Trainer::fail_non_finite(double loss) const {
  tape_clear();
  fail("train: the loss is ",
       std::isnan(loss) ? "NaN"
       : loss > 0       ? "+Inf"
                        : "-Inf",
       " at step ", st_.step + 1, " (epoch ", st_.step / steps_per_epoch_,
       "); stopped. Lower train.optimizer.lr or set train.clip_norm; the last good checkpoint ",
       saved_step_ >= 0 ? (dir_ / "model.safetensors").string() + " (step " +
                              std::to_string(saved_step_) + ") is intact"
                        : std::string("was never written"));
}

// After each update: the progress display; every log_every steps and at the
// last, a record of the mean train loss since the previous one.
void Trainer::log_step(int64_t epoch, double loss, double lr, double examples_per_s) {
  st_.loss_sum += loss;
  st_.loss_n += 1;
  show_progress(epoch, loss, lr, examples_per_s);
  if (st_.step % tc_.log_every != 0 && st_.step != total_) return;
  write_record({{"step", st_.step},
                {"epoch", epoch},
                {"split", "train"},
                {"loss", st_.loss_sum / double(st_.loss_n)},
                {"lr", lr},
                {"examples_per_s", examples_per_s},
                {"seconds", elapsed()}});
  st_.loss_sum = 0;
  st_.loss_n = 0;
}

// Every eval_every steps (0: every epoch), and after the last step.
bool Trainer::eval_due() const {
  if (st_.step == total_) return true;
  return tc_.eval_every > 0 ? st_.step % tc_.eval_every == 0 : st_.step % steps_per_epoch_ == 0;
}

// Records the valid metrics, keeps the best checkpoint, and decides early
// stopping and the target; saves model.safetensors either way.
bool Trainer::evaluate_now() {
  const Metrics m =
      evaluate(*ex_.task, *ex_.data, data::Split::valid, tc_.eval_samples, tc_.batch_size);
  Json rec = {{"step", st_.step}, {"epoch", st_.step / steps_per_epoch_}, {"split", "valid"}};
  rec.update(metrics_json(m));
  rec["seconds"] = elapsed();
  write_record(rec);
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

void Trainer::close_loop() {
  end_progress();
  res_.train_seconds = elapsed();
  res_.steps = st_.step;
  if (saved_step_ != st_.step) {
    save("model.safetensors");
    saved_step_ = st_.step;
  }
}

// On the whole valid and test splits (not when interrupted).
void Trainer::final_evaluation() {
  res_.valid = evaluate(*ex_.task, *ex_.data, data::Split::valid, 0, tc_.batch_size);
  res_.test = evaluate(*ex_.task, *ex_.data, data::Split::test, 0, tc_.batch_size);
  Json v = {{"step", st_.step}, {"split", "valid"}, {"final", true}};
  v.update(metrics_json(res_.valid));
  write_record(v);
  Json t = {{"step", st_.step}, {"split", "test"}, {"final", true}};
  t.update(metrics_json(res_.test));
  write_record(t);
}

Json Trainer::summary() const {
  Json s = {{"name", cfg_.name},
            {"steps", res_.steps},
            {"train_seconds", std::round(res_.train_seconds * 1000) / 1000}};
  if (!tc_.target.metric.empty())
    s["target_step"] = res_.target_reached ? Json(res_.target_step) : Json();
  if (res_.interrupted) s["interrupted"] = true;
  if (ranks_ > 1) {  // what the gradient all-reduce cost this rank (rank 0 reports)
    const dist::CommStats& c = dist::stats();
    const double steps = double(std::max<int64_t>(1, c.calls));
    s["ranks"] = ranks_;
    s["allreduce_bytes_per_step"] = double(c.bytes) / steps;
    s["allreduce_ms_per_step"] = std::round(c.seconds / steps * 1e6) / 1e3;
    s["allreduce_share"] = std::round(c.seconds / std::max(res_.train_seconds, 1e-9) * 1e4) / 1e4;
  }
  s["valid"] = metrics_json(res_.valid);
  s["test"] = metrics_json(res_.test);
  return s;
}

// The live state with what the loop derives filled in: what a checkpoint holds.
TrainState Trainer::state_now() const {
  TrainState s = st_;
  s.epoch = st_.step / steps_per_epoch_;
  s.batch_in_epoch = st_.step % steps_per_epoch_;  // data order: the next batch
  s.gen_seed = ex_.gen->seed();
  s.gen_counter = ex_.gen->counter();
  s.best_metric = best_metric_;
  s.train_seconds = elapsed();
  s.config = cfg_.resolved.dump();
  return s;
}

// ---- writes ---------------------------------------------------------------------

void Trainer::open_outputs() {
  if (!writer_) return;
  std::filesystem::create_directories(dir_);
  plot::write_file((dir_ / "config.json").string(), cfg_.resolved.dump(2) + "\n");
  if (!opt_.quiet) {
    std::fprintf(stderr, "config: %s\n", cfg_.resolved.dump().c_str());
    std::fprintf(stderr, "layout: %d rank%s x %d thread%s (%d rank%s on this machine)\n", ranks_,
                 ranks_ == 1 ? "" : "s", num_threads(), num_threads() == 1 ? "" : "s",
                 dist::local_size(), dist::local_size() == 1 ? "" : "s");
    std::fprintf(stderr, "model: %s, %lld parameters; %lld steps (%lld per epoch)%s\n",
                 ex_.model->describe().c_str(), (long long)ex_.model->num_parameters(),
                 (long long)total_, (long long)steps_per_epoch_,
                 opt_.resume ? (", resuming at step " + std::to_string(st_.step)).c_str() : "");
  }
  log_.open((dir_ / "metrics.jsonl").string(), opt_.resume, st_.step);
}

void Trainer::save(const std::string& file) {
  if (!writer_) return;
  // Never overwrite a good checkpoint with a diverged model.
  check(params_finite(*ex_.model), "train: the parameters hold NaN/Inf at step ", st_.step,
        "; stopped without saving (the last good checkpoint ", (dir_ / file).string(),
        " is intact)");
  save_checkpoint((dir_ / file).string(), *ex_.model, optim_.get(), state_now().to_metadata());
}

void Trainer::write_curves() {
  if (!writer_) return;
  plot::write_file(
      (dir_ / "curves.svg").string(),
      plot::curves_svg(curve_panels(log_.records(), ex_.task->metric_names()), cfg_.name));
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

TrainResult train(Experiment& ex, const RunOptions& opt) {
  // Allocation failures name the run's batch size, the usual cause.
  const std::string scope =
      "train (train.batch_size = " + std::to_string(ex.cfg.train.batch_size) + ")";
  AllocScope alloc_scope(scope);
  try {
    return Trainer(ex, opt).run();
  } catch (const std::bad_alloc&) {
    fail_out_of_memory(scope);
  }
}

}  // namespace qkv::runner

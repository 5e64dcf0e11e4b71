// SGD, Adam and AdamW: the shared step/state machinery, and per optimizer the
// scalar coefficients of a step; the fused element updates are the kernels of
// engine/kernels/optim.h.
//
// Bit-exactness with torch 1.13 (CPU capability AVX2, GCC) comes from copying
// its op order (the kernels follow torch's fma/rounding per element) and from
// computing every Python-side scalar (1 - beta1, lr / bias_correction1, ...) in
// double, rounded to float once, as here.
#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "engine/kernels/optim.h"
#include "engine/threads.h"
#include "nn/metadata.h"

namespace qkv {

namespace {

// Elements per work item: 16K floats = 64 KB per stream, so Adam's four
// streams of one chunk stay in the 1 MB L2 while it is updated.
constexpr int64_t kChunk = 16384;

// ---- metadata reading ----------------------------------------------------------

const std::string& meta_get(const StateMetadata& meta, const std::string& prefix,
                            const std::string& key, const std::string& who) {
  auto it = meta.find(prefix + key);
  check(it != meta.end(), who, ": metadata key '", prefix + key, "' missing");
  return it->second;
}

// A count (steps, parameters): an unsigned integer that fits int64_t.
int64_t parse_count(const std::string& s, const std::string& key, const std::string& who) {
  const uint64_t n = parse_meta_uint(s, key, who);
  check(n <= uint64_t(INT64_MAX), who, ": metadata '", key, "' is too large: '", s, "'");
  return int64_t(n);
}

double meta_double(const StateMetadata& meta, const std::string& prefix, const char* key,
                   const std::string& who) {
  return parse_meta_double(meta_get(meta, prefix, key, who), prefix + key, who);
}
bool meta_bool(const StateMetadata& meta, const std::string& prefix, const char* key,
               const std::string& who) {
  return parse_meta_bool(meta_get(meta, prefix, key, who), prefix + key, who);
}

void check_lr(double lr, const char* who) {
  check(lr >= 0 && std::isfinite(lr), who, ": lr must be finite and >= 0, got ", lr);
}

}  // namespace

// ---- Optimizer -------------------------------------------------------------------

Optimizer::Optimizer(std::vector<Var> params, double lr, const char* who)
    : params_(std::move(params)), param_steps_(params_.size(), 0), lr_(lr) {
  check(!params_.empty(), who, ": got an empty parameter list");
  std::set<const VarState*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    check(params_[i].defined(), who, ": parameter ", i, " is an undefined Var");
    check(params_[i].is_leaf(), who, ": parameter ", i,
          " is not a leaf (the result of an op): optimize the Var it was computed from");
    check(seen.insert(params_[i].state()).second, who, ": parameter ", i,
          " appears twice in the list");
  }
  check_lr(lr, who);
}

void Optimizer::set_lr(double lr) {
  check_lr(lr, name());
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (Var& p : params_) p.zero_grad();
}

void Optimizer::step() {
  NoGrad no_grad;
  struct Item {
    size_t param;
    int64_t begin, end;
  };
  std::vector<Item> items;
  int64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].has_grad()) continue;  // torch: p.grad is None -> skipped
    ++param_steps_[i];
    prepare(i);
    const int64_t n = params_[i].numel();
    for (int64_t b = 0; b < n; b += kChunk) items.push_back({i, b, std::min(n, b + kChunk)});
    total += n;
  }
  ++step_;
  // Every element is updated by exactly one item, independently of the others:
  // the result is the same for any thread count.
  const int64_t n_items = int64_t(items.size());
  parallel_for(n_items, n_items > 1 ? total : 0,
               [&](int64_t k) { update(items[k].param, items[k].begin, items[k].end); });
}

std::string Optimizer::describe() const {
  std::string s = std::string(name()) + "(lr=" + meta_string(lr_);
  for (const auto& [k, v] : hparams()) s += ", " + k + "=" + v;
  return s + ")";
}

StateTensors Optimizer::state(const std::string& prefix) const {
  StateTensors out;
  // slots() hands out mutable pointers (load_state fills them); only read here.
  for (const Slot& slot : const_cast<Optimizer*>(this)->slots())
    for (size_t i = 0; i < params_.size(); ++i)
      if (param_steps_[i] > 0 && (*slot.tensors)[i].defined())
        out.emplace_back(prefix + slot.key + "." + std::to_string(i), (*slot.tensors)[i]);
  return out;
}

StateMetadata Optimizer::state_metadata(const std::string& prefix) const {
  StateMetadata m;
  m[prefix + "optimizer"] = name();
  m[prefix + "num_params"] = std::to_string(params_.size());
  m[prefix + "step"] = std::to_string(step_);
  std::string steps;
  for (size_t i = 0; i < param_steps_.size(); ++i) {
    if (i) steps += ',';
    steps += std::to_string(param_steps_[i]);
  }
  m[prefix + "param_steps"] = steps;
  m[prefix + "lr"] = meta_string(lr_);
  for (const auto& [k, v] : hparams()) m[prefix + k] = v;
  return m;
}

void Optimizer::load_state(const StateTensors& tensors, const StateMetadata& metadata,
                           const std::string& prefix) {
  std::map<std::string, Tensor> by_name;
  for (const auto& [k, t] : tensors) by_name[k] = t;
  load_state(by_name, metadata, prefix);
}

void Optimizer::load_state(const std::map<std::string, Tensor>& tensors,
                           const StateMetadata& metadata, const std::string& prefix) {
  const std::string who = std::string(name()) + ".load_state";
  const std::string& kind = meta_get(metadata, prefix, "optimizer", who);
  check(kind == name(), who, ": the state is from ", kind, ", not ", name());
  const size_t n = params_.size();
  const int64_t n_saved =
      parse_count(meta_get(metadata, prefix, "num_params", who), prefix + "num_params", who);
  check(n_saved == int64_t(n), who, ": the state has ", n_saved, " parameters, this optimizer ",
        n);
  const int64_t step = parse_count(meta_get(metadata, prefix, "step", who), prefix + "step", who);
  std::vector<int64_t> steps;
  {
    const std::string& s = meta_get(metadata, prefix, "param_steps", who);
    size_t pos = 0;
    while (pos <= s.size() && !s.empty()) {
      size_t comma = std::min(s.find(',', pos), s.size());
      steps.push_back(parse_count(s.substr(pos, comma - pos), prefix + "param_steps", who));
      pos = comma + 1;
    }
    check(steps.size() == n, who, ": metadata '", prefix, "param_steps' has ", steps.size(),
          " counts, expected ", n);
    for (size_t i = 0; i < n; ++i)
      check(steps[i] <= step, who, ": parameter ", i, " took ", steps[i],
            " steps, more than the optimizer's ", step);
  }
  const double lr = meta_double(metadata, prefix, "lr", who);
  check_lr(lr, who.c_str());

  // Hyper-parameters first (amsgrad decides which slots exist), undone on error.
  const StateMetadata backup = state_metadata("");
  std::vector<std::pair<std::vector<Tensor>*, std::vector<Tensor>>> staged;
  try {
    load_hparams(metadata, prefix);
    validate();
    for (const Slot& slot : slots()) {
      std::vector<Tensor> loaded(n);
      for (size_t i = 0; i < n; ++i) {
        if (steps[i] == 0) continue;  // never updated: no state yet
        const std::string key = prefix + slot.key + "." + std::to_string(i);
        auto it = tensors.find(key);
        check(it != tensors.end(), who, ": tensor '", key, "' missing (parameter ", i, " took ",
              steps[i], " steps)");
        check(it->second.shape() == params_[i].shape(), who, ": tensor '", key, "' has shape ",
              it->second.shape(), ", expected ", params_[i].shape(), " (parameter ", i, ")");
        loaded[i] = it->second.clone();
      }
      staged.emplace_back(slot.tensors, std::move(loaded));
    }
  } catch (...) {
    load_hparams(backup, "");
    throw;
  }
  for (auto& [dst, src] : staged) *dst = std::move(src);
  lr_ = lr;
  step_ = step;
  param_steps_ = std::move(steps);
}

// ---- SGD -------------------------------------------------------------------------

SGD::SGD(std::vector<Var> params, SgdOptions opt)
    : Optimizer(std::move(params), opt.lr, "SGD"), opt_(opt), momentum_buffer_(params_.size()) {
  validate();
}

SGD::SGD(std::vector<Var> params, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov)
    : SGD(std::move(params), SgdOptions{lr, momentum, dampening, weight_decay, nesterov}) {}

SgdOptions SGD::options() const {
  SgdOptions o = opt_;
  o.lr = lr_;
  return o;
}

void SGD::validate() const {
  check(opt_.momentum >= 0 && std::isfinite(opt_.momentum),
        "SGD: momentum must be finite and >= 0, got ", opt_.momentum);
  check(std::isfinite(opt_.dampening), "SGD: dampening must be finite, got ", opt_.dampening);
  check(opt_.weight_decay >= 0 && std::isfinite(opt_.weight_decay),
        "SGD: weight_decay must be finite and >= 0, got ", opt_.weight_decay);
  check(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0),
        "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum ", opt_.momentum,
        ", dampening ", opt_.dampening);
}

std::vector<Optimizer::Slot> SGD::slots() {
  if (opt_.momentum == 0) return {};
  return {{"momentum_buffer", &momentum_buffer_}};
}

SGD::Hparams SGD::hparams() const {
  return {{"momentum", meta_string(opt_.momentum)},
          {"dampening", meta_string(opt_.dampening)},
          {"weight_decay", meta_string(opt_.weight_decay)},
          {"nesterov", meta_string(opt_.nesterov)}};
}

void SGD::load_hparams(const StateMetadata& meta, const std::string& prefix) {
  const std::string who = "SGD.load_state";
  opt_.momentum = meta_double(meta, prefix, "momentum", who);
  opt_.dampening = meta_double(meta, prefix, "dampening", who);
  opt_.weight_decay = meta_double(meta, prefix, "weight_decay", who);
  opt_.nesterov = meta_bool(meta, prefix, "nesterov", who);
}

void SGD::prepare(size_t i) {
  // The buffer is born on the parameter's first update, holding d itself.
  if (opt_.momentum != 0 && !momentum_buffer_[i].defined())
    momentum_buffer_[i] = Tensor(params_[i].shape());
}

// d = g + wd*p;  buf = first ? d : momentum*buf + (1-dampening)*d;
// d = nesterov ? d + momentum*buf : buf;  p = p - lr*d.
void SGD::update(size_t i, int64_t begin, int64_t end) {
  SgdStep c;
  c.weight_decay = float(opt_.weight_decay);
  c.momentum = float(opt_.momentum);
  c.one_minus_damp = float(1 - opt_.dampening);
  c.neg_lr = float(-lr_);
  c.first = param_steps_[i] == 1;
  c.nesterov = opt_.nesterov;
  float* buf = opt_.momentum != 0 ? momentum_buffer_[i].data() + begin : nullptr;
  sgd_update(params_[i].value_mut().data() + begin, params_[i].grad().data() + begin, buf,
             end - begin, c);
}

// ---- Adam / AdamW -----------------------------------------------------------------

Adam::Adam(std::vector<Var> params, AdamOptions opt, bool decoupled)
    : Optimizer(std::move(params), opt.lr, decoupled ? "AdamW" : "Adam"),
      opt_(opt),
      decoupled_(decoupled),
      coef_(params_.size()),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()),
      max_exp_avg_sq_(params_.size()) {
  validate();
}

Adam::Adam(std::vector<Var> params, AdamOptions opt) : Adam(std::move(params), opt, false) {}

Adam::Adam(std::vector<Var> params, double lr, std::pair<double, double> betas, double eps,
           double weight_decay, bool amsgrad)
    : Adam(std::move(params), AdamOptions{lr, betas.first, betas.second, eps, weight_decay, amsgrad},
           false) {}

AdamW::AdamW(std::vector<Var> params, AdamWOptions o)
    : Adam(std::move(params), AdamOptions(o), true) {}

AdamW::AdamW(std::vector<Var> params, double lr, std::pair<double, double> betas, double eps,
             double weight_decay, bool amsgrad)
    : Adam(std::move(params), AdamOptions{lr, betas.first, betas.second, eps, weight_decay, amsgrad},
           true) {}

AdamOptions Adam::options() const {
  AdamOptions o = opt_;
  o.lr = lr_;
  return o;
}

void Adam::validate() const {
  const char* who = name();
  check(opt_.beta1 >= 0 && opt_.beta1 < 1, who, ": beta1 must be in [0, 1), got ", opt_.beta1);
  check(opt_.beta2 >= 0 && opt_.beta2 < 1, who, ": beta2 must be in [0, 1), got ", opt_.beta2);
  check(opt_.eps >= 0 && std::isfinite(opt_.eps), who, ": eps must be finite and >= 0, got ",
        opt_.eps);
  check(opt_.weight_decay >= 0 && std::isfinite(opt_.weight_decay), who,
        ": weight_decay must be finite and >= 0, got ", opt_.weight_decay);
}

std::vector<Optimizer::Slot> Adam::slots() {
  std::vector<Slot> s = {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}};
  if (opt_.amsgrad) s.push_back({"max_exp_avg_sq", &max_exp_avg_sq_});
  return s;
}

Adam::Hparams Adam::hparams() const {
  return {{"beta1", meta_string(opt_.beta1)},
          {"beta2", meta_string(opt_.beta2)},
          {"eps", meta_string(opt_.eps)},
          {"weight_decay", meta_string(opt_.weight_decay)},
          {"amsgrad", meta_string(opt_.amsgrad)}};
}

void Adam::load_hparams(const StateMetadata& meta, const std::string& prefix) {
  const std::string who = std::string(name()) + ".load_state";
  opt_.beta1 = meta_double(meta, prefix, "beta1", who);
  opt_.beta2 = meta_double(meta, prefix, "beta2", who);
  opt_.eps = meta_double(meta, prefix, "eps", who);
  opt_.weight_decay = meta_double(meta, prefix, "weight_decay", who);
  opt_.amsgrad = meta_bool(meta, prefix, "amsgrad", who);
}

void Adam::prepare(size_t i) {
  // torch initialises the moments to zeros on the parameter's first update.
  const Shape& s = params_[i].shape();
  if (!exp_avg_[i].defined()) exp_avg_[i] = Tensor::zeros(s);
  if (!exp_avg_sq_[i].defined()) exp_avg_sq_[i] = Tensor::zeros(s);
  if (opt_.amsgrad && !max_exp_avg_sq_[i].defined()) max_exp_avg_sq_[i] = Tensor::zeros(s);
  // The Python side of torch's step, in double, each result rounded to float once.
  const double t = double(param_steps_[i]);
  const double bias_correction1 = 1 - std::pow(opt_.beta1, t);
  const double bias_correction2 = 1 - std::pow(opt_.beta2, t);
  Coef& c = coef_[i];
  c.beta1 = float(opt_.beta1);
  c.one_minus_beta1 = float(1 - opt_.beta1);
  c.beta2 = float(opt_.beta2);
  c.one_minus_beta2 = float(1 - opt_.beta2);
  c.weight_decay = decoupled_ ? 0.f : float(opt_.weight_decay);
  c.decay = decoupled_ ? float(1 - lr_ * opt_.weight_decay) : 1.f;
  c.bc2_sqrt = float(std::sqrt(bias_correction2));
  c.eps = float(opt_.eps);
  c.neg_step_size = float(-(lr_ / bias_correction1));
}

// The element update (torch's op order) is adam_update's (engine/kernels/optim.h).
void Adam::update(size_t i, int64_t begin, int64_t end) {
  float* vmax = opt_.amsgrad ? max_exp_avg_sq_[i].data() + begin : nullptr;
  adam_update(params_[i].value_mut().data() + begin, params_[i].grad().data() + begin,
              exp_avg_[i].data() + begin, exp_avg_sq_[i].data() + begin, vmax, end - begin,
              coef_[i]);
}

}  // namespace qkv

// Learning-rate schedules in closed form; the formulas and their sources are
// in schedule.h beside each constructor.
#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "engine/error.h"

namespace qkv {
namespace {

void check_lr(double lr, const char* who) {
  check(lr >= 0 && std::isfinite(lr), "Schedule::", who, ": lr must be finite and >= 0, got ", lr);
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

Schedule Schedule::constant(double lr) {
  check_lr(lr, "constant");
  Schedule s(Kind::constant);
  s.lr_ = lr;
  return s;
}

Schedule Schedule::step(double lr, int64_t step_size, double gamma) {
  check_lr(lr, "step");
  check(step_size >= 1, "Schedule::step: step_size must be >= 1, got ", step_size);
  check(gamma >= 0 && std::isfinite(gamma), "Schedule::step: gamma must be finite and >= 0, got ",
        gamma);
  Schedule s(Kind::step);
  s.lr_ = lr;
  s.n_ = step_size;
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::exponential(double lr, double gamma) {
  check_lr(lr, "exponential");
  check(gamma > 0 && std::isfinite(gamma),
        "Schedule::exponential: gamma must be finite and > 0, got ", gamma);
  Schedule s(Kind::exponential);
  s.lr_ = lr;
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::cosine(double lr, int64_t t_max, double eta_min) {
  check_lr(lr, "cosine");
  check(t_max >= 1, "Schedule::cosine: t_max must be >= 1, got ", t_max);
  check(eta_min >= 0 && std::isfinite(eta_min),
        "Schedule::cosine: eta_min must be finite and >= 0, got ", eta_min);
  Schedule s(Kind::cosine);
  s.lr_ = lr;
  s.n_ = t_max;
  s.eta_min_ = eta_min;
  return s;
}

Schedule Schedule::inverse_sqrt(double lr, int64_t timescale) {
  check_lr(lr, "inverse_sqrt");
  check(timescale >= 1, "Schedule::inverse_sqrt: timescale must be >= 1, got ", timescale);
  Schedule s(Kind::inverse_sqrt);
  s.lr_ = lr;
  s.n_ = timescale;
  return s;
}

Schedule Schedule::noam(int64_t d_model, int64_t warmup, double factor) {
  check(d_model >= 1, "Schedule::noam: d_model must be >= 1, got ", d_model);
  check(warmup >= 1, "Schedule::noam: warmup must be >= 1, got ", warmup);
  check(factor > 0 && std::isfinite(factor), "Schedule::noam: factor must be finite and > 0, got ",
        factor);
  Schedule s(Kind::noam);
  s.n_ = d_model;
  s.noam_warmup_ = warmup;
  s.factor_ = factor;
  return s;
}

Schedule Schedule::with_warmup(int64_t warmup_steps, double start_factor) const {
  check(warmup_ == 0, "Schedule::with_warmup: ", describe(), " already has a warmup");
  check(warmup_steps >= 1, "Schedule::with_warmup: warmup_steps must be >= 1, got ", warmup_steps);
  check(start_factor >= 0 && start_factor <= 1,
        "Schedule::with_warmup: start_factor must be in [0, 1], got ", start_factor);
  Schedule s = *this;
  s.warmup_ = warmup_steps;
  s.start_factor_ = start_factor;
  return s;
}

double Schedule::base_lr_at(int64_t t) const {
  const double td = double(t);
  switch (kind_) {
    case Kind::constant:
      return lr_;
    case Kind::step:
      return lr_ * std::pow(gamma_, double(t / n_));
    case Kind::exponential:
      return lr_ * std::pow(gamma_, td);
    case Kind::cosine:
      return eta_min_ + (lr_ - eta_min_) * (1 + std::cos(std::numbers::pi * td / double(n_))) / 2;
    case Kind::inverse_sqrt:
      return lr_ * std::sqrt(double(n_) / (td + double(n_)));
    case Kind::noam: {
      const double s = td + 1;
      return factor_ / std::sqrt(double(n_)) *
             std::min(1 / std::sqrt(s), s * std::pow(double(noam_warmup_), -1.5));
    }
  }
  return lr_;
}

double Schedule::lr_at(int64_t t) const {
  check(t >= 0, "Schedule::lr_at: step must be >= 0, got ", t);
  if (t >= warmup_) return base_lr_at(t - warmup_);
  // torch LinearLR: start_factor + (end_factor - start_factor) * t / total_iters.
  return base_lr_at(0) * (start_factor_ + (1 - start_factor_) * double(t) / double(warmup_));
}

std::string Schedule::describe() const {
  std::string s;
  switch (kind_) {
    case Kind::constant:
      s = "constant(lr=" + num(lr_) + ")";
      break;
    case Kind::step:
      s = "step(lr=" + num(lr_) + ", step_size=" + std::to_string(n_) + ", gamma=" + num(gamma_) + ")";
      break;
    case Kind::exponential:
      s = "exponential(lr=" + num(lr_) + ", gamma=" + num(gamma_) + ")";
      break;
    case Kind::cosine:
      s = "cosine(lr=" + num(lr_) + ", t_max=" + std::to_string(n_) + ", eta_min=" + num(eta_min_) +
          ")";
      break;
    case Kind::inverse_sqrt:
      s = "inverse_sqrt(lr=" + num(lr_) + ", timescale=" + std::to_string(n_) + ")";
      break;
    case Kind::noam:
      s = "noam(d_model=" + std::to_string(n_) + ", warmup=" + std::to_string(noam_warmup_) +
          ", factor=" + num(factor_) + ")";
      break;
  }
  if (warmup_ > 0)
    s += " after warmup(" + std::to_string(warmup_) + ", " + num(start_factor_) + ")";
  return s;
}

}  // namespace qkv

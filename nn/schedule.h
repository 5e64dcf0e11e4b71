// Learning-rate schedules: a small value type whose lr_at(t) gives the lr to
// use for update t (t = 0 is the first update), in closed form, so resuming
// from a checkpoint needs only the step count. Each formula names its source;
// tests/nn/test_schedule.cpp holds them against torch.optim.lr_scheduler.
//
//   opt.set_lr(schedule.lr_at(opt.step_count()));  opt.step();
//
// Not here: schedules that react to metrics (ReduceLROnPlateau), restarts,
// one-cycle, per-parameter-group lrs.
#pragma once
#include <cstdint>
#include <string>

#include "nn/enum_names.h"

namespace qkv {

enum class ScheduleKind { constant, step, exponential, cosine, inverse_sqrt, noam };
inline constexpr EnumName<ScheduleKind> kScheduleKindNames[] = {
    {ScheduleKind::constant, "constant"},         {ScheduleKind::step, "step"},
    {ScheduleKind::exponential, "exponential"},   {ScheduleKind::cosine, "cosine"},
    {ScheduleKind::inverse_sqrt, "inverse_sqrt"}, {ScheduleKind::noam, "noam"}};
constexpr std::span<const EnumName<ScheduleKind>> enum_names(ScheduleKind) {
  return kScheduleKindNames;
}

// The constructors take every argument: the defaults of the experiment config
// live in one place, tools/runner/config.h (ScheduleConfig).
class Schedule {
 public:
  using Kind = ScheduleKind;

  // lr
  static Schedule constant(double lr);
  // lr * gamma^floor(t / step_size)                     torch StepLR (closed form)
  static Schedule step(double lr, int64_t step_size, double gamma);
  // lr * gamma^t                                        torch ExponentialLR (closed form)
  static Schedule exponential(double lr, double gamma);
  // eta_min + (lr - eta_min) * (1 + cos(pi * t / t_max)) / 2
  // torch CosineAnnealingLR._get_closed_form_lr (SGDR, Loshchilov & Hutter 2017,
  // eq. 5, no restarts). Past t_max it continues the cosine (rising again), as
  // torch's does; choose t_max = the number of updates.
  static Schedule cosine(double lr, int64_t t_max, double eta_min);
  // lr * sqrt(timescale / (t + timescale)): lr at t = 0, then ~ 1/sqrt(t).
  // with_warmup(W, init/lr) in front of inverse_sqrt(lr, W) is fairseq's
  // inverse_sqrt (lr * sqrt(W / t) for t >= W, linear from init before).
  static Schedule inverse_sqrt(double lr, int64_t timescale);
  // factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), with s = t + 1:
  // Vaswani et al. 2017, eq. 3, whose step number is 1-based (the Annotated
  // Transformer's NoamOpt counts the first update as step 1). The peak,
  // factor * (d_model * warmup)^-0.5, is at t = warmup - 1.
  static Schedule noam(int64_t d_model, int64_t warmup, double factor);

  // Linear warmup in front of this schedule, which then starts from its own
  // t = 0 (torch SequentialLR([LinearLR(start_factor, 1, W), this], [W])):
  //   t <  W: lr_at0 * (start_factor + (1 - start_factor) * t / W)
  //   t >= W: this.lr_at(t - W)
  // with lr_at0 = this.lr_at(0). start_factor in [0, 1]; one warmup per schedule.
  Schedule with_warmup(int64_t warmup_steps, double start_factor) const;

  double lr_at(int64_t t) const;  // t >= 0
  Kind kind() const { return kind_; }
  int64_t warmup_steps() const { return warmup_; }
  std::string describe() const;   // "cosine(lr=0.1, t_max=20, eta_min=0) after warmup(5, 0.1)"

 private:
  explicit Schedule(Kind k) : kind_(k) {}
  double base_lr_at(int64_t t) const;  // without the warmup

  Kind kind_;
  double lr_ = 0;       // constant, step, exponential, cosine, inverse_sqrt
  double gamma_ = 1;    // step, exponential
  double eta_min_ = 0;  // cosine
  double factor_ = 1;   // noam
  int64_t n_ = 1;       // step_size, t_max, timescale, d_model
  int64_t noam_warmup_ = 1;
  int64_t warmup_ = 0;  // with_warmup: 0 = none
  double start_factor_ = 0;
};

}  // namespace qkv

// Optimizers: SGD (momentum, dampening, Nesterov, L2), Adam (L2, AMSGrad) and
// AdamW (decoupled weight decay), reproducing torch.optim 1.13's single-tensor
// code path operation for operation: same float roundings, same FMAs, scalar
// coefficients computed in double and rounded to float where torch does.
//
// Each step updates every parameter that has a gradient in place (one fused
// pass over param, grad and state, threaded over fixed chunks, so the result
// does not depend on the thread count). A parameter without a gradient is
// skipped and, as in torch, its own step count does not advance (Adam's bias
// corrections use the per-parameter count).
//
// State export/import for checkpoints uses torch's state_dict key names with
// the parameter's index: "exp_avg.3", "exp_avg_sq.3", "max_exp_avg_sq.3",
// "momentum_buffer.0"; the metadata carries the optimizer's name, the step
// counts and every hyper-parameter, formatted to round-trip exactly.
//
// Not here: parameter groups (one lr for all parameters), sparse gradients,
// `maximize`, and hyper-parameters that change per parameter.
#pragma once
#include <bit>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "engine/kernels/optim.h"

namespace qkv {

using StateTensors = std::vector<std::pair<std::string, Tensor>>;
using StateMetadata = std::map<std::string, std::string>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (under NoGrad).
  void step();
  // Drops every parameter's gradient (torch's zero_grad(set_to_none=True)).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);                        // lr >= 0, else Error
  int64_t step_count() const { return step_; }   // step() calls so far
  const std::vector<Var>& params() const { return params_; }
  virtual const char* name() const = 0;          // "SGD", "Adam", "AdamW"
  std::string describe() const;                  // "Adam(lr=0.001, beta1=0.9, ...)"

  // ---- checkpoints -----------------------------------------------------------
  // The state tensors ("exp_avg.3", ...), each named prefix + key + "." + index,
  // sharing storage with the optimizer (clone them to keep a snapshot while it
  // trains on). A parameter that has not been updated yet has no entries.
  StateTensors state(const std::string& prefix = "") const;
  // prefix + "optimizer", "num_params", "step", "param_steps" ("5,5,4"), and
  // every hyper-parameter ("lr", "beta1", ..., "amsgrad" = "true").
  StateMetadata state_metadata(const std::string& prefix = "") const;
  // Restores what state()/state_metadata() exported: step counts, the
  // hyper-parameters (as torch's load_state_dict restores param_groups) and
  // copies of the state tensors. Entries not under `prefix`, or not the
  // optimizer's, are ignored (a checkpoint also holds the model). Errors name
  // the missing key or tensor, or the shape found vs the parameter's; on error
  // the optimizer is left unchanged.
  void load_state(const std::map<std::string, Tensor>& tensors, const StateMetadata& metadata,
                  const std::string& prefix = "");
  void load_state(const StateTensors& tensors, const StateMetadata& metadata,
                  const std::string& prefix = "");

 protected:
  Optimizer(std::vector<Var> params, double lr, const char* who);

  // A per-parameter state buffer family, e.g. {"exp_avg", &exp_avg_}.
  struct Slot {
    const char* key;
    std::vector<Tensor>* tensors;  // one per parameter, undefined until first update
  };
  virtual std::vector<Slot> slots() = 0;  // the families in use (amsgrad adds one)
  // Called once per parameter that has a gradient, after its step count
  // advanced: allocate state, compute this step's scalar coefficients.
  virtual void prepare(size_t i) = 0;
  // Updates elements [begin, end) of parameter i; runs on OpenMP threads, must
  // not throw, touches only those elements.
  virtual void update(size_t i, int64_t begin, int64_t end) = 0;
  // Hyper-parameters other than lr (the base handles it), in a fixed order,
  // formatted to round-trip; load_hparams reads them back (unvalidated).
  using Hparams = std::vector<std::pair<std::string, std::string>>;
  virtual Hparams hparams() const = 0;
  virtual void load_hparams(const StateMetadata& meta, const std::string& prefix) = 0;
  virtual void validate() const = 0;  // throws Error naming the optimizer and the field

  std::vector<Var> params_;
  std::vector<int64_t> param_steps_;  // updates each parameter has taken (torch's state['step'])
  double lr_ = 0;
  int64_t step_ = 0;
};

// ---- SGD ---------------------------------------------------------------------
// torch.optim.SGD: d = g + wd*p; with momentum, buf = d on the first step, then
// buf = momentum*buf + (1 - dampening)*d; d = nesterov ? d + momentum*buf : buf;
// p -= lr*d.
struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;      // 0 = plain SGD, no buffer
  double dampening = 0;     // scales the gradient into the buffer by (1 - dampening)
  double weight_decay = 0;  // L2: added to the gradient
  bool nesterov = false;    // needs momentum > 0 and dampening = 0
};

class SGD final : public Optimizer {
 public:
  SGD(std::vector<Var> params, SgdOptions opt);
  SGD(std::vector<Var> params, double lr, double momentum = SgdOptions{}.momentum,
      double dampening = SgdOptions{}.dampening, double weight_decay = SgdOptions{}.weight_decay,
      bool nesterov = SgdOptions{}.nesterov);
  const char* name() const override { return "SGD"; }
  SgdOptions options() const;  // the hyper-parameters in force (lr from lr())

 private:
  std::vector<Slot> slots() override;
  void prepare(size_t i) override;
  void update(size_t i, int64_t begin, int64_t end) override;
  Hparams hparams() const override;
  void load_hparams(const StateMetadata& meta, const std::string& prefix) override;
  void validate() const override;

  SgdOptions opt_;                      // opt_.lr is unused: the base's lr_ rules
  std::vector<Tensor> momentum_buffer_;
};

// ---- Adam and AdamW --------------------------------------------------------------
// torch.optim.Adam (1.13, single tensor), per element, t = the parameter's step:
//   g += wd*p                                   (Adam: L2 in the gradient)
//   p *= 1 - lr*wd                              (AdamW: decoupled, instead)
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  vmax = max(vmax, v) (amsgrad)
//   denom = sqrt(v or vmax) / sqrt(1 - b2^t) + eps
//   p -= lr / (1 - b1^t) * m / denom
//
// Adam's and AdamW's options share their fields and defaults but weight_decay's
// (torch: 0 for Adam, 1e-2 for AdamW), so one template holds them, with that
// default from its parameter; each stays a plain aggregate (AdamWOptions{.lr = 1e-2}).
// The parameter is a type, not the double itself: clang before 18 (Debian's,
// which builds the fuzz targets) takes no floating-point template arguments.
struct AdamDefaults { static constexpr double weight_decay = 0.0; };
struct AdamWDefaults { static constexpr double weight_decay = 1e-2; };
template <class Defaults>
struct AdamFamilyOptions {
  double lr = 1e-3;
  double beta1 = 0.9;                                // first-moment decay, in [0, 1)
  double beta2 = 0.999;                              // second-moment decay, in [0, 1)
  double eps = 1e-8;                                 // added to the bias-corrected sqrt(v)
  double weight_decay = Defaults::weight_decay;      // L2 (Adam) or decoupled (AdamW)
  bool amsgrad = false;                              // normalise by the running max of v

  // The same values as the other family member (AdamW hands its options to Adam).
  template <class D>
  explicit operator AdamFamilyOptions<D>() const {
    return std::bit_cast<AdamFamilyOptions<D>>(*this);  // identical layouts
  }
};
using AdamOptions = AdamFamilyOptions<AdamDefaults>;
using AdamWOptions = AdamFamilyOptions<AdamWDefaults>;

class Adam : public Optimizer {
 public:
  Adam(std::vector<Var> params, AdamOptions opt = {});
  Adam(std::vector<Var> params, double lr,
       std::pair<double, double> betas = {AdamOptions{}.beta1, AdamOptions{}.beta2},
       double eps = AdamOptions{}.eps, double weight_decay = AdamOptions{}.weight_decay,
       bool amsgrad = AdamOptions{}.amsgrad);
  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  AdamOptions options() const;  // the hyper-parameters in force (lr from lr())

 protected:
  Adam(std::vector<Var> params, AdamOptions opt, bool decoupled);

 private:
  // This step's float coefficients for one parameter, rounded as torch rounds them.
  using Coef = AdamStep;

  std::vector<Slot> slots() override;
  void prepare(size_t i) override;
  void update(size_t i, int64_t begin, int64_t end) override;
  Hparams hparams() const override;
  void load_hparams(const StateMetadata& meta, const std::string& prefix) override;
  void validate() const override;

  AdamOptions opt_;                     // opt_.lr is unused: the base's lr_ rules
  bool decoupled_ = false;
  std::vector<Coef> coef_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

// torch.optim.AdamW: Adam whose weight decay shrinks the parameter directly
// (p *= 1 - lr*wd before the update) instead of entering the moments.
class AdamW final : public Adam {
 public:
  AdamW(std::vector<Var> params, AdamWOptions opt = {});
  AdamW(std::vector<Var> params, double lr,
        std::pair<double, double> betas = {AdamWOptions{}.beta1, AdamWOptions{}.beta2},
        double eps = AdamWOptions{}.eps, double weight_decay = AdamWOptions{}.weight_decay,
        bool amsgrad = AdamWOptions{}.amsgrad);
};

}  // namespace qkv

// Optimizers and clipping against torch 1.13 (fixtures from
// tests/fixtures/make_optim.py): every step of SGD (plain, momentum+dampening+
// L2, Nesterov), Adam (plain; L2+AMSGrad+custom betas/eps) and AdamW (default;
// AMSGrad) on params of 7, 33 and [5,17] elements over 5 gradients, one of
// them missing; the final state tensors and per-parameter step counts;
// clip_grad_norm (L2, L1, inf, p=3, no-op) and clip_grad_value. Then what
// torch cannot tell us: AdamW's decoupling, state round trips through a
// safetensors checkpoint, load errors, hyper-parameter errors, thread-count
// independence.
#include "nn/optim.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/threads.h"
#include "nn/clip.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

std::string fixture(const std::string& name) { return test::fixture_path("optim/" + name); }

const TensorFile& inputs() {
  static const TensorFile f = load_safetensors(fixture("inputs.safetensors"));
  return f;
}

constexpr int kParams = 3, kSteps = 5;

const Tensor& get(const TensorFile& f, const std::string& name) {
  auto it = f.floats.find(name);
  INFO("fixture tensor ", name);
  REQUIRE(it != f.floats.end());
  return it->second;
}

std::vector<Var> fresh_params() {
  std::vector<Var> ps;
  for (int i = 0; i < kParams; ++i)
    ps.emplace_back(get(inputs(), "param.init." + std::to_string(i)).clone(), true);
  return ps;
}

// Gradients of fixture step s (param 1 has none at step 2), as fresh buffers.
void set_grads(std::vector<Var>& ps, int s) {
  for (int i = 0; i < kParams; ++i) {
    auto it = inputs().floats.find("grad." + std::to_string(s) + "." + std::to_string(i));
    if (it == inputs().floats.end())
      ps[i].zero_grad();
    else
      ps[i].set_grad(it->second.clone());
  }
}

int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;  // monotone integer order across the sign
  if (ib < 0) ib = INT32_MIN - ib;
  return std::llabs(int64_t(ia) - int64_t(ib));
}

int64_t max_ulps(const Tensor& got, const Tensor& want) {
  int64_t m = 0;
  for (int64_t k = 0; k < got.numel(); ++k) m = std::max(m, ulps(got.data()[k], want.data()[k]));
  return m;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * 4) == 0;
}

// Tolerance vs torch: qkv repeats torch's float operations, FMAs included
// (std::fma lane by lane where the CPU has no FMA), so the results are
// bit-identical on the native and the portable build alike. kRelTol is the
// contract; kMaxUlps = 0 is what is achieved and guards the op order.
constexpr int64_t kMaxUlps = 0;
constexpr double kRelTol = 1e-6;

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Var>)>;

struct Case {
  const char* name;
  Factory make;
};

// The same hyper-parameters as OPTIM_CASES in make_optim.py.
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"sgd", [](std::vector<Var> p) { return std::make_unique<SGD>(std::move(p), 0.1); }},
      {"sgd_momentum",
       [](std::vector<Var> p) { return std::make_unique<SGD>(std::move(p), 0.1, 0.9, 0.1, 0.01); }},
      {"sgd_nesterov",
       [](std::vector<Var> p) {
         return std::make_unique<SGD>(std::move(p), SgdOptions{.lr = 0.1, .momentum = 0.9,
                                                               .weight_decay = 0.01,
                                                               .nesterov = true});
       }},
      {"adam", [](std::vector<Var> p) { return std::make_unique<Adam>(std::move(p), 1e-2); }},
      {"adam_wd_amsgrad",
       [](std::vector<Var> p) {
         return std::make_unique<Adam>(std::move(p), 1e-2, std::pair{0.8, 0.99}, 1e-6, 0.1, true);
       }},
      {"adamw",
       [](std::vector<Var> p) { return std::make_unique<AdamW>(std::move(p), AdamWOptions{.lr = 1e-2}); }},
      {"adamw_amsgrad",
       [](std::vector<Var> p) {
         return std::make_unique<AdamW>(std::move(p),
                                        AdamWOptions{.lr = 1e-2, .weight_decay = 0.1, .amsgrad = true});
       }},
  };
  return c;
}

// Runs steps [from, to) of the fixture gradients.
void run(Optimizer& opt, std::vector<Var>& ps, int from, int to) {
  for (int s = from; s < to; ++s) {
    set_grads(ps, s);
    opt.step();
  }
}

TEST_SUITE("nn/optim") {
  TEST_CASE("every step of every optimizer matches torch 1.13") {
    for (const Case& c : cases()) {
      CAPTURE(c.name);
      const TensorFile want = load_safetensors(fixture(std::string(c.name) + ".safetensors"));
      std::vector<Var> ps = fresh_params();
      auto opt = c.make(ps);
      for (int s = 0; s < kSteps; ++s) {
        set_grads(ps, s);
        opt->step();
        for (int i = 0; i < kParams; ++i) {
          const std::string key = "param." + std::to_string(s) + "." + std::to_string(i);
          const Tensor& w = get(want, key);
          test::expect_close(ps[i].value(), w, kRelTol, std::string(c.name) + " " + key);
          INFO(c.name, " ", key);
          CHECK(max_ulps(ps[i].value(), w) <= kMaxUlps);
        }
      }
      CHECK(opt->step_count() == kSteps);
      // Final state under torch's state_dict names, and torch's per-parameter steps.
      const StateTensors state = opt->state();
      int n_torch_state = 0;
      for (const auto& [k, t] : want.floats) n_torch_state += k.rfind("state.", 0) == 0;
      CHECK(int(state.size()) == n_torch_state);
      for (const auto& [k, t] : state) {
        const Tensor& w = get(want, "state." + k);
        test::expect_close(t, w, kRelTol, std::string(c.name) + " state." + k);
        INFO(c.name, " state.", k);
        CHECK(max_ulps(t, w) <= kMaxUlps);
      }
      if (want.metadata.count("step.0"))  // torch's SGD keeps no step count
        CHECK(opt->state_metadata().at("param_steps") ==
              want.metadata.at("step.0") + "," + want.metadata.at("step.1") + "," +
                  want.metadata.at("step.2"));
    }
  }

  TEST_CASE("a parameter without a gradient is left alone and its step count waits") {
    std::vector<Var> ps = fresh_params();
    Adam opt(ps, 1e-2);
    run(opt, ps, 0, 3);  // param 1 has no gradient at step 2
    const Tensor before = ps[1].value().clone();
    ps[0].zero_grad();
    ps[1].zero_grad();
    ps[2].zero_grad();
    opt.step();
    CHECK(same_bits(ps[1].value(), before));
    CHECK(opt.state_metadata().at("param_steps") == "3,2,3");
    CHECK(opt.step_count() == 4);
  }

  TEST_CASE("zero_grad drops every gradient; lr and set_lr") {
    std::vector<Var> ps = fresh_params();
    SGD opt(ps, 0.5);
    set_grads(ps, 0);
    opt.zero_grad();
    for (const Var& p : ps) CHECK(!p.has_grad());
    CHECK(opt.lr() == 0.5);
    opt.set_lr(0.25);
    CHECK(opt.lr() == 0.25);
    CHECK(opt.options().lr == 0.25);
    CHECK(test::error_of([&] { opt.set_lr(-1); }) == "SGD: lr must be finite and >= 0, got -1");
    CHECK(opt.describe() == "SGD(lr=0.25, momentum=0, dampening=0, weight_decay=0, nesterov=false)");
    Adam adam(ps, AdamOptions{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.1 + 0.2});
    CHECK(adam.describe() ==
          "Adam(lr=0.001, beta1=0.9, beta2=0.30000000000000004, eps=1e-08, weight_decay=0, amsgrad=false)");
  }

  TEST_CASE("AdamW decouples weight decay: it is not Adam with L2") {
    // Decoupled: one AdamW step == the plain Adam step applied to p * (1 - lr*wd),
    // bit for bit, because Adam's update does not read p.
    const double lr = 1e-2, wd = 0.1;
    std::vector<Var> pw = fresh_params(), pa = fresh_params(), pl = fresh_params();
    AdamW adamw(pw, lr, {0.9, 0.999}, 1e-8, wd);
    Adam adam(pa, lr);
    Adam adam_l2(pl, lr, {0.9, 0.999}, 1e-8, wd);
    for (int s = 0; s < kSteps; ++s) {
      set_grads(pw, s);
      set_grads(pa, s);
      set_grads(pl, s);
      for (Var& p : pa) {  // pre-shrink what plain Adam starts from (where it steps)
        if (!p.has_grad()) continue;
        Tensor v = p.value_mut();
        for (float& x : v) x *= float(1 - lr * wd);
      }
      adamw.step();
      adam.step();
      adam_l2.step();
      for (int i = 0; i < kParams; ++i) {
        CAPTURE(s);
        CAPTURE(i);
        CHECK(same_bits(pw[i].value(), pa[i].value()));
        // Adam+L2 folds wd*p into the moments: a different trajectory.
        CHECK(test::diff(pw[i].value().data(), pl[i].value().data(), pw[i].numel()).max_abs > 1e-4);
      }
    }
    // With wd = 0 the two are the same optimizer.
    std::vector<Var> p0 = fresh_params(), p1 = fresh_params();
    AdamW w0(p0, AdamWOptions{.lr = lr, .weight_decay = 0});
    Adam a0(p1, AdamOptions{.lr = lr});
    run(w0, p0, 0, kSteps);
    run(a0, p1, 0, kSteps);
    for (int i = 0; i < kParams; ++i) CHECK(same_bits(p0[i].value(), p1[i].value()));
  }

  TEST_CASE("state round trip: 3 steps, checkpoint, new optimizer, 2 steps == 5 steps") {
    for (const Case& c : cases()) {
      CAPTURE(c.name);
      std::vector<Var> straight = fresh_params();
      auto a = c.make(straight);
      run(*a, straight, 0, kSteps);

      std::vector<Var> ps = fresh_params();
      auto b = c.make(ps);
      run(*b, ps, 0, 3);
      // Through the real checkpoint path: model and optimizer in one file.
      TensorFile file;
      for (int i = 0; i < kParams; ++i) file.floats["model.p" + std::to_string(i)] = ps[i].value();
      for (const auto& [k, t] : b->state("optim.")) file.floats[k] = t;
      file.metadata = b->state_metadata("optim.");
      file.metadata["epoch"] = "7";  // foreign entries are ignored
      const TensorFile back = parse_safetensors(serialize_safetensors(file), "ckpt");

      std::vector<Var> resumed;
      for (int i = 0; i < kParams; ++i)
        resumed.emplace_back(get(back, "model.p" + std::to_string(i)).clone(), true);
      // Built with other hyper-parameters: load_state restores the saved ones.
      std::unique_ptr<Optimizer> r;
      if (std::string(b->name()) == "SGD")
        r = std::make_unique<SGD>(resumed, 3.0);
      else if (std::string(b->name()) == "Adam")
        r = std::make_unique<Adam>(resumed, 3.0);
      else
        r = std::make_unique<AdamW>(resumed, 3.0);
      r->load_state(back.floats, back.metadata, "optim.");
      CHECK(r->describe() == b->describe());
      CHECK(r->step_count() == 3);
      run(*r, resumed, 3, kSteps);
      for (int i = 0; i < kParams; ++i) CHECK(same_bits(resumed[i].value(), straight[i].value()));
      // load_state copies: the source optimizer's buffers are not shared.
      for (const auto& [k, t] : r->state())
        for (const auto& [k2, t2] : b->state()) CHECK(!t.shares_storage(t2));
    }
  }

  TEST_CASE("load_state errors name the problem and leave the optimizer unchanged") {
    std::vector<Var> ps = fresh_params();
    Adam src(ps, AdamOptions{.lr = 1e-2, .amsgrad = true});
    run(src, ps, 0, 3);
    const StateTensors tensors = src.state();
    const StateMetadata meta = src.state_metadata();
    auto as_map = [&] {
      std::map<std::string, Tensor> m;
      for (const auto& [k, t] : tensors) m[k] = t;
      return m;
    };

    std::vector<Var> qs = fresh_params();
    Adam dst(qs, 1e-3);
    const std::string before = dst.describe();
    auto load = [&](std::map<std::string, Tensor> t, StateMetadata m) {
      return test::error_of([&] { dst.load_state(t, m); });
    };

    auto t = as_map();
    t.erase("exp_avg_sq.1");
    CHECK(load(t, meta) == "Adam.load_state: tensor 'exp_avg_sq.1' missing (parameter 1 took 2 steps)");
    t = as_map();
    t.erase("max_exp_avg_sq.0");  // exists only because the saved state says amsgrad
    CHECK(load(t, meta) ==
          "Adam.load_state: tensor 'max_exp_avg_sq.0' missing (parameter 0 took 3 steps)");
    t = as_map();
    t["exp_avg.2"] = Tensor::zeros({5, 16});
    CHECK(load(t, meta) ==
          "Adam.load_state: tensor 'exp_avg.2' has shape [5,16], expected [5,17] (parameter 2)");
    StateMetadata m = meta;
    m.erase("beta2");
    CHECK(load(as_map(), m) == "Adam.load_state: metadata key 'beta2' missing");
    m = meta;
    m["beta1"] = "1.5";
    CHECK(load(as_map(), m) == "Adam: beta1 must be in [0, 1), got 1.5");
    m = meta;
    m["eps"] = "tiny";
    CHECK(load(as_map(), m) == "Adam.load_state: metadata 'eps' is not a number: 'tiny'");
    m = meta;
    m["optimizer"] = "AdamW";
    CHECK(load(as_map(), m) == "Adam.load_state: the state is from AdamW, not Adam");
    m = meta;
    m["num_params"] = "4";
    CHECK(load(as_map(), m) == "Adam.load_state: the state has 4 parameters, this optimizer 3");
    m = meta;
    m["param_steps"] = "3,2";
    CHECK(load(as_map(), m) == "Adam.load_state: metadata 'param_steps' has 2 counts, expected 3");
    m = meta;
    m["param_steps"] = "3,9,3";
    CHECK(load(as_map(), m) ==
          "Adam.load_state: parameter 1 took 9 steps, more than the optimizer's 3");
    m = meta;
    m["amsgrad"] = "yes";
    CHECK(load(as_map(), m) == "Adam.load_state: metadata 'amsgrad' is not true/false: 'yes'");
    // Nothing stuck: same hyper-parameters, no state, step 0.
    CHECK(dst.describe() == before);
    CHECK(dst.state().empty());
    CHECK(dst.step_count() == 0);
    // And the good state loads.
    dst.load_state(tensors, meta);
    CHECK(dst.describe() == src.describe());
    CHECK(dst.state().size() == tensors.size());

    // SGD: the momentum buffer is required once a parameter has moved.
    std::vector<Var> rs = fresh_params();
    SGD plain(rs, 0.1);
    run(plain, rs, 0, 1);
    StateMetadata sm = plain.state_metadata();
    CHECK(plain.state().empty());
    sm["momentum"] = "0.9";
    CHECK(test::error_of([&] { plain.load_state(StateTensors{}, sm); }) ==
          "SGD.load_state: tensor 'momentum_buffer.0' missing (parameter 0 took 1 steps)");
    CHECK(plain.options().momentum == 0);
  }

  TEST_CASE("hyper-parameter errors name the optimizer and the field") {
    auto ps = [] { return fresh_params(); };
    auto e = [](const std::function<void()>& f) { return test::error_of(f); };
    CHECK(e([&] { SGD(ps(), -0.1); }) == "SGD: lr must be finite and >= 0, got -0.1");
    CHECK(e([&] { SGD(ps(), NAN); }) == "SGD: lr must be finite and >= 0, got nan");
    CHECK(e([&] { SGD(ps(), 0.1, -0.5); }) == "SGD: momentum must be finite and >= 0, got -0.5");
    CHECK(e([&] { SGD(ps(), 0.1, 0.9, 0, -1); }) ==
          "SGD: weight_decay must be finite and >= 0, got -1");
    CHECK(e([&] { SGD(ps(), 0.1, 0, 0, 0, true); }) ==
          "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum 0, dampening 0");
    CHECK(e([&] { SGD(ps(), 0.1, 0.9, 0.1, 0, true); }) ==
          "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum 0.9, dampening 0.1");
    CHECK(e([&] { Adam(ps(), -1e-3); }) == "Adam: lr must be finite and >= 0, got -0.001");
    CHECK(e([&] { Adam(ps(), 1e-3, {1.0, 0.999}); }) == "Adam: beta1 must be in [0, 1), got 1");
    CHECK(e([&] { Adam(ps(), 1e-3, {0.9, -0.1}); }) == "Adam: beta2 must be in [0, 1), got -0.1");
    CHECK(e([&] { Adam(ps(), 1e-3, {0.9, 0.999}, -1e-8); }) ==
          "Adam: eps must be finite and >= 0, got -1e-08");
    CHECK(e([&] { Adam(ps(), AdamOptions{.weight_decay = -0.01}); }) ==
          "Adam: weight_decay must be finite and >= 0, got -0.01");
    CHECK(e([&] { AdamW(ps(), 1e-3, {0.9, 1.0}); }) == "AdamW: beta2 must be in [0, 1), got 1");
    CHECK(e([&] { Adam(std::vector<Var>{}); }) == "Adam: got an empty parameter list");
    std::vector<Var> p = ps();
    CHECK(e([&] { SGD({p[0], p[1], p[0]}, 0.1); }) == "SGD: parameter 2 appears twice in the list");
    CHECK(e([&] { SGD({p[0], Var()}, 0.1); }) == "SGD: parameter 1 is an undefined Var");
    // Defaults as torch's.
    const AdamOptions ad = Adam(ps()).options();
    CHECK((ad.lr == 1e-3 && ad.beta1 == 0.9 && ad.beta2 == 0.999 && ad.eps == 1e-8 &&
           ad.weight_decay == 0 && !ad.amsgrad));
    CHECK(AdamW(ps()).options().weight_decay == 1e-2);
    CHECK(std::string(AdamW(ps()).name()) == "AdamW");
  }

  TEST_CASE("large parameters: same bits for 1 and 2 threads, and as small pieces") {
    // 100,003 elements = 7 chunks with a ragged end: the threaded path.
    const int64_t n = 100003;
    const Tensor p0 = test::rand_tensor({n}, 1), g0 = test::rand_tensor({n}, 2);
    const int saved = num_threads();
    std::vector<Tensor> results;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<Var> ps = {Var(p0.clone(), true)};
      AdamW opt(ps, AdamWOptions{.lr = 1e-2, .amsgrad = true});
      for (int s = 0; s < 3; ++s) {
        ps[0].set_grad(g0.clone());
        opt.step();
      }
      results.push_back(ps[0].value());
    }
    set_num_threads(saved);
    CHECK(same_bits(results[0], results[1]));
    // The same elements updated as 3 small parameters give the same bits.
    std::vector<Var> pieces;
    const int64_t cut[] = {0, 17, 50000, n};
    for (int k = 0; k < 3; ++k) pieces.emplace_back(slice(p0, 0, cut[k], cut[k + 1]), true);
    AdamW opt(pieces, AdamWOptions{.lr = 1e-2, .amsgrad = true});
    for (int s = 0; s < 3; ++s) {
      for (int k = 0; k < 3; ++k) pieces[k].set_grad(slice(g0, 0, cut[k], cut[k + 1]));
      opt.step();
    }
    for (int k = 0; k < 3; ++k)
      CHECK(same_bits(pieces[k].value(), slice(results[0], 0, cut[k], cut[k + 1])));
  }

  TEST_CASE("clip_grad_norm and clip_grad_value match torch") {
    const TensorFile want = load_safetensors(fixture("clip.safetensors"));
    struct ClipCase {
      const char* name;
      float max_norm, norm_type;
    };
    const ClipCase clip_cases[] = {{"l2", 1.f, 2.f},
                                   {"l2_noclip", 100.f, 2.f},
                                   {"l1", 2.f, 1.f},
                                   {"inf", 0.5f, INFINITY},
                                   {"p3", 1.f, 3.f}};
    auto with_grads = [&] {
      std::vector<Var> ps = fresh_params();
      for (int i = 0; i < kParams; ++i) ps[i].set_grad(get(want, "grad." + std::to_string(i)).clone());
      ps.emplace_back(Tensor::zeros({4}), true);  // no gradient: skipped
      return ps;
    };
    for (const ClipCase& c : clip_cases) {
      CAPTURE(c.name);
      std::vector<Var> ps = with_grads();
      const float total = clip_grad_norm(ps, c.max_norm, c.norm_type);
      const float want_total = get(want, std::string(c.name) + ".total").item();
      INFO("total ", total, " torch ", want_total);
      CHECK(std::fabs(total - want_total) <= 2e-7 * want_total);
      CHECK(grad_norm(ps, c.norm_type) <= std::max(want_total, c.max_norm) * (1 + 1e-6f));
      for (int i = 0; i < kParams; ++i) {
        const std::string key = std::string(c.name) + ".grad." + std::to_string(i);
        test::expect_close(ps[i].grad(), get(want, key), 3e-7, key);
      }
      CHECK(!ps[kParams].has_grad());
    }
    std::vector<Var> ps = with_grads();
    clip_grad_value(ps, 0.5f);
    for (int i = 0; i < kParams; ++i) {
      const std::string key = "value.grad." + std::to_string(i);
      CHECK(same_bits(ps[i].grad(), get(want, key)));
    }
  }

  TEST_CASE("clipping: edge cases, errors, thread-count independence") {
    std::vector<Var> none = fresh_params();
    CHECK(clip_grad_norm(none, 1.f) == 0.f);  // no gradients at all
    std::vector<Var> ps = {Var(Tensor::from({3}, {3.f, 4.f, NAN}), true)};
    ps[0].set_grad(Tensor::from({3}, {3.f, -4.f, 0.f}));
    CHECK(clip_grad_norm(ps, 10.f) == 5.f);  // coef >= 1: untouched
    CHECK(ps[0].grad().to_vector() == std::vector<float>{3.f, -4.f, 0.f});
    CHECK(clip_grad_norm(ps, 1.f, INFINITY) == 4.f);
    CHECK(ps[0].grad().at({1}) == doctest::Approx(-1.f / (4.f + 1e-6f) * 4.f));
    ps[0].set_grad(Tensor::from({3}, {NAN, 1.f, 2.f}));
    CHECK(std::isnan(clip_grad_norm(ps, 1.f)));  // NaN total: left unscaled
    CHECK(ps[0].grad().at({2}) == 2.f);
    clip_grad_value(ps, 1.5f);
    CHECK(std::isnan(ps[0].grad().at({0})));
    CHECK(ps[0].grad().at({2}) == 1.5f);
    CHECK(test::error_of([&] { clip_grad_norm(ps, -1.f); }) ==
          "clip_grad_norm: max_norm must be >= 0, got -1");
    CHECK(test::error_of([&] { clip_grad_norm(ps, 1.f, 0.f); }) ==
          "clip_grad_norm: norm_type must be > 0 (or inf), got 0");
    CHECK(test::error_of([&] { clip_grad_value(ps, -0.5f); }) ==
          "clip_grad_value: clip must be >= 0, got -0.5");

    // 300,001 elements: many chunks. Same total and grads for 1 and 2 threads,
    // and the total agrees with a double-precision sum.
    const Tensor g = test::rand_tensor({300001}, 5);
    double sq = 0;
    for (float x : g) sq += double(x) * double(x);
    const int saved = num_threads();
    std::vector<float> totals;
    std::vector<Tensor> grads;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<Var> big = {Var(Tensor::zeros({300001}), true)};
      big[0].set_grad(g.clone());
      totals.push_back(clip_grad_norm(big, 1.f));
      grads.push_back(big[0].grad());
    }
    set_num_threads(saved);
    CHECK(totals[0] == totals[1]);
    CHECK(same_bits(grads[0], grads[1]));
    CHECK(std::fabs(totals[0] - std::sqrt(sq)) <= 1e-7 * std::sqrt(sq));
  }
}

}  // namespace
}  // namespace qkv

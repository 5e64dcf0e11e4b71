// LR schedules against torch.optim.lr_scheduler 1.13 (30 steps each, from
// tests/fixtures/make_optim.py: StepLR, ExponentialLR, CosineAnnealingLR past
// T_max, LinearLR, SequentialLR warmup+cosine, LambdaLR for the rest), plus
// argument errors, the Noam peak and driving an optimizer.
#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

std::string fixture(const std::string& name) { return test::fixture_path("optim/" + name); }

// "0.1,0.09,..." -> doubles (torch's lrs as Python reprs: exact).
std::vector<double> parse_lrs(const std::string& s) {
  std::vector<double> out;
  const char* p = s.c_str();
  while (*p) {
    char* end = nullptr;
    out.push_back(std::strtod(p, &end));
    REQUIRE(end != p);
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

struct Case {
  const char* name;
  Schedule schedule;
};

TEST_SUITE("nn/schedule") {
  TEST_CASE("30 steps of every schedule match torch's schedulers") {
    const TensorFile f = load_safetensors(fixture("schedules.safetensors"));
    // The same schedules as SCHEDULE_CASES in make_optim.py.
    const Case cases[] = {
        {"constant", Schedule::constant(0.1)},
        {"step", Schedule::step(0.1, 7, 0.5)},
        {"exponential", Schedule::exponential(0.1, 0.9)},
        {"cosine", Schedule::cosine(0.1, 20, 0.001)},
        {"warmup_constant", Schedule::constant(0.1).with_warmup(8, 0.2)},
        {"warmup_cosine", Schedule::cosine(0.1, 25, 0).with_warmup(5, 0.1)},
        {"warmup_step", Schedule::step(0.1, 6, 0.5).with_warmup(4, 0.25)},
        {"inverse_sqrt", Schedule::inverse_sqrt(0.1, 8)},
        {"warmup_inverse_sqrt", Schedule::inverse_sqrt(0.1, 8).with_warmup(8, 0)},
        {"noam", Schedule::noam(64, 10, 2.0)},
    };
    double worst = 0;
    for (const Case& c : cases) {
      const std::vector<double> want = parse_lrs(f.metadata.at("lr." + std::string(c.name)));
      REQUIRE(want.size() == 30);
      const double peak = *std::max_element(want.begin(), want.end());  // relative to the peak lr
      INFO(c.name, ": ", c.schedule.describe(), " vs ", f.metadata.at("describe." + std::string(c.name)));
      for (int64_t t = 0; t < 30; ++t) {
        const double got = c.schedule.lr_at(t), rel = std::fabs(got - want[t]) / peak;
        worst = std::max(worst, rel);
        CAPTURE(t);
        CAPTURE(got);
        CAPTURE(want[t]);
        // torch steps most schedulers recursively (lr *= ratio): a few double ulps.
        CHECK(rel <= 1e-14);
      }
    }
    INFO("worst relative difference ", worst);
    CHECK(worst <= 1e-14);
  }

  TEST_CASE("closed forms at chosen points") {
    CHECK(Schedule::step(1.0, 3, 0.1).lr_at(2) == 1.0);
    CHECK(Schedule::step(1.0, 3, 0.1).lr_at(3) == doctest::Approx(0.1));
    CHECK(Schedule::cosine(0.1, 10, 0.01).lr_at(10) == doctest::Approx(0.01));
    CHECK(Schedule::cosine(0.1, 10, 0.01).lr_at(20) == doctest::Approx(0.1));  // periodic, as torch
    CHECK(Schedule::cosine(0.1, 10, 0).lr_at(5) == doctest::Approx(0.05));
    // Noam: peak factor * (d_model * warmup)^-0.5 at t = warmup - 1 (step 1-based).
    const Schedule noam = Schedule::noam(512, 4000, 1);
    CHECK(noam.lr_at(3999) == doctest::Approx(std::pow(512.0 * 4000.0, -0.5)));
    CHECK(noam.lr_at(3998) < noam.lr_at(3999));
    CHECK(noam.lr_at(4000) < noam.lr_at(3999));
    CHECK(noam.lr_at(0) == doctest::Approx(std::pow(512.0, -0.5) * std::pow(4000.0, -1.5)));
    // Warmup: from start_factor * lr_at0, reaching the schedule's own t = 0 at W.
    const Schedule w = Schedule::exponential(0.2, 0.5).with_warmup(4, 0.5);
    CHECK(w.lr_at(0) == doctest::Approx(0.1));
    CHECK(w.lr_at(2) == doctest::Approx(0.15));
    CHECK(w.lr_at(4) == doctest::Approx(0.2));
    CHECK(w.lr_at(5) == doctest::Approx(0.1));
    CHECK(w.warmup_steps() == 4);
    CHECK(w.describe() == "exponential(lr=0.2, gamma=0.5) after warmup(4, 0.5)");
    CHECK(Schedule::noam(64, 10, 2).describe() == "noam(d_model=64, warmup=10, factor=2)");
  }

  TEST_CASE("argument errors") {
    auto e = [](const std::function<void()>& f) { return test::error_of(f); };
    CHECK(e([] { Schedule::constant(-1); }) ==
          "Schedule::constant: lr must be finite and >= 0, got -1");
    CHECK(e([] { Schedule::step(0.1, 0, 0.1); }) ==
          "Schedule::step: step_size must be >= 1, got 0");
    CHECK(e([] { Schedule::step(0.1, 5, -0.5); }) ==
          "Schedule::step: gamma must be finite and >= 0, got -0.5");
    CHECK(e([] { Schedule::exponential(0.1, 0); }) ==
          "Schedule::exponential: gamma must be finite and > 0, got 0");
    CHECK(e([] { Schedule::cosine(0.1, 0, 0); }) == "Schedule::cosine: t_max must be >= 1, got 0");
    CHECK(e([] { Schedule::cosine(0.1, 10, -0.1); }) ==
          "Schedule::cosine: eta_min must be finite and >= 0, got -0.1");
    CHECK(e([] { Schedule::inverse_sqrt(0.1, 0); }) ==
          "Schedule::inverse_sqrt: timescale must be >= 1, got 0");
    CHECK(e([] { Schedule::noam(0, 10, 1); }) == "Schedule::noam: d_model must be >= 1, got 0");
    CHECK(e([] { Schedule::noam(64, 0, 1); }) == "Schedule::noam: warmup must be >= 1, got 0");
    CHECK(e([] { Schedule::noam(64, 10, 0); }) ==
          "Schedule::noam: factor must be finite and > 0, got 0");
    CHECK(e([] { Schedule::constant(0.1).with_warmup(0, 0); }) ==
          "Schedule::with_warmup: warmup_steps must be >= 1, got 0");
    CHECK(e([] { Schedule::constant(0.1).with_warmup(5, 1.5); }) ==
          "Schedule::with_warmup: start_factor must be in [0, 1], got 1.5");
    CHECK(e([] { Schedule::constant(0.1).with_warmup(5, 0).with_warmup(5, 0); }) ==
          "Schedule::with_warmup: constant(lr=0.1) after warmup(5, 0) already has a warmup");
    CHECK(e([] { Schedule::constant(0.1).lr_at(-1); }) ==
          "Schedule::lr_at: step must be >= 0, got -1");
  }

  TEST_CASE("a schedule drives an optimizer by its step count") {
    std::vector<Var> ps = {Var(Tensor::zeros({3}), true)};
    SGD opt(ps, 1.0);
    const Schedule s = Schedule::cosine(0.5, 4, 0).with_warmup(2, 0);
    std::vector<double> seen;
    for (int k = 0; k < 6; ++k) {
      opt.set_lr(s.lr_at(opt.step_count()));
      seen.push_back(opt.lr());
      ps[0].set_grad(Tensor::full({3}, 1.f));
      opt.step();
    }
    CHECK(seen[0] == 0.0);
    CHECK(seen[1] == doctest::Approx(0.25));
    CHECK(seen[2] == doctest::Approx(0.5));
    CHECK(seen[4] == doctest::Approx(0.25));
    // p = -sum(lr): every update used the lr set for it.
    double sum = 0;
    for (double lr : seen) sum += lr;
    CHECK(ps[0].value().at({0}) == doctest::Approx(-sum));
  }
}

}  // namespace
}  // namespace qkv

// The bench harness in quick mode: every suite runs, verifies its results
// against the reference, and reports sane figures. (Speed itself is never
// asserted in tests: the machines are shared and noisy.)
#include "bench/bench.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("tools/bench") {
  TEST_CASE("gemm suite (quick) verifies and reports") {
    bench::Options opt;
    opt.quick = true;
    opt.json = true;
    auto rs = bench::suite_gemm(opt);
    REQUIRE(rs.size() >= 2);
    CHECK(rs[0].name == "fma_peak");
    CHECK(rs[0].gflops > 0);  // a rate, not a speed claim (sanitizer builds are slow)
    for (const auto& r : rs) {
      CHECK(r.suite == "gemm");
      CHECK(r.gflops > 0);
      if (r.name != "fma_peak") CHECK(r.ms > 0);
    }
  }

  TEST_CASE("every suite runs in quick mode") {
    bench::Options opt;
    opt.quick = true;
    opt.json = true;
    for (const auto& name : bench::suite_names()) {
      INFO("suite ", name);
      auto rs = bench::run_suite(name, opt);
      CHECK(!rs.empty());
      for (const auto& r : rs) CHECK(r.ms >= 0);
    }
    CHECK_THROWS_WITH_AS(bench::run_suite("nope", opt),
                         doctest::Contains("bench: unknown suite 'nope'"), Error);
  }

  TEST_CASE("decode suite (quick): each batch row's speedup is its words/s over batch 1's") {
    bench::Options opt;
    opt.quick = true;
    opt.json = true;
    const std::vector<bench::Result> rs = bench::suite_decode(opt);
    REQUIRE(rs.size() == 8);  // seq2seq and transformer x greedy and beam 5 x batch 1 and N
    for (size_t i = 0; i < rs.size(); i += 2) {
      const bench::Result &one = rs[i], &batch = rs[i + 1];
      INFO(one.name, " / ", batch.name);
      CHECK(one.name.find("batch 1") != std::string::npos);
      CHECK(one.speedup < 0);  // absent: no base of its own
      CHECK(one.words_per_s > 0);
      CHECK(batch.speedup == doctest::Approx(batch.words_per_s / one.words_per_s));
    }
  }

  TEST_CASE("verify rejects a wrong result") {
    std::vector<float> a = {1, 2, 3}, b = {1, 2, 3.5f};
    CHECK_NOTHROW(bench::verify("same", a.data(), a.data(), 3, 1e-6));
    CHECK_THROWS_WITH_AS(bench::verify("x", a.data(), b.data(), 3, 1e-6),
                         doctest::Contains("bench x: result differs"), Error);
  }
}

}  // namespace
}  // namespace qkv

// Generator: seeded reproducibility, independence from the thread count,
// distribution moments, and state save/restore.
#include <cmath>
#include <cstring>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "engine/threads.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("engine/rng") {
  TEST_CASE("philox matches the Random123 known-answer vector") {
    // Philox4x32-10, counter = 0, key = 0 (Random123 kat_vectors).
    auto r = Generator::philox(0, 0);
    CHECK(r[0] == 0x6627e8d5u);
    CHECK(r[1] == 0xe169c58du);
    CHECK(r[2] == 0xbc57ac4cu);
    CHECK(r[3] == 0x9b00dbd8u);
  }

  TEST_CASE("same seed, same numbers; different seed, different numbers") {
    Generator a(42), b(42), c(43);
    Tensor x = uniform({1000}, -1.f, 1.f, a), y = uniform({1000}, -1.f, 1.f, b),
           z = uniform({1000}, -1.f, 1.f, c);
    CHECK(x.to_vector() == y.to_vector());
    CHECK(x.to_vector() != z.to_vector());
    // consecutive fills continue the stream rather than repeat it
    Tensor x2 = uniform({1000}, -1.f, 1.f, a);
    CHECK(x2.to_vector() != x.to_vector());
  }

  TEST_CASE("results do not depend on the thread count") {
    const int saved = num_threads();
    std::vector<float> u[2], n[2];
    for (int t = 1; t <= 2; ++t) {
      set_num_threads(t);
      Generator g(7);
      u[t - 1] = uniform({100003}, 0.f, 1.f, g).to_vector();  // big enough to thread
      n[t - 1] = normal({100003}, 0.f, 1.f, g).to_vector();
    }
    set_num_threads(saved);
    CHECK(u[0] == u[1]);
    CHECK(n[0] == n[1]);
  }

  TEST_CASE("uniform and normal moments") {
    Generator g(1);
    const int64_t n = 200000;
    Tensor u = uniform({n}, 2.f, 4.f, g);
    double s = 0, ss = 0, lo = 1e9, hi = -1e9;
    for (float v : u) { s += v; ss += double(v) * v; lo = std::min(lo, double(v)); hi = std::max(hi, double(v)); }
    double m = s / n, var = ss / n - m * m;
    CHECK(m == doctest::Approx(3.0).epsilon(0.01));
    CHECK(var == doctest::Approx(4.0 / 12).epsilon(0.02));
    CHECK(lo >= 2.0);
    CHECK(hi < 4.0);
    Tensor z = normal({n}, 1.f, 2.f, g);
    s = ss = 0;
    for (float v : z) { s += v; ss += double(v) * v; }
    m = s / n;
    var = ss / n - m * m;
    CHECK(m == doctest::Approx(1.0).epsilon(0.02));
    CHECK(var == doctest::Approx(4.0).epsilon(0.02));
  }

  TEST_CASE("state can be saved and restored") {
    Generator g(5);
    (void)uniform({10}, 0.f, 1.f, g);
    const uint64_t seed = g.seed(), ctr = g.counter();
    std::vector<float> first = uniform({50}, 0.f, 1.f, g).to_vector();
    Generator h;
    h.set_state(seed, ctr);
    CHECK(uniform({50}, 0.f, 1.f, h).to_vector() == first);
  }

  TEST_CASE("next_below stays in range and covers it") {
    Generator g(3);
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 7000; ++i) {
      int64_t v = g.next_below(7);
      REQUIRE(v >= 0);
      REQUIRE(v < 7);
      seen[v]++;
    }
    for (int c : seen) CHECK(c > 800);
    CHECK_THROWS_AS(g.next_below(0), Error);
  }

  // A data-parallel slice draws what the whole batch's fill draws for its rows,
  // whichever axis is the batch's and however the slice falls on the 4-wide
  // Philox blocks, and consumes what the whole fill consumes.
  TEST_CASE("fill_uniform_rows: each slice is its rows of the whole fill") {
    const int64_t outer = 3, global = 7, inner = 5;  // [3,7,5]: odd sizes, blocks straddle rows
    Generator whole(11);
    whole.set_state(11, 9);
    std::vector<float> all(size_t(outer * global * inner));
    whole.fill_uniform(all.data(), int64_t(all.size()), 0.f, 1.f);
    for (auto [offset, rows] :
         {std::pair{0, 7}, std::pair{0, 3}, std::pair{3, 4}, std::pair{6, 1}}) {
      CAPTURE(offset);
      CAPTURE(rows);
      Generator g(11);
      g.set_state(11, 9);
      std::vector<float> part(size_t(outer * rows * inner));
      g.fill_uniform_rows(part.data(), outer, rows, inner, offset, global, 0.f, 1.f);
      CHECK(g.counter() == whole.counter());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < inner; ++i)
            REQUIRE(part[size_t((o * rows + r) * inner + i)] ==
                    all[size_t((o * global + offset + r) * inner + i)]);
    }
    Generator g(11);
    std::vector<float> p(4);
    CHECK_THROWS_WITH_AS(g.fill_uniform_rows(p.data(), 1, 2, 2, 6, 7, 0.f, 1.f),
                         doctest::Contains("uniform rows: expected rows [6, 8) within 7"), Error);
  }

  TEST_CASE("bad arguments throw") {
    Generator g(0);
    CHECK_THROWS_WITH_AS(uniform({3}, 1.f, 0.f, g), doctest::Contains("uniform: expected lo <= hi"),
                         Error);
    CHECK_THROWS_WITH_AS(normal({3}, 0.f, -1.f, g), doctest::Contains("normal: expected stddev"),
                         Error);
  }
}

}  // namespace
}  // namespace qkv

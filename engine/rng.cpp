#include "engine/rng.h"

#include <cmath>

#include "engine/error.h"
#include "engine/threads.h"

namespace qkv {

std::array<uint32_t, 4> Generator::philox(uint64_t key, uint64_t counter) {
  // Philox4x32 with 10 rounds; constants from the paper (Random123).
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c0 = n0; c1 = uint32_t(p1); c2 = n2; c3 = uint32_t(p0);
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

namespace {

// p[k] = U[lo, hi) from draw start + k of the stream at counter `base` (draw i
// is lane i % 4 of block base + i / 4), so any window of a fill is the same
// numbers the whole fill would give there.
void uniform_window(uint64_t seed, uint64_t base, int64_t start, float* p, int64_t n, float lo,
                    float hi) {
  if (n <= 0) return;
  const int64_t b0 = start / 4, b1 = (start + n + 3) / 4;
  const float span = hi - lo;
#pragma omp parallel for schedule(static) if (worth_threads(n)) num_threads(num_threads())
  for (int64_t b = b0; b < b1; ++b) {
    auto r = Generator::philox(seed, base + uint64_t(b));
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j - start;
      if (i < 0 || i >= n) continue;
      float v = lo + span * u32_to_unit(r[j]);
      p[i] = v < hi ? v : lo;  // rounding of lo + span*u may reach hi
    }
  }
}

}  // namespace

void Generator::fill_uniform(float* p, int64_t n, float lo, float hi) {
  check(n >= 0 && hi >= lo, "uniform: expected lo <= hi, got [", lo, ", ", hi, ")");
  uniform_window(seed_, counter_, 0, p, n, lo, hi);
  counter_ += uint64_t((n + 3) / 4);
}

void Generator::fill_uniform_rows(float* p, int64_t outer, int64_t rows, int64_t inner,
                                  int64_t row_offset, int64_t global_rows, float lo, float hi) {
  check(outer >= 0 && rows >= 0 && inner >= 0 && row_offset >= 0 &&
            row_offset + rows <= global_rows && hi >= lo,
        "uniform rows: expected rows [", row_offset, ", ", row_offset + rows, ") within ",
        global_rows, " and lo <= hi, got [", lo, ", ", hi, ")");
  for (int64_t o = 0; o < outer; ++o)
    uniform_window(seed_, counter_, (o * global_rows + row_offset) * inner, p + o * rows * inner,
                   rows * inner, lo, hi);
  counter_ += uint64_t((outer * global_rows * inner + 3) / 4);
}

void Generator::fill_normal(float* p, int64_t n, float mean, float stddev) {
  check(n >= 0 && stddev >= 0, "normal: expected stddev >= 0, got ", stddev);
  const int64_t blocks = (n + 3) / 4;
  const uint64_t base = counter_;
#pragma omp parallel for schedule(static) if (worth_threads(n)) num_threads(num_threads())
  for (int64_t b = 0; b < blocks; ++b) {
    auto r = philox(seed_, base + uint64_t(b));
    // Box-Muller on two pairs: 4 uniforms give 4 normals. u1 in (0,1] keeps log finite.
    for (int pair = 0; pair < 2; ++pair) {
      double u1 = (double(r[2 * pair] >> 8) + 1.0) / 16777216.0;
      double u2 = double(r[2 * pair + 1] >> 8) / 16777216.0;
      double rad = std::sqrt(-2.0 * std::log(u1));
      double z[2] = {rad * std::cos(2 * M_PI * u2), rad * std::sin(2 * M_PI * u2)};
      for (int j = 0; j < 2; ++j) {
        int64_t i = 4 * b + 2 * pair + j;
        if (i < n) p[i] = float(mean + stddev * z[j]);
      }
    }
  }
  counter_ += uint64_t(blocks);
}

uint32_t Generator::next_u32() { return philox(seed_, counter_++)[0]; }

float Generator::next_uniform() { return u32_to_unit(next_u32()); }

int64_t Generator::next_below(int64_t n) {
  check(n >= 1, "next_below: expected n >= 1, got ", n);
  auto r = philox(seed_, counter_++);
  uint64_t x = (uint64_t(r[0]) << 32) | r[1];
  return int64_t(x % uint64_t(n));  // bias < n / 2^64: negligible
}

}  // namespace qkv

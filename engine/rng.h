// Generator: the one seeded source of randomness of an experiment.
//
// Counter-based (Philox4x32-10, Salmon et al., SC'11): draw number i of a fill
// is a pure function of (seed, counter + i / 4), so a parallel fill gives the
// same numbers for any thread count, and the whole state is two integers that
// a checkpoint can save and restore.
#pragma once
#include <array>
#include <cstdint>

namespace qkv {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }        // blocks of 4 draws used
  void set_state(uint64_t seed, uint64_t counter) { seed_ = seed; counter_ = counter; }

  // Fill p[0..n) with U[lo, hi) / N(mean, stddev); consumes ceil(n/4) blocks.
  void fill_uniform(float* p, int64_t n, float lo, float hi);
  void fill_normal(float* p, int64_t n, float mean, float stddev);
  // Part of a uniform fill of a [outer, global_rows, inner] tensor: writes the
  // [outer, rows, inner] block of rows [row_offset, row_offset + rows), each
  // number what fill_uniform over the whole would put there, and consumes what
  // the whole fill would. A data-parallel slice of a batch so draws what the
  // single process draws for its examples (row_offset 0, rows = global_rows:
  // fill_uniform exactly).
  void fill_uniform_rows(float* p, int64_t outer, int64_t rows, int64_t inner, int64_t row_offset,
                         int64_t global_rows, float lo, float hi);

  uint32_t next_u32();                                  // one block per call
  float next_uniform();                                 // U[0, 1)
  int64_t next_below(int64_t n);                        // uniform in [0, n), n >= 1

  // The raw Philox block for (key, counter): exposed for tests.
  static std::array<uint32_t, 4> philox(uint64_t key, uint64_t counter);

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// 24 high bits of a draw to a float in [0, 1): exact, never 1.
inline float u32_to_unit(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }

}  // namespace qkv

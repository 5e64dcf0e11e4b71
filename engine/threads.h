// Thread count for every OpenMP region of qkv.
// QKV_THREADS, else OMP_NUM_THREADS, else the number of cores. Results depend
// on the count only through the order of floating-point sums, and for a fixed
// count every kernel is deterministic (static schedules, no atomics on floats).
#pragma once
#include <cstdint>

namespace qkv {

int num_threads();               // the count in force (>= 1)
void set_num_threads(int n);     // n >= 1; also sets OpenMP's default
// Whether `work` units (roughly: elements touched, or FLOPs / 16) are worth a
// parallel region: one costs ~1-2 us, so below ~32K elements it is a loss.
inline bool worth_threads(int64_t work) { return work >= (int64_t(1) << 15); }

// fn(i) for i in [0, n), split statically over the threads when `work` (the
// whole loop's, as for worth_threads) pays for a parallel region. Static
// split: each i always runs whole on one thread, so results never depend on
// scheduling.
template <class Fn>
void parallel_for(int64_t n, int64_t work, Fn fn) {
  const int nt = num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && worth_threads(work))
  for (int64_t i = 0; i < n; ++i) fn(i);
}

// fn(r0, r1) on one contiguous block of rows per thread (a kernel that
// carries work from row to row). Blocks depend on the thread count.
template <class Fn>
void parallel_row_blocks(int64_t rows, int64_t work, Fn fn) {
  const int64_t blocks = num_threads();
  parallel_for(blocks, work, [&](int64_t b) {
    const int64_t r0 = b * rows / blocks, r1 = (b + 1) * rows / blocks;
    if (r0 < r1) fn(r0, r1);
  });
}

}  // namespace qkv

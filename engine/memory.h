// Aligned allocation for tensor storage and kernel scratch.
// Blocks of 2 MiB or more are 2 MiB-aligned and advised as transparent huge
// pages (where the kernel allows it only on request, as with THP "madvise"):
// a GEMM over 16 MiB operands otherwise spends a visible share of its time
// in TLB misses. Freed blocks of 256 KiB and more are kept (up to 1 GiB in
// all; when full, the least recently freed go first) and handed out again
// for the same rounded size (or up to 1/8 larger), so a training step does
// not page-fault its activations and gradients anew every time.
#pragma once
#include <cstddef>

namespace qkv {

// At least `bytes` (rounded up to 64), 64-byte aligned; throws Error on failure.
void* alloc_aligned(size_t bytes);
void free_aligned(void* p);

// Statistics of the blocks above (all threads): bytes live now, and the most
// live at once since the last reset_peak_bytes() (which sets it to the live
// count). Benchmarks use them to show what an op allocates at its peak.
size_t live_bytes();
size_t peak_bytes();
void reset_peak_bytes();

// The cache of freed large blocks: how many blocks were taken from the system
// so far (a step that reuses its blocks adds none), the bytes cached now, and
// its limit (default 1 GiB; setting it evicts down to it, returns the old one).
size_t block_cache_fresh();
size_t block_cache_bytes();
size_t block_cache_set_limit(size_t bytes);

}  // namespace qkv

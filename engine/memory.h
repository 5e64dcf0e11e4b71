// Aligned allocation for tensor storage and kernel scratch.
// Blocks of 2 MiB or more are 2 MiB-aligned and advised as transparent huge
// pages (where the kernel allows it only on request, as with THP "madvise"):
// a GEMM over 16 MiB operands otherwise spends a visible share of its time
// in TLB misses. Freed blocks of 256 KiB and more are kept (up to 1 GiB in
// all) and handed out again for the same rounded size, so a training step
// does not page-fault its activations and gradients anew every time.
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

}  // namespace qkv

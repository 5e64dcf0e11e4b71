// Aligned allocation for tensor storage and kernel scratch.
// Blocks of 2 MiB or more are 2 MiB-aligned and advised as transparent huge
// pages (where the kernel allows it only on request, as with THP "madvise"):
// a GEMM over 16 MiB operands otherwise spends a visible share of its time
// in TLB misses. Freed blocks of 256 KiB and more are kept (up to 1 GiB in
// all; when full, the least recently freed go first) and handed out again
// for the same rounded size (or up to 1/8 larger), so a training step does
// not page-fault its activations and gradients anew every time.
//
// Every block counts against one memory limit: a request that would take the
// live bytes past it fails at once with an Error naming what was being
// allocated (the innermost AllocScope), before anything is allocated or filled.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qkv {

// At least `bytes` (rounded up to 64), 64-byte aligned; throws Error on failure
// or when the bytes do not fit under memory_limit() beside the live bytes.
void* alloc_aligned(size_t bytes);
void free_aligned(void* p);

// ---- the memory limit ---------------------------------------------------------
// The most bytes of tensor storage live at once. Default: the machine's
// physical memory; the environment variable QKV_MEMORY_LIMIT (bytes, or a
// number with a K, M, G or T suffix: powers of 1024) sets another at start.
size_t memory_limit();
// Sets it (0: back to the default); returns the old one.
size_t memory_limit_set(size_t bytes);
// "17179869184 bytes (16.0 GiB)".
std::string bytes_str(double bytes);
// Error "WHAT need(s) N bytes (X GiB), more than the memory limit of ..." unless
// `bytes` more fit under memory_limit() beside the live bytes. WHAT names the
// request and its cause ("model: the parameters (model.embed = 100000000)").
void memory_check_fits(double bytes, const std::string& what);

// Names what this thread is allocating while it lives ("model.encoder",
// "train step"): an allocation failure inside reads "WHAT: out of memory
// allocating ...". Scopes nest; the innermost names the failure.
class AllocScope {
 public:
  explicit AllocScope(std::string what);
  ~AllocScope();
  AllocScope(const AllocScope&) = delete;
  AllocScope& operator=(const AllocScope&) = delete;

 private:
  std::string what_;
  const AllocScope* outer_;
  friend std::string alloc_scope();
};
// The innermost scope's name on this thread ("" when none).
std::string alloc_scope();
// For a std::bad_alloc caught from library code (a vector, a map): throws
// Error "WHAT: out of memory (std::bad_alloc) ..." naming the scope too.
[[noreturn]] void fail_out_of_memory(const std::string& what);

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

#include "engine/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <atomic>

#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/error.h"

namespace qkv {
namespace {

constexpr size_t kHuge = size_t(2) << 20;
// Blocks from here up are cached on free (below it malloc's own free lists
// do well). Sizes are rounded up so that near sizes share blocks: to 64 KiB
// below 2 MiB, to whole huge pages above.
constexpr size_t kCacheMin = size_t(256) << 10;
constexpr size_t kMid = size_t(64) << 10;
// Freed large blocks kept for reuse, up to this many bytes in all. Training
// allocates the same activation sizes every step; without the cache each one
// is returned to the OS and page-faulted (and zeroed by the kernel) again,
// which cost 18% of an LSTM forward.
constexpr size_t kCacheLimit = size_t(1) << 30;

struct LargeCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // size -> block
  std::unordered_map<void*, size_t> sizes;   // every live or cached large block
  size_t cached = 0;

  ~LargeCache() {
    for (auto& [_, p] : free_blocks) std::free(p);
  }
};

// Live and peak bytes handed out (small blocks at their usable size).
std::atomic<size_t> g_live{0}, g_peak{0};

void count_alloc(size_t bytes) {
  const size_t now = g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void count_free(size_t bytes) { g_live.fetch_sub(bytes, std::memory_order_relaxed); }

LargeCache& cache() {
  static LargeCache* c = new LargeCache();  // never destroyed: frees may come late at exit
  return *c;
}

}  // namespace

void* alloc_aligned(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if (bytes < kCacheMin) {
    void* p = std::aligned_alloc(64, bytes);
    check(p != nullptr, "out of memory allocating ", bytes, " bytes");
    count_alloc(malloc_usable_size(p));
    return p;
  }
  const size_t unit = bytes >= kHuge ? kHuge : kMid;
  bytes = (bytes + unit - 1) / unit * unit;
  LargeCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= bytes;
      count_alloc(bytes);
      return p;
    }
  }
  void* p = std::aligned_alloc(bytes >= kHuge ? kHuge : 64, bytes);
  check(p != nullptr, "out of memory allocating ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
  if (bytes >= kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
  std::lock_guard<std::mutex> lock(c.mu);
  c.sizes[p] = bytes;
  count_alloc(bytes);
  return p;
}

void free_aligned(void* p) {
  if (!p) return;
  LargeCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.sizes.find(p);
    if (it != c.sizes.end()) {
      const size_t bytes = it->second;
      count_free(bytes);
      if (c.cached + bytes <= kCacheLimit) {
        c.free_blocks.emplace(bytes, p);
        c.cached += bytes;
        return;
      }
      c.sizes.erase(it);
      std::free(p);
      return;
    }
  }
  count_free(malloc_usable_size(p));
  std::free(p);
}

size_t live_bytes() { return g_live.load(std::memory_order_relaxed); }
size_t peak_bytes() { return g_peak.load(std::memory_order_relaxed); }
void reset_peak_bytes() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace qkv

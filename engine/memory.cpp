#include "engine/memory.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

#include <cstdint>
#include <cstdio>
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

struct Cached {
  void* p;
  uint64_t stamp;  // when it was freed: the oldest goes first when the cache is full
};

struct LargeCache {
  std::mutex mu;
  std::multimap<size_t, Cached> free_blocks;  // block size -> block
  std::unordered_map<void*, size_t> sizes;    // every live or cached large block
  size_t cached = 0;
  size_t limit = kCacheLimit;
  uint64_t clock = 0;
  size_t fresh = 0;  // blocks obtained from malloc so far

  ~LargeCache() {
    for (auto& [_, b] : free_blocks) std::free(b.p);
  }

  // Frees the least recently freed blocks until `bytes` more fit under the
  // limit. Keeping the newest rather than refusing new blocks matters when
  // phases change: blocks of sizes an earlier phase used (another bench
  // suite, evaluation) would otherwise fill the cache for good, and every
  // block of the current phase would go back to the OS and fault anew.
  void evict_for(size_t bytes) {
    while (!free_blocks.empty() && cached + bytes > limit) {
      auto oldest = free_blocks.begin();
      for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it)
        if (it->second.stamp < oldest->second.stamp) oldest = it;
      cached -= oldest->first;
      sizes.erase(oldest->second.p);
      std::free(oldest->second.p);
      free_blocks.erase(oldest);
    }
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

// Small blocks come from malloc's heap, whose defaults serve blocks from 128
// KiB up from fresh mmaps and hand the heap's free top back to the OS above
// 128 KiB: a decoder step's temporaries (64-256 KiB) were then page-faulted
// and zeroed by the kernel at every step (a fifth of an inference step).
// Kept in the heap instead (set once, before the first small block).
void keep_small_blocks_in_heap() {
  static const bool once = [] {
    mallopt(M_MMAP_THRESHOLD, int(kCacheMin));
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    return true;
  }();
  (void)once;
}

}  // namespace

// ---- the memory limit and allocation scopes -------------------------------------

namespace {

size_t default_limit() {
  if (const char* env = std::getenv("QKV_MEMORY_LIMIT"); env && *env) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    double scale = 1;
    switch (*end) {
      case 'K': case 'k': scale = 0x1p10; ++end; break;
      case 'M': case 'm': scale = 0x1p20; ++end; break;
      case 'G': case 'g': scale = 0x1p30; ++end; break;
      case 'T': case 't': scale = 0x1p40; ++end; break;
      default: break;
    }
    check(end != env && *end == '\0' && v > 0 && v * scale < 0x1p63,
          "QKV_MEMORY_LIMIT: expected a number of bytes > 0 (suffix K, M, G or T allowed), got '",
          env, "'");
    return size_t(v * scale);
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page) : SIZE_MAX;
}

std::atomic<size_t>& limit_ref() {
  static std::atomic<size_t> limit{default_limit()};
  return limit;
}

thread_local const AllocScope* t_scope = nullptr;

std::string scope_prefix() {
  std::string s = alloc_scope();
  return s.empty() ? "" : s + ": ";
}

// Before any block is taken: the request alone, then beside what is live.
void limit_check(size_t bytes) {
  const size_t limit = limit_ref().load(std::memory_order_relaxed);
  const size_t live = g_live.load(std::memory_order_relaxed);
  if (bytes <= limit && live <= limit - bytes) [[likely]]
    return;
  fail(scope_prefix(), "out of memory allocating ", bytes_str(double(bytes)), " with ",
       bytes_str(double(live)), " live: more than the memory limit of ",
       bytes_str(double(limit)), " (QKV_MEMORY_LIMIT)");
}

}  // namespace

size_t memory_limit() { return limit_ref().load(std::memory_order_relaxed); }

size_t memory_limit_set(size_t bytes) {
  return limit_ref().exchange(bytes ? bytes : default_limit(), std::memory_order_relaxed);
}

std::string bytes_str(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f bytes (%.1f GiB)", bytes, bytes / 0x1p30);
  return buf;
}

void memory_check_fits(double bytes, const std::string& what) {
  const double limit = double(memory_limit()), live = double(live_bytes());
  // The live bytes are named only when they make the difference.
  check(bytes <= limit - live, what, " need ", bytes_str(bytes), ", more than the memory limit of ",
        bytes_str(limit), bytes <= limit ? " less the " + bytes_str(live) + " live" : std::string(),
        " (set QKV_MEMORY_LIMIT to change it)");
}

AllocScope::AllocScope(std::string what) : what_(std::move(what)), outer_(t_scope) {
  t_scope = this;
}
AllocScope::~AllocScope() { t_scope = outer_; }

std::string alloc_scope() { return t_scope ? t_scope->what_ : std::string(); }

void fail_out_of_memory(const std::string& what) {
  const std::string scope = alloc_scope();
  fail(what, ": out of memory (std::bad_alloc)", scope.empty() || scope == what ? "" : " in ",
       scope == what ? "" : scope, "; the memory limit is ", bytes_str(double(memory_limit())));
}

void* alloc_aligned(size_t bytes) {
  limit_check(bytes);
  bytes = (bytes + 63) / 64 * 64;
  if (bytes < kCacheMin) {
    keep_small_blocks_in_heap();
    void* p = std::aligned_alloc(64, bytes);
    // Not check(): its message parts (two strings) would be built on every allocation.
    if (p == nullptr) [[unlikely]]
      fail(scope_prefix(), "out of memory allocating ", bytes_str(double(bytes)));
    count_alloc(malloc_usable_size(p));
    return p;
  }
  const size_t unit = bytes >= kHuge ? kHuge : kMid;
  bytes = (bytes + unit - 1) / unit * unit;
  LargeCache& c = cache();
  {
    // The smallest cached block that fits, if it wastes at most 1/8: near
    // sizes (a [B,T,D] and a [B,T,D+pad]) share blocks, a small request does
    // not take a much larger block that a later request of its size needs.
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.lower_bound(bytes);
    if (it != c.free_blocks.end() && it->first <= bytes + bytes / 8) {
      // Of blocks of that size, the most recently freed (the last of its
      // equal range): the likeliest to be in cache still.
      it = std::prev(c.free_blocks.upper_bound(it->first));
      void* p = it->second.p;
      c.cached -= it->first;
      count_alloc(it->first);
      c.free_blocks.erase(it);
      return p;
    }
  }
  void* p = std::aligned_alloc(bytes >= kHuge ? kHuge : 64, bytes);
  if (p == nullptr) [[unlikely]]
    fail(scope_prefix(), "out of memory allocating ", bytes_str(double(bytes)));
#ifdef MADV_HUGEPAGE
  if (bytes >= kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
  std::lock_guard<std::mutex> lock(c.mu);
  c.sizes[p] = bytes;
  ++c.fresh;
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
      if (bytes <= c.limit) {
        c.evict_for(bytes);
        c.free_blocks.emplace(bytes, Cached{p, ++c.clock});
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

size_t block_cache_fresh() {
  LargeCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.fresh;
}

size_t block_cache_bytes() {
  LargeCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

size_t block_cache_set_limit(size_t bytes) {
  LargeCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  const size_t old = c.limit;
  c.limit = bytes;
  c.evict_for(0);
  return old;
}

size_t live_bytes() { return g_live.load(std::memory_order_relaxed); }
size_t peak_bytes() { return g_peak.load(std::memory_order_relaxed); }
void reset_peak_bytes() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace qkv

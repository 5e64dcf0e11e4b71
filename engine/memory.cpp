#include "engine/memory.h"

#include <sys/mman.h>

#include <cstdlib>

#include "engine/error.h"

namespace qkv {

void* alloc_aligned(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  size_t align = 64;
  bytes = (bytes + 63) / 64 * 64;
  if (bytes >= kHuge) {
    align = kHuge;
    bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  }
  void* p = std::aligned_alloc(align, bytes);
  check(p != nullptr, "out of memory allocating ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
  if (align == kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
  return p;
}

void free_aligned(void* p) { std::free(p); }

}  // namespace qkv

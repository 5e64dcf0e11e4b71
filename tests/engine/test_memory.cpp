// The cache of freed large blocks (engine/memory): repeated same-shape
// tensors reuse their blocks (no new blocks, no page faults), the warmest
// block goes first, near sizes share a block, and a full cache makes room for the current phase's blocks
// by dropping the oldest instead of refusing the new ones.
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/memory.h"
#include "engine/tensor.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

long minor_faults() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

// Restores the default limit when a test ends, even on failure.
struct LimitGuard {
  size_t old;
  explicit LimitGuard(size_t bytes) : old(block_cache_set_limit(bytes)) {}
  ~LimitGuard() { block_cache_set_limit(old); }
};

// One "step": a few [B,C,IH,IW] activations live at once, written, then freed.
void step(int64_t numel) {
  std::vector<Tensor> live;
  for (int k = 0; k < 3; ++k) {
    live.emplace_back(Shape{numel});
    std::memset(live.back().data(), 1, size_t(numel) * sizeof(float));
  }
}

TEST_SUITE("engine/memory") {
  TEST_CASE("repeated same-shape steps take no new blocks and do not page-fault") {
    const int64_t n = 64 * 64 * 28 * 28;  // 12.8 MB, the CBAM bench's activations
    step(n);                              // warm-up: may take fresh blocks
    const size_t fresh = block_cache_fresh();
    const long faults = minor_faults();
    for (int i = 0; i < 20; ++i) step(n);
    CHECK(block_cache_fresh() == fresh);
    // Fresh blocks would fault at least 7 huge pages each (3 per step, 60 in
    // all: >= 420 faults, 4 KiB pages far more); reused ones fault none.
    CHECK(minor_faults() - faults < 100);
  }

  TEST_CASE("a near size reuses a slightly larger cached block") {
    step(18 << 18);  // 18 MiB blocks cached
    const size_t fresh = block_cache_fresh();
    step(16 << 18);  // 16 MiB: an 18 MiB block wastes 1/8, fits
    CHECK(block_cache_fresh() == fresh);
  }

  TEST_CASE("of equal cached blocks, the most recently freed is handed out first") {
    // It is the one most likely still in cache: an output written into it
    // does not first fetch its lines from memory.
    const int64_t n = 3 << 18;  // 3 MiB
    void* first = nullptr;
    void* last = nullptr;
    {
      Tensor a(Shape{n}), b(Shape{n}), c(Shape{n});
      first = a.data(), last = c.data();
      a = Tensor(), b = Tensor(), c = Tensor();  // freed in order a, b, c
    }
    Tensor d(Shape{n});
    CHECK(static_cast<void*>(d.data()) == last);
    CHECK(static_cast<void*>(d.data()) != first);
  }

  TEST_CASE("a full cache drops its oldest blocks, not the current phase's") {
    LimitGuard guard(0);  // empty the cache
    block_cache_set_limit(size_t(64) << 20);
    {
      // An earlier phase leaves 60 MiB of 20 MiB blocks behind, never used again.
      std::vector<Tensor> old;
      for (int k = 0; k < 3; ++k) old.emplace_back(Shape{5 << 20});
    }
    CHECK(block_cache_bytes() <= size_t(64) << 20);
    const int64_t n = 1 << 20;  // 4 MiB blocks
    step(n);
    const size_t fresh = block_cache_fresh();
    for (int i = 0; i < 5; ++i) step(n);
    CHECK(block_cache_fresh() == fresh);
    CHECK(block_cache_bytes() <= size_t(64) << 20);
  }

  TEST_CASE("the limit bounds what is kept") {
    LimitGuard guard(size_t(8) << 20);
    step(1 << 20);  // three 4 MiB blocks freed: at most two stay
    CHECK(block_cache_bytes() <= size_t(8) << 20);
    CHECK(block_cache_bytes() > 0);
  }

  TEST_CASE("the memory limit refuses a block past it before allocating, naming the scope") {
    const size_t old = memory_limit_set(live_bytes() + (size_t(1) << 20));
    const size_t live = live_bytes();
    {
      AllocScope outer("model");
      AllocScope inner("model.encoder");
      CHECK(alloc_scope() == "model.encoder");
      const std::string e = test::error_of([] { Tensor t({int64_t(1) << 20}); });  // 4 MiB
      CHECK(e.rfind("model.encoder: out of memory allocating 4194304 bytes (0.0 GiB) with ", 0) ==
            0);
      CHECK(e.find("more than the memory limit of ") != std::string::npos);
      CHECK(live_bytes() == live);
      Tensor fits({int64_t(1) << 16});  // 256 KiB: under the limit
    }
    CHECK(alloc_scope().empty());
    CHECK(
        test::error_of([] { fail_out_of_memory("data: building the data set"); })
            .rfind(
                "data: building the data set: out of memory (std::bad_alloc); the memory limit is ",
                0) == 0);
    memory_limit_set(old);
  }

  TEST_CASE("QKV_MEMORY_LIMIT sets the default limit") {
    const size_t old = memory_limit();
    ::setenv("QKV_MEMORY_LIMIT", "2G", 1);
    memory_limit_set(0);  // back to the default: read from the environment
    CHECK(memory_limit() == size_t(2) << 30);
    ::setenv("QKV_MEMORY_LIMIT", "1500", 1);
    memory_limit_set(0);
    CHECK(memory_limit() == 1500);
    ::setenv("QKV_MEMORY_LIMIT", "lots", 1);
    CHECK(test::error_of([] { memory_limit_set(0); }) ==
          "QKV_MEMORY_LIMIT: expected a number of bytes > 0 (suffix K, M, G or T allowed), got "
          "'lots'");
    ::unsetenv("QKV_MEMORY_LIMIT");
    memory_limit_set(0);
    CHECK(memory_limit() > (size_t(64) << 20));  // the machine's memory
    memory_limit_set(old);
  }
}

}  // namespace
}  // namespace qkv

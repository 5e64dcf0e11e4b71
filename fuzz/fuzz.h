// Shared by the libFuzzer targets: the input as a string, the one acceptable
// way to refuse it (qkv::Error: anything else escaping is a finding, as are
// crashes, sanitizer reports and time-outs) and a small memory limit, so a
// size read from the input is refused by the size checks instead of allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/error.h"
#include "engine/memory.h"

namespace qkv::fuzz {

inline std::string bytes(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs f(); a qkv::Error is a refusal (fine), anything else propagates.
template <class F>
void refuse_ok(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

// Tensor storage past this fails with a qkv::Error naming what asked for it.
inline void limit_memory() { memory_limit_set(size_t(256) << 20); }

// An invariant of what was read: a violation aborts (a finding).
inline void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace qkv::fuzz

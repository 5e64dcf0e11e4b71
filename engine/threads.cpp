#include "engine/threads.h"

#include <omp.h>

#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace qkv {
namespace {

int from_env() {
  for (const char* name : {"QKV_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(name);
    if (!v || !*v) continue;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    // OMP_NUM_THREADS may be a list ("4,2"): its first entry is ours.
    check(end != v && n >= 1 && n <= 1024 && (*end == 0 || *end == ','), name,
          ": expected a thread count >= 1, got '", v, "'");
    return int(n);
  }
  return omp_get_num_procs();
}

int g_threads = 0;

}  // namespace

int num_threads() {
  if (g_threads == 0) set_num_threads(from_env());
  return g_threads;
}

void set_num_threads(int n) {
  check(n >= 1, "set_num_threads: expected n >= 1, got ", n);
  g_threads = n;
  omp_set_num_threads(n);
  // One level of parallelism, whatever OMP_MAX_ACTIVE_LEVELS says: a kernel
  // called inside a parallel region (a chunk of chunk-parallel decoding) runs
  // on that region's thread alone instead of forking more threads than cores.
  omp_set_max_active_levels(1);
}

}  // namespace qkv

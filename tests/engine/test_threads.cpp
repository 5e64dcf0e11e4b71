// The thread settings: one level of parallelism whatever the OpenMP
// environment asks for, so kernels inside a parallel region stay serial.
#include <omp.h>

#include <doctest/doctest.h>

#include "engine/threads.h"

namespace qkv {

TEST_SUITE("engine/threads") {
  TEST_CASE("set_num_threads keeps OpenMP to one active level") {
    const int saved = num_threads();
    omp_set_max_active_levels(4);  // as OMP_MAX_ACTIVE_LEVELS=4 would
    set_num_threads(2);
    CHECK(omp_get_max_active_levels() == 1);
    int inner = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp parallel num_threads(2)
#pragma omp single
      inner = omp_get_num_threads();  // a nested region gets one thread
    }
    CHECK(inner == 1);
    set_num_threads(saved);
  }
}

}  // namespace qkv

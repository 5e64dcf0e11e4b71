// qkv bench conv / cbam: placeholder until the vision issue's suites land.
#include "bench/bench.h"
#include "engine/error.h"

namespace qkv::bench {

std::vector<Result> suite_conv(const Options&) { fail("bench conv: not implemented yet"); }
std::vector<Result> suite_cbam(const Options&) { fail("bench cbam: not implemented yet"); }

}  // namespace qkv::bench

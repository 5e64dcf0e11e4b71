// qkv bench transformer: placeholder until the Transformer issue's suite lands.
#include "bench/bench.h"
#include "engine/error.h"

namespace qkv::bench {

std::vector<Result> suite_transformer(const Options&) { fail("bench transformer: not implemented yet"); }

}  // namespace qkv::bench

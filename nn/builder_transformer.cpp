// JSON makers for the transformer modules (see nn/builder_makers.h).
#include "nn/builder_makers.h"

namespace qkv {

void add_transformer_makers(MakerMap& /*m*/) {}

}  // namespace qkv

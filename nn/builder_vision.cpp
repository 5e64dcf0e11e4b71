// JSON makers for the vision modules (see nn/builder_makers.h).
#include "nn/builder_makers.h"

namespace qkv {

void add_vision_makers(MakerMap& /*m*/) {}

}  // namespace qkv

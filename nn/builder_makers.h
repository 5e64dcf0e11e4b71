// Internal to the JSON builder: each family of modules registers its makers in
// its own file (builder.cpp: core and recurrent; builder_transformer.cpp;
// builder_vision.cpp), so the families grow without touching each other.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "nn/builder.h"
#include "nn/json_config.h"
#include "nn/module.h"

namespace qkv {

class Generator;

// Maker and ModuleType: nn/builder.h (a maker converts to a ModuleType).
using MakerMap = std::map<std::string, ModuleType>;

// Sizes are checked before a module allocates: each maker passes a lower bound
// of its parameter bytes (the dominant terms: a bound never refuses what fits)
// and the keys it comes from to r.check_fits, so an absurd size is refused at
// once, naming the keys, instead of allocating and filling. The allocator's own
// limit (engine/memory.h) catches whatever a bound leaves out.
inline constexpr double kFloatBytes = 4;

// Lower bound of the parameter floats of an LSTM (gates 4) or GRU (gates 3):
// the first layer's weights of every direction.
inline double rnn_param_floats(double gates, double input, double hidden, double dirs) {
  return gates * hidden * (input + hidden) * dirs;
}

void add_transformer_makers(MakerMap& m);  // builder_transformer.cpp
void add_vision_makers(MakerMap& m);       // builder_vision.cpp

}  // namespace qkv

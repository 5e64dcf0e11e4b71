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

void add_transformer_makers(MakerMap& m);  // builder_transformer.cpp
void add_vision_makers(MakerMap& m);       // builder_vision.cpp

}  // namespace qkv

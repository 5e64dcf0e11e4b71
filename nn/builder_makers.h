// Internal to the JSON builder: each family of modules registers its makers in
// its own file (builder.cpp: core and recurrent; builder_transformer.cpp;
// builder_vision.cpp), so the families grow without touching each other.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "nn/json_config.h"
#include "nn/module.h"

namespace qkv {

class Generator;

// Reads the module's options from r (r.finish() is called by the builder) and
// makes it. Nested module configs may be built with build_module(r.get_raw(k), ...).
using Maker = std::function<std::shared_ptr<Module>(JsonReader&, Generator&)>;
using MakerMap = std::map<std::string, Maker>;

void add_transformer_makers(MakerMap& m);  // builder_transformer.cpp
void add_vision_makers(MakerMap& m);       // builder_vision.cpp

}  // namespace qkv

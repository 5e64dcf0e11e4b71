// Modules from JSON: {"type": "lstm", "input_size": 8, "hidden_size": 16, ...}.
// Each type reads its options through a JsonReader, so unknown keys and bad
// values are errors naming their JSON path, and the resolved config (every
// default filled in) comes back with the module.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/json_config.h"
#include "nn/module.h"

namespace qkv {

class Generator;

struct Built {
  std::shared_ptr<Module> module;
  Json resolved;
};

// path names the config in messages ("model", "model.encoder").
Built build_module(const Json& config, Generator& gen, const std::string& path = "model");

// The types build_module knows, sorted.
std::vector<std::string> module_types();

}  // namespace qkv

// Modules from JSON: {"type": "lstm", "input_size": 8, "hidden_size": 16, ...}.
// Each type reads its options through a JsonReader, so unknown keys and bad
// values are errors naming their JSON path, and the resolved config (every
// default filled in) comes back with the module.
// The registry is open: register_module_type adds a type from any file (a
// test, a new model family), and a model type declares there which of its
// config keys the data set fills in (vocabulary sizes, classes).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "nn/json_config.h"
#include "nn/model.h"
#include "nn/module.h"

namespace qkv {

class Generator;

// Reads the module's options from r (r.finish() is called by the builder) and
// makes it. Nested module configs may be built with build_module(r.get_raw(k), ...).
using Maker = std::function<std::shared_ptr<Module>(JsonReader&, Generator&)>;
// Config keys a type takes from the data set's facts (data::Dataset::facts) when
// the config leaves them out: {{"vocab", "src_vocab"}} fills "vocab" with the
// fact "src_vocab".
using DataFills = std::vector<std::pair<std::string, std::string>>;

struct ModuleType {
  Maker make;
  DataFills data_fills;
  ModuleType() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, ModuleType>>>
  ModuleType(F make_fn, DataFills fills = {})  // NOLINT: a maker converts implicitly
      : make(std::move(make_fn)), data_fills(std::move(fills)) {}
};

// Adds a type to build_module. Error if the name is taken (or "sequential").
void register_module_type(const std::string& type, ModuleType t);

// config with the data set's facts filled in where its type declares them and
// the config leaves them out (facts <= 0 or absent are not filled). A config
// of an unknown type comes back unchanged (build_module names the error).
Json fill_data_facts(const Json& config, const Json& facts);

struct Built {
  std::shared_ptr<Module> module;
  Json resolved;
};

// path names the config in messages ("model", "model.encoder").
Built build_module(const Json& config, Generator& gen, const std::string& path = "model");

// The types build_module knows, sorted.
std::vector<std::string> module_types();

struct BuiltModel {
  std::shared_ptr<Model> model;
  Json resolved;
};
// build_module for a whole model (trained, evaluated and run by the runner);
// Error naming the type when it builds a module that is no Model.
BuiltModel build_model(const Json& config, Generator& gen, const std::string& path = "model");

}  // namespace qkv

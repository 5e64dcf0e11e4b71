// The data sets by name: each data set registers its name with its options
// reader in its own file, and make_dataset (dataset.cpp) builds whatever is
// registered under "data.name". Adding a data set is one file plus its line in
// meson.build; nothing else names it.
//
// Registration runs during static initialisation, from a file-scope
// DatasetRegistrar in the data set's .cpp. The registry is a function-local
// static, so the order in which files register does not matter. A static
// library drops objects nothing references, and nothing references a data
// set's file by name: meson links the tools library whole into the programs.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tools/data/dataset.h"

namespace qkv::data {

// What a data set's options reader returns: the maker, bound to the options it
// read, and the resolved values JsonReader does not record (lists such as
// "formats", "files"), merged into Made::resolved.
struct DatasetRecipe {
  std::function<std::unique_ptr<Dataset>()> make;
  Json extra = Json::object();
};

// Reads a data set's options from r (the "data" object; "name" is already
// read). make_dataset calls r.finish() before recipe.make(), so an unknown key
// is rejected before any generation or file reading starts.
using DatasetReader = std::function<DatasetRecipe(JsonReader& r, uint64_t seed)>;

// Error if the name is empty or taken. unregister_dataset forgets a name (no-op if unknown).
void register_dataset(const std::string& name, DatasetReader read);
void unregister_dataset(const std::string& name);

// Registers for its lifetime: at file scope in a data set's .cpp (for the whole
// program), or in a block (a test's fake data set, gone when the block ends).
class DatasetRegistrar {
 public:
  DatasetRegistrar(std::string name, DatasetReader read) : name_(std::move(name)) {
    register_dataset(name_, std::move(read));
  }
  ~DatasetRegistrar() { unregister_dataset(name_); }
  DatasetRegistrar(const DatasetRegistrar&) = delete;
  DatasetRegistrar& operator=(const DatasetRegistrar&) = delete;

 private:
  std::string name_;
};

}  // namespace qkv::data

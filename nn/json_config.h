// Reading JSON configs into typed structs: every getter knows the JSON path it
// reads, so a bad value is reported as "train.optimizer.lr: expected a number
// > 0, got -0.1"; defaults are filled into the resolved config (printed at
// start and saved with a run); keys nobody read are an error naming the path
// and the known keys (a typo must not silently fall back to a default).
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "nn/enum_names.h"

namespace qkv {

using Json = nlohmann::ordered_json;

class JsonReader {
 public:
  // j must be an object (or null: an empty object). path: "" for the root.
  JsonReader(const Json& j, std::string path);

  bool has(const std::string& key) const;
  // Integers in [lo, hi].
  int64_t get_int(const std::string& key, int64_t def,
                  int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max());
  // A required integer in [lo, hi].
  int64_t require_int(const std::string& key, int64_t lo = std::numeric_limits<int64_t>::min(),
                      int64_t hi = std::numeric_limits<int64_t>::max());
  // Numbers in [lo, hi]; with lo_open, > lo.
  double get_number(const std::string& key, double def,
                    double lo = -std::numeric_limits<double>::infinity(),
                    double hi = std::numeric_limits<double>::infinity(), bool lo_open = false);
  // A float option (as get_number); the resolved config shows the float default
  // as its shortest decimal (1e-05, not 9.999999747378752e-06).
  float get_float(const std::string& key, float def,
                  double lo = -std::numeric_limits<double>::infinity(),
                  double hi = std::numeric_limits<double>::infinity(), bool lo_open = false);
  // A required number in [lo, hi] (with lo_open, > lo).
  double require_number(const std::string& key,
                        double lo = -std::numeric_limits<double>::infinity(),
                        double hi = std::numeric_limits<double>::infinity(), bool lo_open = false);
  bool get_bool(const std::string& key, bool def);
  // A string, one of `choices` when given.
  std::string get_string(const std::string& key, const std::string& def,
                         const std::vector<std::string>& choices = {});
  // One of enum E's names (nn/enum_names.h), parsed into E; the resolved
  // config keeps the name. A wrong name is an error listing the allowed ones.
  template <class E>
  E get_enum(const std::string& key, E def) {
    std::vector<std::string> names;
    for (const auto& n : enum_names(def)) names.emplace_back(n.name);
    return enum_find<E>(get_string(key, enum_name(def), names))->value;
  }
  // A required string ("type" of a module).
  std::string require_string(const std::string& key, const std::vector<std::string>& choices = {});
  // The raw value under key (null when missing), marked as read: for arrays
  // and other shapes the caller validates itself.
  Json get_raw(const std::string& key);
  // A nested object (missing: an empty one). Its reads land in resolved().
  JsonReader child(const std::string& key);
  // Records a nested reader's resolved object under key (call after reading it).
  void set_child(const std::string& key, const JsonReader& c);

  // Refuses what cannot fit in memory before it is allocated: Error "PATH: WHAT
  // (PATH.k = v, ...) need N bytes, more than the memory limit ..." unless
  // `bytes` fit under engine/memory.h's memory_limit(). keys: the options
  // (already read) the size comes from.
  void check_fits(double bytes, const std::string& what,
                  const std::vector<std::string>& keys) const;

  // Error if any key was never read.
  void finish() const;
  const Json& resolved() const { return resolved_; }
  std::string path_of(const std::string& key) const;

 private:
  const Json* find(const std::string& key);
  Json src_;
  std::string path_;
  std::set<std::string> read_;
  Json resolved_ = Json::object();
};

// "--set a.b.c=value": value parsed as JSON when it is valid JSON (numbers,
// true/false, null, quoted strings, objects), else taken as a plain string.
// Creates intermediate objects; Error names the override when a middle key
// holds a non-object.
void json_set_path(Json& root, const std::string& assignment);

}  // namespace qkv

// NamedInputs (see nn/forward_io.h): named lookups that remember what was read.
#include "nn/forward_io.h"

#include <algorithm>

#include "engine/error.h"

namespace qkv {

NamedInputs::NamedInputs(std::map<std::string, Var> floats, std::map<std::string, IntTensor> ints,
                         std::string where)
    : floats_(std::move(floats)), ints_(std::move(ints)), where_(std::move(where)) {}

Var NamedInputs::optional(const std::string& name) {
  auto it = floats_.find(name);
  if (it == floats_.end()) {
    check(!ints_.count(name), where_, ": '", name, "' must be a float tensor, got an integer one");
    return Var();
  }
  if (std::find(read_.begin(), read_.end(), name) == read_.end()) read_.push_back(name);
  return it->second;
}

Var NamedInputs::tensor(const std::string& name) {
  Var v = optional(name);
  check(v.defined(), where_, ": missing float tensor '", name, "'");
  return v;
}

const IntTensor* NamedInputs::optional_ids(const std::string& name) {
  auto it = ints_.find(name);
  if (it == ints_.end()) {
    check(!floats_.count(name), where_, ": '", name,
          "' must be an integer tensor (I64 or I32), got a float one");
    return nullptr;
  }
  if (std::find(read_.begin(), read_.end(), name) == read_.end()) read_.push_back(name);
  return &it->second;
}

const IntTensor& NamedInputs::ids(const std::string& name) {
  const IntTensor* t = optional_ids(name);
  check(t != nullptr, where_, ": missing integer tensor '", name, "'");
  return *t;
}

bool NamedInputs::flag(const std::string& name, bool absent) {
  const IntTensor* t = optional_ids(name);
  if (!t) return absent;
  check(t->numel() == 1, where_, ": flag '", name, "' must hold one integer, got shape ",
        shape_str(t->shape()));
  return t->data()[0] != 0;
}

std::vector<std::string> NamedInputs::unread() const {
  std::vector<std::string> out;
  auto seen = [&](const std::string& n) {
    return std::find(read_.begin(), read_.end(), n) != read_.end();
  };
  for (const auto& [n, _] : floats_)
    if (!seen(n)) out.push_back(n);
  for (const auto& [n, _] : ints_)
    if (!seen(n)) out.push_back(n);
  return out;
}

}  // namespace qkv

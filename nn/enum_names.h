// Names of closed sets (an RNN kind, a schedule type, ...): each enum keeps one
// table of {value, name} beside it, returned by an `enum_names(E)` overload
// found by argument-dependent lookup. Configs are parsed into the enum once, at
// the JSON boundary (JsonReader::get_enum); resolved configs and describe()
// print the same names back. Hot paths compare enums, never strings.
#pragma once
#include <span>
#include <string>
#include <string_view>

#include "engine/error.h"

namespace qkv {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

// The name of e in its table ("?" when the table misses it: a bug the
// defaults test catches).
template <class E>
const char* enum_name(E e) {
  for (const auto& n : enum_names(e))
    if (n.value == e) return n.name;
  return "?";
}

// The entry named `name`, or nullptr.
template <class E>
const EnumName<E>* enum_find(std::string_view name) {
  for (const auto& n : enum_names(E{}))
    if (name == n.name) return &n;
  return nullptr;
}

// "a, b, c": the names of E in table order, for messages.
template <class E>
std::string enum_name_list() {
  std::string s;
  for (const auto& n : enum_names(E{})) s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

// The value named `name`; else an Error "what: expected one of a, b, got "x""
// (the same message JsonReader::get_enum gives, with `what` the JSON path).
template <class E>
E enum_parse(std::string_view name, std::string_view what) {
  const EnumName<E>* n = enum_find<E>(name);
  check(n != nullptr, what, ": expected one of ", enum_name_list<E>(), ", got \"", name, "\"");
  return n->value;
}

}  // namespace qkv

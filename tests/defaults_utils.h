// The check behind the defaults tests (tests/nn/test_defaults.cpp,
// tests/tools/test_config_defaults.cpp): a resolved config against the
// defaults a default-constructed options struct holds.
#pragma once
#include <doctest/doctest.h>

#include <string>

#include "nn/json_config.h"

namespace qkv::test {

// Numbers are equal as doubles, or as floats when the struct member is a float
// (the resolved 1e-05 of a float 1e-5f).
inline bool same_value(const Json& got, const Json& want) {
  if (got.is_number() && want.is_number()) {
    const double g = got.get<double>(), w = want.get<double>();
    return g == w || float(g) == float(w);
  }
  return got == want;
}

// Every key of `resolved` that `given` does not hold (but "type") must be in
// `want` with an equal value, and every key of `want` must be resolved. Nested
// objects are compared the same way. `path` names the config in messages.
inline void check_defaults(const Json& resolved, const Json& given, const Json& want,
                           const std::string& path) {
  for (auto it = resolved.begin(); it != resolved.end(); ++it) {
    const std::string& k = it.key();
    const std::string at = path + "." + k;
    const bool is_given = given.is_object() && given.contains(k);
    if (k == "type") continue;
    if (is_given) {  // a given object may still have defaults filled in
      if (it.value().is_object() && given[k].is_object())
        check_defaults(it.value(), given[k], want.value(k, Json::object()), at);
      continue;
    }
    if (!want.contains(k)) {
      FAIL_CHECK(at, ": resolved to ", it.value().dump(), ", but the test lists no default for it");
      continue;
    }
    if (it.value().is_object() && want[k].is_object()) {
      check_defaults(it.value(), Json::object(), want[k], at);
      continue;
    }
    CHECK_MESSAGE(same_value(it.value(), want[k]), at, ": resolved ", it.value().dump(),
                  ", the options struct holds ", want[k].dump());
  }
  for (auto it = want.begin(); it != want.end(); ++it)
    CHECK_MESSAGE(resolved.contains(it.key()), path, ".", it.key(),
                  ": a default the reader never resolved");
}

}  // namespace qkv::test

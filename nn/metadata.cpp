// Checkpoint metadata numbers: written to round-trip, read back strictly.
#include "nn/metadata.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

namespace qkv {
namespace {

// s parsed whole by parse(s, &end) without overflow; Error naming the key when not.
template <class T, class Parse>
T parse_whole(const std::string& s, const std::string& key, const std::string& who,
              const char* what, Parse parse) {
  char* end = nullptr;
  errno = 0;
  const T v = parse(s.c_str(), &end);
  check(!s.empty() && *end == '\0' && errno == 0, who, ": metadata '", key, "' is not ", what,
        ": '", s, "'");
  return v;
}

}  // namespace

std::string meta_string(double x) {
  char buf[40];
  for (int digits = 15; digits <= 17; ++digits) {  // 17 digits round-trip any double
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

std::string meta_string(bool b) { return b ? "true" : "false"; }

double parse_meta_double(const std::string& s, const std::string& key, const std::string& who) {
  return parse_whole<double>(s, key, who, "a number",
                             [](const char* p, char** end) { return std::strtod(p, end); });
}

int64_t parse_meta_int(const std::string& s, const std::string& key, const std::string& who) {
  return parse_whole<int64_t>(s, key, who, "an integer", [](const char* p, char** end) {
    return std::strtoll(p, end, 10);
  });
}

uint64_t parse_meta_uint(const std::string& s, const std::string& key, const std::string& who) {
  return parse_whole<uint64_t>(s, key, who, "an unsigned integer",
                               [](const char* p, char** end) -> unsigned long long {
                                 if (*p == '-') {  // strtoull would wrap "-1" to 2^64 - 1
                                   *end = const_cast<char*>(p);
                                   return 0;
                                 }
                                 return std::strtoull(p, end, 10);
                               });
}

bool parse_meta_bool(const std::string& s, const std::string& key, const std::string& who) {
  check(s == "true" || s == "false", who, ": metadata '", key, "' is not true/false: '", s, "'");
  return s == "true";
}

}  // namespace qkv

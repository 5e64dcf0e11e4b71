#include "nn/json_config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "engine/error.h"
#include "engine/memory.h"

namespace qkv {
namespace {

std::string show(const Json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

std::string fmt_num(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

}  // namespace

JsonReader::JsonReader(const Json& j, std::string path) : path_(std::move(path)) {
  check(j.is_object() || j.is_null(), path_.empty() ? "config" : path_,
        ": expected an object, got ", show(j));
  src_ = j.is_null() ? Json::object() : j;
}

std::string JsonReader::path_of(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool JsonReader::has(const std::string& key) const { return src_.contains(key); }

const Json* JsonReader::find(const std::string& key) {
  read_.insert(key);
  auto it = src_.find(key);
  return it == src_.end() ? nullptr : &*it;
}

int64_t JsonReader::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  const Json* v = find(key);
  int64_t x = def;
  if (v) {
    const bool integral =
        v->is_number_integer() ||
        (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
         std::fabs(v->get<double>()) < 9e15);
    check(integral, path_of(key), ": expected an integer, got ", show(*v));
    check(!v->is_number_unsigned() || v->get<uint64_t>() <= uint64_t(INT64_MAX), path_of(key),
          ": expected an integer, got ", show(*v), " (too large)");
    x = v->is_number_integer() ? v->get<int64_t>() : int64_t(v->get<double>());
  }
  if (x < lo || x > hi) {
    std::string range = lo == std::numeric_limits<int64_t>::min() ? "<= " + std::to_string(hi)
                        : hi == std::numeric_limits<int64_t>::max()
                            ? ">= " + std::to_string(lo)
                            : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    fail(path_of(key), ": expected an integer ", range, ", got ", x);
  }
  resolved_[key] = x;
  return x;
}

void JsonReader::check_fits(double bytes, const std::string& what,
                            const std::vector<std::string>& keys) const {
  if (bytes <= double(memory_limit())) [[likely]]  // the cheap test first; then with the live bytes
    if (bytes + double(live_bytes()) <= double(memory_limit())) return;
  std::string cause;
  for (const auto& k : keys) {
    if (!resolved_.contains(k)) continue;
    cause += cause.empty() ? " (" : ", ";
    cause += path_of(k) + " = " + resolved_.at(k).dump();
  }
  memory_check_fits(bytes, (path_.empty() ? "config" : path_) + ": " + what +
                               (cause.empty() ? "" : cause + ")"));
}

int64_t JsonReader::require_int(const std::string& key, int64_t lo, int64_t hi) {
  check(has(key), path_of(key), ": missing (required)");
  return get_int(key, 0, lo, hi);
}

double JsonReader::get_number(const std::string& key, double def, double lo, double hi,
                              bool lo_open) {
  const Json* v = find(key);
  double x = def;
  if (v) {
    check(v->is_number(), path_of(key), ": expected a number, got ", show(*v));
    x = v->get<double>();
  }
  const bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) {
    std::string range;
    if (std::isinf(hi)) range = (lo_open ? "> " : ">= ") + fmt_num(lo);
    else if (std::isinf(lo)) range = "<= " + fmt_num(hi);
    else range = std::string(lo_open ? "in (" : "in [") + fmt_num(lo) + ", " + fmt_num(hi) + "]";
    fail(path_of(key), ": expected a number ", range, ", got ", fmt_num(x));
  }
  resolved_[key] = x;
  return x;
}

double JsonReader::require_number(const std::string& key, double lo, double hi, bool lo_open) {
  check(has(key), path_of(key), ": missing (required)");
  return get_number(key, 0, lo, hi, lo_open);
}

float JsonReader::get_float(const std::string& key, float def, double lo, double hi, bool lo_open) {
  char buf[32];
  *std::to_chars(buf, buf + sizeof buf - 1, def).ptr = '\0';
  return float(get_number(key, std::strtod(buf, nullptr), lo, hi, lo_open));
}

bool JsonReader::get_bool(const std::string& key, bool def) {
  const Json* v = find(key);
  bool x = def;
  if (v) {
    check(v->is_boolean(), path_of(key), ": expected true or false, got ", show(*v));
    x = v->get<bool>();
  }
  resolved_[key] = x;
  return x;
}

std::string JsonReader::get_string(const std::string& key, const std::string& def,
                                   const std::vector<std::string>& choices) {
  const Json* v = find(key);
  std::string x = def;
  if (v) {
    check(v->is_string(), path_of(key), ": expected a string, got ", show(*v));
    x = v->get<std::string>();
  }
  if (!choices.empty()) {
    bool ok = false;
    std::string list;
    for (const auto& c : choices) {
      ok |= c == x;
      list += (list.empty() ? "" : ", ") + c;
    }
    check(ok, path_of(key), ": expected one of ", list, ", got \"", x, "\"");
  }
  resolved_[key] = x;
  return x;
}

std::string JsonReader::require_string(const std::string& key,
                                       const std::vector<std::string>& choices) {
  check(has(key), path_of(key), ": missing (required)");
  return get_string(key, "", choices);
}

Json JsonReader::get_raw(const std::string& key) {
  const Json* v = find(key);
  return v ? *v : Json();
}

JsonReader JsonReader::child(const std::string& key) {
  const Json* v = find(key);
  return JsonReader(v ? *v : Json::object(), path_of(key));
}

void JsonReader::set_child(const std::string& key, const JsonReader& c) {
  resolved_[key] = c.resolved();
}

void JsonReader::finish() const {
  for (auto it = src_.begin(); it != src_.end(); ++it) {
    if (read_.count(it.key())) continue;
    std::string known;
    for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
    fail(path_of(it.key()), ": unknown key", known.empty() ? "" : " (known: " + known + ")");
  }
}

void json_set_path(Json& root, const std::string& assignment) {
  try {  // keys and string values end up in JSON, which wants UTF-8 (and so does a terminal)
    (void)Json(assignment).dump();
  } catch (const Json::type_error&) {
    fail("--set: the assignment is not valid UTF-8");
  }
  const auto eq = assignment.find('=');
  check(eq != std::string::npos && eq > 0, "--set ", assignment,
        ": expected path=value (e.g. train.optimizer.lr=0.001)");
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // a bare word: a string
  Json* node = &root;
  std::string walked;
  size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos
                                                                         : dot - start);
    check(!key.empty(), "--set ", assignment, ": empty key in the path");
    walked += (walked.empty() ? "" : ".") + key;
    check(node->is_object() || node->is_null(), "--set ", assignment, ": ",
          walked.substr(0, walked.rfind('.')), " is not an object");
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    node = &(*node)[key];
    start = dot + 1;
  }
}

}  // namespace qkv

// qkv::Error and check(): the one way the engine reports bad input.
// check() is always on (API boundaries); hot inner loops use assert(), which
// release builds compile out. Message parts are only formatted on failure.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace qkv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;

// "[2,3,4]" for a shape; "[]" for a scalar.
std::string shape_str(const Shape& s);

namespace detail {
inline void put(std::ostringstream& o, const Shape& s) { o << shape_str(s); }
template <class T>
void put(std::ostringstream& o, const T& v) { o << v; }
}  // namespace detail

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream o;
  (detail::put(o, parts), ...);
  throw Error(o.str());
}

// check(n == m, "matmul: inner dimensions differ: ", a.shape(), " x ", b.shape());
template <class... Parts>
inline void check(bool ok, const Parts&... parts) {
  if (!ok) [[unlikely]] fail(parts...);
}

}  // namespace qkv

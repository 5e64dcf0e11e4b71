// The safetensors reader (weights, forward inputs, checkpoints): any bytes
// parse or fail with a qkv::Error, and what parses writes back and reads back
// the same (names, dtypes, shapes, values, metadata).
#include <cstring>

#include "fuzz/fuzz.h"
#include "nn/safetensors.h"

using namespace qkv;

namespace {

template <class T>
bool same(const TensorT<T>& a, const TensorT<T>& b) {
  return a.shape() == b.shape() &&
         (a.numel() == 0 || std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(T)) == 0);
}

template <class M>
bool same_maps(const M& a, const M& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !same(v, it->second)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  TensorFile f;
  try {
    f = parse_safetensors(fuzz::bytes(buf, size), "input");
  } catch (const Error&) {
    return 0;
  }
  const TensorFile g = parse_safetensors(serialize_safetensors(f), "round trip");
  fuzz::require(same_maps(f.floats, g.floats) && same_maps(f.ints, g.ints) && f.i64 == g.i64 &&
                f.metadata == g.metadata);
  return 0;
}

// safetensors I/O: the checkpoint format (https://github.com/huggingface/safetensors).
//
// A file is an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON,
// then the data section. Each header entry is
//   "name": {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}
// (offsets relative to the data section), plus an optional
// "__metadata__": {str: str}. Tensors are contiguous, little-endian, and cover
// the data section exactly: no gaps, no overlaps.
//
// Reading validates the whole header against the file size before it touches
// any data, so a truncated or hostile file fails with one qkv::Error naming the
// file and the tensor/field/offset, never with an out-of-bounds read. qkv reads
// F32, I32 and I64 (narrowed to int32, range-checked); it does not read
// F16/BF16/F64 or other dtypes, and it does not mmap (the file is read whole).
#pragma once
#include <map>
#include <set>
#include <string>

#include "engine/tensor.h"

namespace qkv {

// A named set of tensors as one safetensors file holds them. A name lives in
// at most one of `floats` and `ints`.
struct TensorFile {
  std::map<std::string, Tensor> floats;         // dtype F32
  std::map<std::string, IntTensor> ints;        // dtype I32, or I64 narrowed (range-checked)
  std::set<std::string> i64;                    // names in `ints` stored as I64 (read and write)
  std::map<std::string, std::string> metadata;  // "__metadata__" (string -> string)
};

// Header limit, as in the reference implementation: larger is a corrupt file.
inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

// Reads and validates `path`; errors read "PATH: what is wrong".
TensorFile load_safetensors(const std::string& path);
// Validates and decodes a whole file held in memory; `what` names it in messages.
TensorFile parse_safetensors(const std::string& bytes, const std::string& what);

// Deterministic bytes: tensors sorted by name (floats and ints merged), F32 for
// floats, I32 for ints (I64 for those named in `i64`), "__metadata__" first when non-empty, the header padded
// with spaces to a multiple of 8 so the data section starts 8-byte aligned.
std::string serialize_safetensors(const TensorFile& f);

// Atomic: writes path.tmp.<pid>, fsyncs it, renames over path, fsyncs the
// directory. A crash at any point leaves either the old file or the new one,
// never a torn file (at worst a stray path.tmp.<pid> beside it). On error
// nothing is left behind and `path` is untouched. The new file is mode 0644
// (less the umask); the old file's mode is not carried over.
void save_safetensors(const std::string& path, const TensorFile& f);

}  // namespace qkv

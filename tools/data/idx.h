// IDX files (the MNIST / Fashion-MNIST container), gzip'd or plain (zlib's
// inflate reads the gzip members, one or more, in memory). Only unsigned-byte data: images (magic 0x00000803, dims
// N x rows x cols) and labels (magic 0x00000801, dims N).
//
// Layout: 2 zero bytes, a dtype byte (0x08 = ubyte), a byte with the number of
// dimensions, one big-endian uint32 per dimension, then exactly prod(dims) bytes.
// Anything else (short header, wrong magic, a zero dimension, a payload shorter
// or longer than the header says, a corrupt or truncated gzip stream) is an
// Error naming the file and the byte offset (in the uncompressed data).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qkv::data {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major
};

// ndim: 3 (images) or 1 (labels): the magic must say so.
IdxArray idx_read(const std::string& path, int ndim);
// The same from the file's bytes (gzip'd or plain); name stands for the file in messages.
IdxArray idx_parse(std::string_view bytes, const std::string& name, int ndim);
IdxArray idx_read_images(const std::string& path);  // [N,rows,cols]
IdxArray idx_read_labels(const std::string& path);  // [N]

}  // namespace qkv::data

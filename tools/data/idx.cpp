// Reading IDX files (inflated through zlib when gzip'd), validating every byte count on the way.
#include "tools/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "engine/error.h"

namespace qkv::data {
namespace {

std::string hex32(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", x);
  return buf;
}

// The file's bytes, inflated on the way when they are gzip'd (one or more
// members, as gzip writes them), served as from a stream; counts the
// uncompressed offset for messages. A corrupt or truncated gzip stream throws.
class ByteReader {
 public:
  ByteReader(std::string_view in, const std::string& name) : in_(in), name_(name) {
    gzip_ = in.size() >= 2 && uint8_t(in[0]) == 0x1f && uint8_t(in[1]) == 0x8b;
    if (!gzip_) return;
    check(inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK, "idx: '", name, "': cannot start zlib");
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = uInt(std::min<size_t>(in.size(), UINT32_MAX));
    fed_ = zs_.avail_in;
  }
  ~ByteReader() {
    if (gzip_) inflateEnd(&zs_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Reads up to n bytes into p; returns how many (short only at the end of the data).
  size_t read(uint8_t* p, size_t n) {
    size_t got = 0;
    if (!gzip_) {
      got = std::min(n, in_.size() - pos_);
      std::memcpy(p, in_.data() + pos_, got);
      pos_ += got;
    } else {
      got = inflate_into(p, n);
    }
    offset_ += got;
    return got;
  }
  size_t offset() const { return offset_; }

 private:
  size_t inflate_into(uint8_t* p, size_t n) {
    size_t got = 0;
    while (got < n) {
      refill();
      if (member_done_) {
        if (zs_.avail_in == 0) break;  // the end of the data
        // Another member follows (gzip allows concatenation), or garbage: inflate says which.
        check(inflateReset(&zs_) == Z_OK, "idx: '", name_, "': cannot reset zlib");
        member_done_ = false;
      }
      zs_.next_out = p + got;
      zs_.avail_out = uInt(std::min<size_t>(n - got, 1u << 30));
      const uInt room = zs_.avail_out;
      const int r = inflate(&zs_, Z_NO_FLUSH);
      got += room - zs_.avail_out;
      if (r == Z_STREAM_END) {
        member_done_ = true;
      } else if (r != Z_OK) {  // Z_BUF_ERROR: the input ended inside a member
        fail_stream(offset_ + got);
      }
    }
    return got;
  }
  // zlib counts input in 32 bits: feeds the rest of a larger file in pieces.
  void refill() {
    if (zs_.avail_in > 0 || fed_ >= in_.size()) return;
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in_.data() + fed_));
    zs_.avail_in = uInt(std::min<size_t>(in_.size() - fed_, UINT32_MAX));
    fed_ += zs_.avail_in;
  }
  [[noreturn]] void fail_stream(size_t at) {
    fail("idx: '", name_, "': corrupt or truncated gzip data near uncompressed byte ", at,
         " (zlib: ", zs_.msg ? zs_.msg : "unexpected end of data", ")");
  }
  std::string_view in_;
  std::string name_;
  bool gzip_ = false, member_done_ = false;
  z_stream zs_{};
  size_t pos_ = 0, fed_ = 0, offset_ = 0;
};

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

IdxArray idx_read(const std::string& path, int ndim) {
  std::ifstream file(path, std::ios::binary);
  check(bool(file), "idx: cannot open '", path, "'");
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return idx_parse(bytes.str(), path, ndim);
}

IdxArray idx_parse(std::string_view bytes, const std::string& path, int ndim) {
  check(ndim == 1 || ndim == 3, "idx_read: ndim must be 1 or 3, got ", ndim);
  ByteReader in(bytes, path);
  const uint32_t want = 0x00000800u | uint32_t(ndim);
  const char* kind = ndim == 3 ? "images" : "labels";

  uint8_t head[4];
  size_t got = in.read(head, 4);
  check(got == 4, "idx: '", path, "': file ends at byte ", got,
        ", inside the 4-byte magic (expected ", hex32(want), ", ", kind, ")");
  const uint32_t magic = be32(head);
  check(magic == want, "idx: '", path, "': byte 0: expected magic ", hex32(want), " (", kind,
        ", unsigned bytes, ", ndim, " dims), got ", hex32(magic));

  IdxArray a;
  uint64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    uint8_t b[4];
    const size_t at = in.offset();
    got = in.read(b, 4);
    check(got == 4, "idx: '", path, "': file ends at byte ", at + got, ", inside dimension ", i,
          " (bytes ", at, "..", at + 3, ")");
    const uint32_t d = be32(b);
    check(d >= 1, "idx: '", path, "': byte ", at, ": dimension ", i, " is 0");
    total *= d;
    check(total <= (uint64_t(1) << 34), "idx: '", path, "': byte ", at, ": dimensions too large (",
          total, "+ bytes)");
    a.dims.push_back(int64_t(d));
  }
  const size_t start = in.offset();
  // Grown as the data arrives (doubling), not to the header's claim at once: a
  // short file whose header promises 16 GiB fails as truncated, allocating little.
  got = 0;
  while (got < total) {
    const size_t want = std::min<size_t>(size_t(total) - got, std::max<size_t>(got, 1 << 16));
    a.data.resize(got + want);
    const size_t n = in.read(a.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  check(got == total, "idx: '", path, "': truncated: the header promises ", total,
        " data bytes from byte ", start, " but the file ends at byte ", start + got);
  uint8_t extra;
  check(in.read(&extra, 1) == 0, "idx: '", path, "': byte ", start + total,
        ": unexpected data after the ", total, " bytes the header promises");
  return a;
}

IdxArray idx_read_images(const std::string& path) { return idx_read(path, 3); }
IdxArray idx_read_labels(const std::string& path) { return idx_read(path, 1); }

}  // namespace qkv::data

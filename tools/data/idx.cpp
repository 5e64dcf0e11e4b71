// Reading IDX files through zlib, validating every byte count on the way.
#include "tools/data/idx.h"

#include <zlib.h>

#include <cstdio>
#include <limits>
#include <memory>

#include "engine/error.h"

namespace qkv::data {
namespace {

std::string hex32(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", x);
  return buf;
}

// A gzFile that closes itself; reads report zlib's own error text.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    check(f_ != nullptr, "idx: cannot open '", path, "'");
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes into p; returns how many (short only at the end of the
  // data). A corrupt or truncated gzip stream throws, naming the offset.
  size_t read(uint8_t* p, size_t n) {
    size_t got = 0;
    while (got < n) {
      const unsigned chunk = unsigned(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(f_, p + got, chunk);
      if (r < 0 || (r == 0 && !gzeof(f_))) fail_stream();
      if (r == 0) break;
      got += size_t(r);
    }
    // zlib reports a truncated stream as end of data with Z_BUF_ERROR set.
    int err = Z_OK;
    gzerror(f_, &err);
    if (err != Z_OK) fail_stream();
    offset_ += got;
    return got;
  }
  size_t offset() const { return offset_; }

 private:
  [[noreturn]] void fail_stream() {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    fail("idx: '", path_, "': corrupt or truncated gzip data near uncompressed byte ", offset_,
         " (zlib: ", msg ? msg : "?", ")");
  }
  std::string path_;
  gzFile f_;
  size_t offset_ = 0;
};

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

IdxArray idx_read(const std::string& path, int ndim) {
  check(ndim == 1 || ndim == 3, "idx_read: ndim must be 1 or 3, got ", ndim);
  GzReader in(path);
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
  a.data.resize(size_t(total));
  got = in.read(a.data.data(), a.data.size());
  check(got == a.data.size(), "idx: '", path, "': truncated: the header promises ", total,
        " data bytes from byte ", start, " but the file ends at byte ", start + got);
  uint8_t extra;
  check(in.read(&extra, 1) == 0, "idx: '", path, "': byte ", start + total,
        ": unexpected data after the ", total, " bytes the header promises");
  return a;
}

IdxArray idx_read_images(const std::string& path) { return idx_read(path, 3); }
IdxArray idx_read_labels(const std::string& path) { return idx_read(path, 1); }

}  // namespace qkv::data

// safetensors reading (validate everything, then copy) and writing (one plan,
// serialised to memory or streamed to a temporary file that is renamed into place).
#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

namespace qkv {

// Tensors are copied byte for byte between file and memory.
static_assert(std::endian::native == std::endian::little,
              "safetensors.cpp assumes a little-endian host (the format is little-endian)");

namespace {

using json = nlohmann::json;

enum class Dtype { f32, i32, i64 };

uint64_t dtype_size(Dtype d) { return d == Dtype::i64 ? 8 : 4; }

// ---- message helpers ----------------------------------------------------------
// Messages stay one line whatever a hostile header holds: control characters are
// escaped and long names or values are cut.

// ascii: also escape bytes >= 0x80 (for strings that may not be valid UTF-8).
std::string quote_name(std::string_view s, bool ascii = false) {
  constexpr size_t kMax = 120;
  std::string out = "'";
  size_t n = s.size();
  if (n > kMax) {
    n = kMax;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // whole UTF-8 chars
  }
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F || (ascii && c >= 0x80)) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

// A JSON value as a short one-line excerpt: "got -3", "got \"x\"".
std::string brief(const json& j) {
  std::string s = j.dump();  // parsed JSON is valid UTF-8, so dump() cannot throw
  if (s.size() > 40) {
    size_t n = 40;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n) + "...";
  }
  return s;
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  std::string s = "[";  // appended, not "[" + ...: GCC 12 warns falsely (-Wrestrict)
  s += std::to_string(begin);
  s += ',';
  s += std::to_string(end);
  return s + "]";
}

// ---- header -------------------------------------------------------------------

// A valid header nests three deep: {name: {"shape": [..]}}. Anything deeper is
// rejected while parsing, which also keeps a hostile "[[[[..." from costing
// memory or stack.
constexpr int kMaxDepth = 2;  // depth of the innermost container (root = 0)

// Parses the header text, rejecting duplicate keys (nlohmann keeps the last one
// silently) and nesting deeper than a header can have.
json header_parse(std::string_view text, const std::string& what) {
  // nlohmann's lexer treats a NUL byte as end of input, so "{...}\0junk" would
  // parse. A NUL is never valid in JSON text (strings must escape it).
  size_t nul = text.find('\0');
  check(nul == std::string_view::npos, what, ": header contains a NUL byte at offset ", nul + 8);

  struct Frame {
    std::optional<std::string> parent;  // the key this object sits under, if any
    std::set<std::string> keys;
  };
  std::vector<Frame> frames;
  std::optional<std::string> last_key;
  auto on_event = [&](int depth, json::parse_event_t ev, json& v) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        check(depth <= kMaxDepth, what, ": header nests deeper (", depth + 1,
              " levels) than a safetensors header can (", kMaxDepth + 1, ")");
        if (ev == json::parse_event_t::object_start) {
          frames.push_back({depth == 0 ? std::nullopt : last_key, {}});
        }
        break;
      case json::parse_event_t::object_end:
        frames.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = v.get_ref<const std::string&>();
        Frame& f = frames.back();
        if (!f.keys.insert(k).second) {
          if (depth == 1 && k == "__metadata__")
            fail(what, ": duplicate '__metadata__' in the header");
          if (depth == 1) fail(what, ": duplicate tensor name ", quote_name(k), " in the header");
          if (depth == 2 && f.parent == "__metadata__")
            fail(what, ": duplicate metadata key ", quote_name(k));
          if (depth == 2 && f.parent)
            fail(what, ": tensor ", quote_name(*f.parent), " has duplicate field ", quote_name(k));
          fail(what, ": duplicate key ", quote_name(k), " in the header");
        }
        last_key = k;
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {  // parse_error; out_of_range for a number past double's range
    std::string m = e.what();
    size_t skip = m.find("] ");  // drop "[json.exception.parse_error.101] "
    fail(what, ": header is not valid JSON: ", skip == std::string::npos ? m : m.substr(skip + 2));
  }
}

struct Entry {
  std::string name;
  Dtype dtype = Dtype::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // relative to the data section
};

bool is_index(const json& j) { return j.is_number_unsigned(); }  // integer >= 0, fits u64

// One tensor entry, validated against the data section size.
Entry entry_parse(const std::string& name, const json& v, uint64_t data_size,
                  const std::string& what) {
  const std::string t = "tensor " + quote_name(name);
  if (!v.is_object()) fail(what, ": ", t, " entry is not an object (got ", brief(v), ")");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    check(v.contains(field), what, ": ", t, " is missing field '", field, "'");
  for (const auto& [k, _] : v.items()) {
    check(k == "dtype" || k == "shape" || k == "data_offsets", what, ": ", t, " has unknown field ",
          quote_name(k));
  }

  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) fail(what, ": ", t, " dtype is not a string (got ", brief(dt), ")");
  const std::string& ds = dt.get_ref<const std::string&>();
  if (ds == "F32")
    e.dtype = Dtype::f32;
  else if (ds == "I32")
    e.dtype = Dtype::i32;
  else if (ds == "I64")
    e.dtype = Dtype::i64;
  else
    fail(what, ": unsupported dtype ", quote_name(ds), " for ", t, " (qkv reads F32, I32, I64)");

  const json& sh = v["shape"];
  if (!sh.is_array()) fail(what, ": ", t, " shape is not an array (got ", brief(sh), ")");
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < sh.size(); ++i) {
    const json& d = sh[i];
    if (!is_index(d)) {
      fail(what, ": ", t, " shape[", i, "] is not a non-negative integer (got ", brief(d), ")");
    }
    uint64_t n = d.get<uint64_t>();
    overflow |= n > uint64_t(std::numeric_limits<int64_t>::max()) ||
                __builtin_mul_overflow(numel, n, &numel);
    if (!overflow) e.shape.push_back(int64_t(n));
  }
  uint64_t bytes = 0;
  overflow |= numel > uint64_t(std::numeric_limits<int64_t>::max()) ||
              __builtin_mul_overflow(numel, dtype_size(e.dtype), &bytes);
  if (overflow) fail(what, ": ", t, " shape ", brief(sh), " has too many elements (overflow)");

  const json& off = v["data_offsets"];
  if (!(off.is_array() && off.size() == 2 && is_index(off[0]) && is_index(off[1]))) {
    fail(what, ": ", t, " data_offsets is not two non-negative integers (got ", brief(off), ")");
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  const std::string os = offsets_str(e.begin, e.end);
  check(e.begin <= e.end, what, ": ", t, " data_offsets ", os, " begin after end");
  check(e.end - e.begin == bytes, what, ": ", t, " data_offsets ", os, " hold ", e.end - e.begin,
        " bytes but shape ", e.shape, " ", ds, " needs ", bytes);
  check(e.end <= data_size, what, ": ", t, " data_offsets ", os, " exceed the data section (",
        data_size, " bytes)");
  return e;
}

void metadata_parse(const json& v, std::map<std::string, std::string>& out,
                    const std::string& what) {
  if (!v.is_object()) fail(what, ": __metadata__ is not an object (got ", brief(v), ")");
  for (const auto& [k, s] : v.items()) {
    if (!s.is_string())
      fail(what, ": metadata ", quote_name(k), " is not a string (got ", brief(s), ")");
    out.emplace(k, s.get<std::string>());
  }
}

// The spec: tensors cover the data section exactly, in offset order.
void coverage_check(std::vector<Entry>& entries, uint64_t data_size, const std::string& what) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;  // the last non-empty tensor: it ends at pos
  for (const Entry& e : entries) {
    if (e.begin < pos) {
      fail(what, ": tensors ", quote_name(prev->name), " and ", quote_name(e.name),
           " overlap: data_offsets ", offsets_str(prev->begin, prev->end), " and ",
           offsets_str(e.begin, e.end));
    }
    if (e.begin > pos) {
      fail(what, ": gap in the data section: bytes ", offsets_str(pos, e.begin), " before tensor ",
           quote_name(e.name), " belong to no tensor");
    }
    if (e.end > e.begin) prev = &e;  // an empty tensor overlaps nothing
    pos = e.end;
  }
  check(pos == data_size, what, ": gap in the data section: trailing bytes ",
        offsets_str(pos, data_size), " belong to no tensor");
}

template <class T>
TensorT<T> tensor_copy(const Entry& e, const char* data) {
  TensorT<T> t(e.shape);
  std::memcpy(t.data(), data + e.begin, e.end - e.begin);
  return t;
}

IntTensor tensor_narrow_i64(const Entry& e, const char* data, const std::string& what) {
  IntTensor t(e.shape);
  const char* src = data + e.begin;
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t v;
    std::memcpy(&v, src + 8 * i, 8);
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      fail(what, ": tensor ", quote_name(e.name), " (I64) element ", i, " value ", v,
           " is outside the int32 range");
    }
    t.data()[i] = int32_t(v);
  }
  return t;
}

// ---- writing --------------------------------------------------------------------

struct Piece {
  const std::string* name;
  const char* dtype;
  const Shape* shape;
  const void* data;
  uint64_t bytes;
};

// The bytes before the data section, and the tensors in file order.
struct Plan {
  std::string head;  // u64 length + padded JSON header
  std::vector<Piece> pieces;
  std::deque<std::vector<int64_t>> widened;  // I64 copies of int32 tensors (stable addresses)
};

std::string json_string(const std::string& s, const char* op, const std::string& label) {
  try {
    return json(s).dump();
  } catch (const json::type_error&) {
    fail(op, ": ", label, " is not valid UTF-8");
  }
}

Plan plan_build(const TensorFile& f, const char* op) {
  Plan p;
  for (const auto& [name, t] : f.floats) {
    check(t.defined(), op, ": tensor ", quote_name(name), " is undefined");
    p.pieces.push_back({&name, "F32", &t.shape(), t.data(), uint64_t(t.numel()) * 4});
  }
  for (const auto& [name, t] : f.ints) {
    check(!f.floats.count(name), op, ": tensor ", quote_name(name), " is in both floats and ints");
    check(t.defined(), op, ": tensor ", quote_name(name), " is undefined");
    if (f.i64.count(name)) {
      p.widened.emplace_back(t.begin(), t.end());
      p.pieces.push_back({&name, "I64", &t.shape(), p.widened.back().data(), uint64_t(t.numel()) * 8});
    } else {
      p.pieces.push_back({&name, "I32", &t.shape(), t.data(), uint64_t(t.numel()) * 4});
    }
  }
  std::sort(p.pieces.begin(), p.pieces.end(),
            [](const Piece& a, const Piece& b) { return *a.name < *b.name; });

  std::string h = "{";
  if (!f.metadata.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : f.metadata) {
      if (h.back() != '{') h += ',';
      h += json_string(k, op, "metadata key " + quote_name(k, true)) + ":" +
           json_string(v, op, "metadata " + quote_name(k, true));
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const Piece& pc : p.pieces) {
    check(*pc.name != "__metadata__", op, ": '__metadata__' is reserved, not a tensor name");
    if (h.size() > 1) h += ',';
    h += json_string(*pc.name, op, "tensor name " + quote_name(*pc.name, true));
    h += ":{\"dtype\":\"";
    h += pc.dtype;
    h += "\",\"shape\":[";
    for (size_t i = 0; i < pc.shape->size(); ++i) {
      if (i) h += ',';
      h += std::to_string((*pc.shape)[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + pc.bytes) +
         "]}";
    offset += pc.bytes;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  check(h.size() <= kSafetensorsMaxHeader, op, ": header of ", h.size(),
        " bytes exceeds the limit of ", kSafetensorsMaxHeader);

  uint64_t n = h.size();
  p.head.resize(8);
  std::memcpy(p.head.data(), &n, 8);  // little-endian host (static_assert above)
  p.head += h;
  return p;
}

// ---- POSIX file helpers ---------------------------------------------------------

// fail(parts..., ": ", strerror(err)). Callers pass errno right after the failed
// call, in a statement of its own: check()'s arguments would be evaluated in an
// unspecified order, possibly before the call that sets errno.
template <class... Parts>
[[noreturn]] void fail_errno(int err, const Parts&... parts) {
  fail(parts..., ": ", std::strerror(err));
}

void write_all(int fd, const void* data, uint64_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<uint64_t>(n, uint64_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno(errno, "save_safetensors: cannot write '", path, "'");
    if (w == 0) fail_errno(EIO, "save_safetensors: cannot write '", path, "'");
    p += w;
    n -= uint64_t(w);
  }
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

// ---- public ---------------------------------------------------------------------

TensorFile parse_safetensors(const std::string& bytes, const std::string& what) {
  check(bytes.size() >= 8, what, ": file is ", bytes.size(),
        " bytes, shorter than the 8-byte header length");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  const uint64_t rest = bytes.size() - 8;
  check(n <= kSafetensorsMaxHeader, what, ": header length ", n, " is absurd (limit ",
        kSafetensorsMaxHeader, " bytes)");
  check(n <= rest, what, ": header length ", n, " exceeds the file (", rest,
        " bytes after the length field)");
  json header = header_parse(std::string_view(bytes.data() + 8, n), what);
  check(header.is_object(), what, ": header is not a JSON object (got ", header.type_name(), ")");

  const char* data = bytes.data() + 8 + n;
  const uint64_t data_size = rest - n;
  TensorFile out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__")
      metadata_parse(v, out.metadata, what);
    else
      entries.push_back(entry_parse(name, v, data_size, what));
  }
  coverage_check(entries, data_size, what);

  // Every offset is now known to lie inside the data section.
  for (const Entry& e : entries) {
    switch (e.dtype) {
      case Dtype::f32:
        out.floats.emplace(e.name, tensor_copy<float>(e, data));
        break;
      case Dtype::i32:
        out.ints.emplace(e.name, tensor_copy<int32_t>(e, data));
        break;
      case Dtype::i64:
        out.ints.emplace(e.name, tensor_narrow_i64(e, data, what));
        out.i64.insert(e.name);
        break;
    }
  }
  return out;
}

TensorFile load_safetensors(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(errno, "load_safetensors: cannot open '", path, "'");
  std::string bytes;
  struct stat st;
  int err = ::fstat(fd, &st) == 0 ? 0 : errno;
  if (!err && S_ISDIR(st.st_mode)) err = EISDIR;
  if (!err) {
    bytes.resize(size_t(st.st_size));
    size_t got = 0;
    while (got < bytes.size()) {
      ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        err = errno;
        break;
      }
      if (r == 0) break;  // the file shrank under us: parse what is there
      got += size_t(r);
    }
    bytes.resize(got);
  }
  ::close(fd);
  if (err) fail_errno(err, "load_safetensors: cannot read '", path, "'");
  return parse_safetensors(bytes, path);
}

std::string serialize_safetensors(const TensorFile& f) {
  Plan p = plan_build(f, "serialize_safetensors");
  std::string out = std::move(p.head);
  for (const Piece& pc : p.pieces) out.append(static_cast<const char*>(pc.data), pc.bytes);
  return out;
}

void save_safetensors(const std::string& path, const TensorFile& f) {
  Plan p = plan_build(f, "save_safetensors");  // before touching the disk
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    fail("save_safetensors: cannot create '", tmp, "' (to write '", path,
         "'): ", std::strerror(err), err == ENOENT ? " (does the directory exist?)" : "");
  }
  try {
    write_all(fd, p.head.data(), p.head.size(), tmp);
    for (const Piece& pc : p.pieces) write_all(fd, pc.data, pc.bytes, tmp);
    if (::fsync(fd) != 0) fail_errno(errno, "save_safetensors: cannot fsync '", tmp, "'");
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) fail_errno(errno, "save_safetensors: cannot close '", tmp, "'");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      fail_errno(errno, "save_safetensors: cannot rename '", tmp, "' to '", path, "'");
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }

  // The rename is durable only once the directory entry is on disk.
  const std::string dir = dir_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    fail_errno(errno, "save_safetensors: wrote '", path, "' but cannot open its directory '", dir,
               "' to fsync it");
  }
  int rc = ::fsync(dfd);
  int err = rc == 0 ? 0 : errno;
  ::close(dfd);
  // EINVAL: the file system does not support fsync on directories (nothing to do).
  if (err != 0 && err != EINVAL) {
    fail_errno(err, "save_safetensors: wrote '", path, "' but cannot fsync its directory '", dir,
               "'");
  }
}

}  // namespace qkv

// safetensors: round trips (every dtype qkv keeps, empty tensors, scalars, rank
// 8, unicode names, NaN/-0/Inf bits); the header bytes pinned against a file
// built by hand; a file laid out as the reference writer lays it out (I64,
// padding) built byte by byte; every rejection, each with its message; every
// truncated prefix and single-byte corruptions of a valid file; atomic saves.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nn/safetensors.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// ---- byte builders ------------------------------------------------------------

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xFF);
  return s;
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());  // little-endian host
  return s;
}

// A file from header text and data, with no padding (readers must not need it).
std::string st(const std::string& header, const std::string& data = "") {
  return u64le(header.size()) + header + data;
}

// Parses an exact-size heap copy, so under ASan a read past the end is an error,
// not a read of the spare capacity the builders left behind.
std::string err(const std::string& bytes) {
  std::string exact(bytes);
  exact.shrink_to_fit();
  return test::error_of([&] { parse_safetensors(exact, "t.st"); });
}

// The message for a one-tensor file: entry `w` as given, `data_bytes` zero bytes.
std::string err_w(const std::string& entry, size_t data_bytes) {
  return err(st("{\"w\":" + entry + "}", std::string(data_bytes, '\0')));
}

template <class T>
bool same_bits(const TensorT<T>& a, const TensorT<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(T)) == 0;
}

// ---- files --------------------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/qkv_st_XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A small file with every kind of entry, for the truncation and corruption sweeps.
TensorFile small_file() {
  TensorFile f;
  f.floats["a.weight"] = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  f.floats["b"] = Tensor::scalar(-1.5f);
  f.floats["empty"] = Tensor::zeros({0, 4});
  f.ints["ids"] = IntTensor::from({3}, {7, -100, 1 << 30});
  f.metadata["step"] = "12";
  return f;
}

}  // namespace

TEST_SUITE("nn/safetensors") {
  // ---- round trips ---------------------------------------------------------------

  TEST_CASE("round trip: floats, ints, metadata, empty, scalars, rank 8, unicode names") {
    const float inf = std::numeric_limits<float>::infinity();
    TensorFile f;
    f.floats["encoder.layers.0.self_attn.in_proj_weight"] = test::rand_tensor({6, 4}, 1);
    f.floats["scalar"] = Tensor::scalar(2.5f);
    f.floats["empty"] = Tensor::zeros({0});
    f.floats["empty.3d"] = Tensor::zeros({3, 0, 2});
    f.floats["rank8"] = test::rand_tensor({2, 1, 2, 1, 2, 1, 2, 3}, 2);
    f.floats["ünïcødé.名前.✓"] = Tensor::from({2}, {1.f, -2.f});
    f.floats["specials"] =
        Tensor::from({6}, {std::nanf(""), -0.f, inf, -inf, std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::max()});
    f.ints["ids"] = IntTensor::from({2, 3}, {std::numeric_limits<int32_t>::min(),
                                             std::numeric_limits<int32_t>::max(), -100, 0, 1, 2});
    f.ints["lengths.scalar"] = IntTensor::scalar(42);
    f.ints["iempty"] = IntTensor::zeros({0, 5});
    f.metadata["step"] = "12";
    f.metadata["config"] = "{\"layers\": [1, 2], \"name\": \"x\\ny\"}";
    f.metadata["ü"] = "√ and a \"quote\"";
    f.metadata["empty"] = "";

    const std::string bytes = serialize_safetensors(f);
    TensorFile g = parse_safetensors(bytes, "mem");
    REQUIRE(g.floats.size() == f.floats.size());
    REQUIRE(g.ints.size() == f.ints.size());
    for (const auto& [name, t] : f.floats) {
      INFO(name);
      REQUIRE(g.floats.count(name));
      CHECK(same_bits(g.floats.at(name), t));
    }
    for (const auto& [name, t] : f.ints) {
      INFO(name);
      REQUIRE(g.ints.count(name));
      CHECK(same_bits(g.ints.at(name), t));
    }
    CHECK(g.metadata == f.metadata);
    CHECK(g.floats.at("rank8").dim() == 8);
    CHECK(g.floats.at("scalar").shape() == Shape{});

    // Deterministic, and a fixed point: writing what was read gives the same bytes.
    CHECK(serialize_safetensors(f) == bytes);
    CHECK(serialize_safetensors(g) == bytes);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);

    // Through a file as well.
    TempDir dir;
    save_safetensors(dir / "m.safetensors", f);
    CHECK(read_all(dir / "m.safetensors") == bytes);
    TensorFile h = load_safetensors(dir / "m.safetensors");
    CHECK(serialize_safetensors(h) == bytes);
  }

  TEST_CASE("round trip: an empty file set") {
    const std::string bytes = serialize_safetensors(TensorFile{});
    CHECK(bytes == u64le(8) + "{}      ");
    TensorFile g = parse_safetensors(bytes, "mem");
    CHECK(g.floats.empty());
    CHECK(g.ints.empty());
    CHECK(g.metadata.empty());
  }

  // ---- the format, pinned --------------------------------------------------------

  TEST_CASE("header bytes match a file built by hand") {
    TensorFile f;
    f.floats["b"] = Tensor::from({2}, {1.f, 2.f});
    f.ints["a"] = IntTensor::scalar(7);
    f.metadata["k"] = "v";
    // 132 bytes of JSON + 4 spaces = 136 = 0x88; names sorted, metadata first,
    // fields in the reference order (dtype, shape, data_offsets); data: a (I32 7),
    // then b (F32 1.0 = 0x3f800000, 2.0 = 0x40000000), all little-endian.
    const std::string want =
        std::string("\x88\0\0\0\0\0\0\0", 8) +
        "{\"__metadata__\":{\"k\":\"v\"},"
        "\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}    " +
        std::string(
            "\x07\0\0\0"
            "\0\0\x80\x3f"
            "\0\0\0\x40",
            12);
    CHECK(serialize_safetensors(f) == want);
    TensorFile g = parse_safetensors(want, "hand");
    CHECK(g.ints.at("a").item() == 7);
    CHECK(g.floats.at("b").to_vector() == std::vector<float>{1.f, 2.f});
    CHECK(g.metadata.at("k") == "v");
  }

  TEST_CASE("a file laid out as the reference writer does it: I64 first, padded header") {
    // safetensors.torch.save_file orders by dtype (8-byte I64 before F32), then by
    // name, and pads the JSON with spaces to a multiple of 8 (145 + 7 = 152).
    const std::string header =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"ids\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[32,44]}}";
    REQUIRE(header.size() == 145);
    const std::string bytes = u64le(152) + header + std::string(7, ' ') +
                              raw_bytes<int64_t>({1, -100, 2147483647, -2147483648LL}) +
                              raw_bytes<float>({0.5f, -1.f, 3.f});
    TempDir dir;
    write_all(dir / "torch.safetensors", bytes);
    TensorFile f = load_safetensors(dir / "torch.safetensors");
    CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});
    REQUIRE(f.ints.count("ids"));
    CHECK(f.ints.at("ids").shape() == Shape{2, 2});
    CHECK(f.ints.at("ids").to_vector() ==
          std::vector<int32_t>{1, -100, 2147483647, std::numeric_limits<int32_t>::min()});
    REQUIRE(f.floats.count("w"));
    CHECK(f.floats.at("w").to_vector() == std::vector<float>{0.5f, -1.f, 3.f});
  }

  TEST_CASE("offsets in any header order; empty tensors anywhere") {
    // Names sort as a, b, e, z; the data holds z then a; empty tensors sit at
    // offset 0, between the two and at the end.
    const std::string bytes =
        st("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
           "\"e\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[8,8]},"
           "\"y\":{\"dtype\":\"F32\",\"shape\":[0,7],\"data_offsets\":[0,0]},"
           "\"z\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
           raw_bytes<float>({9.f}) + raw_bytes<int32_t>({-3}));
    TensorFile f = parse_safetensors(bytes, "mem");
    CHECK(f.floats.at("z").item() == 9.f);
    CHECK(f.ints.at("a").to_vector() == std::vector<int32_t>{-3});
    CHECK(f.floats.at("b").numel() == 0);
    CHECK(f.ints.at("e").shape() == Shape{2, 0});
    CHECK(f.floats.at("y").shape() == Shape{0, 7});
  }

  // ---- rejections -----------------------------------------------------------------

  TEST_CASE("rejects: short files, header lengths, bad JSON") {
    CHECK(err("") == "t.st: file is 0 bytes, shorter than the 8-byte header length");
    CHECK(err("abcdefg") == "t.st: file is 7 bytes, shorter than the 8-byte header length");
    CHECK(err(u64le(100) + "{}") ==
          "t.st: header length 100 exceeds the file (2 bytes after the length field)");
    CHECK(err(u64le(uint64_t(1) << 40) + "{}") ==
          "t.st: header length 1099511627776 is absurd (limit 100000000 bytes)");
    CHECK(err(u64le(~uint64_t(0)) + "{}") ==
          "t.st: header length 18446744073709551615 is absurd (limit 100000000 bytes)");
    CHECK(err(st("")).rfind("t.st: header is not valid JSON: parse error at line 1, column 1", 0) ==
          0);
    CHECK(err(st("{\"w\":")).rfind("t.st: header is not valid JSON: parse error", 0) == 0);
    CHECK(err(st("{\"\xff\":1}")).rfind("t.st: header is not valid JSON: ", 0) == 0);  // not UTF-8
    CHECK(err(st("{} x")).rfind("t.st: header is not valid JSON: ", 0) == 0);
    CHECK(err(st("[]")) == "t.st: header is not a JSON object (got array)");
    CHECK(err(st("\"w\"")) == "t.st: header is not a JSON object (got string)");
    // nlohmann stops at a NUL as if at the end of input; qkv does not.
    CHECK(err(st(std::string("{}\0junk", 7))) == "t.st: header contains a NUL byte at offset 10");
    CHECK(err(st("{\"w\":{\"shape\":[[1]]}}")) ==
          "t.st: header nests deeper (4 levels) than a safetensors header can (3)");
    // One line, whatever the names hold.
    CHECK(err(st("{\"a\\nb\":3}")) == "t.st: tensor 'a\\x0ab' entry is not an object (got 3)");
  }

  TEST_CASE("rejects: duplicate names, fields and metadata keys") {
    const std::string w4 = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
    const std::string w8 = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}";
    CHECK(err(st("{\"w\":" + w4 + ",\"w\":" + w8 + "}", std::string(8, '\0'))) ==
          "t.st: duplicate tensor name 'w' in the header");
    CHECK(err_w("{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4) ==
          "t.st: tensor 'w' has duplicate field 'dtype'");
    CHECK(err(st("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}")) ==
          "t.st: duplicate metadata key 'a'");
    CHECK(err(st("{\"__metadata__\":{},\"__metadata__\":{}}")) ==
          "t.st: duplicate '__metadata__' in the header");
  }

  TEST_CASE("rejects: entry structure, dtype, shape") {
    CHECK(err_w("3", 0) == "t.st: tensor 'w' entry is not an object (got 3)");
    CHECK(err_w("[\"F32\",[1],[0,4]]", 4) ==
          "t.st: tensor 'w' entry is not an object (got [\"F32\",[1],[0,4]])");
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":[0]}", 0) ==
          "t.st: tensor 'w' is missing field 'data_offsets'");
    CHECK(err_w("{\"shape\":[0],\"data_offsets\":[0,0]}", 0) ==
          "t.st: tensor 'w' is missing field 'dtype'");
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"offsets\":[0,0]}", 0) ==
          "t.st: tensor 'w' has unknown field 'offsets'");
    CHECK(err_w("{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}", 4) ==
          "t.st: tensor 'w' dtype is not a string (got 32)");
    for (const char* dt : {"F16", "BF16", "F64", "I8", "U8", "BOOL", "f32", ""}) {
      CHECK(err_w(std::string("{\"dtype\":\"") + dt + "\",\"shape\":[1],\"data_offsets\":[0,4]}",
                  4) == std::string("t.st: unsupported dtype '") + dt +
                            "' for tensor 'w' (qkv reads F32, I32, I64)");
    }
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}", 8) ==
          "t.st: tensor 'w' shape is not an array (got \"2\")");
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}", 8) ==
          "t.st: tensor 'w' shape[1] is not a non-negative integer (got -1)");
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}", 8) ==
          "t.st: tensor 'w' shape[0] is not a non-negative integer (got 2.0)");
    CHECK(err_w("{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}", 8) ==
          "t.st: tensor 'w' shape[0] is not a non-negative integer (got null)");
    CHECK(
        err_w("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}", 0) ==
        "t.st: tensor 'w' shape [4294967296,4294967296] has too many elements (overflow)");
    // numel fits in 64 bits, bytes do not; and a dimension beyond int64 beside a 0.
    CHECK(err_w("{\"dtype\":\"I64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}", 0) ==
          "t.st: tensor 'w' shape [4611686018427387904] has too many elements (overflow)");
    CHECK(
        err_w("{\"dtype\":\"F32\",\"shape\":[0,9223372036854775808],\"data_offsets\":[0,0]}", 0) ==
        "t.st: tensor 'w' shape [0,9223372036854775808] has too many elements (overflow)");
  }

  TEST_CASE("rejects: data_offsets, sizes, bounds, coverage") {
    auto w = [](const std::string& shape, const std::string& offsets) {
      return "{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    };
    CHECK(err_w(w("[1]", "[0]"), 4) ==
          "t.st: tensor 'w' data_offsets is not two non-negative integers (got [0])");
    CHECK(err_w(w("[1]", "[0,4,8]"), 4) ==
          "t.st: tensor 'w' data_offsets is not two non-negative integers (got [0,4,8])");
    CHECK(err_w(w("[1]", "[-4,0]"), 4) ==
          "t.st: tensor 'w' data_offsets is not two non-negative integers (got [-4,0])");
    CHECK(err_w(w("[1]", "\"0,4\""), 4) ==
          "t.st: tensor 'w' data_offsets is not two non-negative integers (got \"0,4\")");
    CHECK(err_w(w("[1]", "[8,4]"), 8) == "t.st: tensor 'w' data_offsets [8,4] begin after end");
    CHECK(err_w(w("[2,3]", "[0,20]"), 24) ==
          "t.st: tensor 'w' data_offsets [0,20] hold 20 bytes but shape [2,3] F32 needs 24");
    CHECK(err_w(w("[100]", "[0,8]"), 8) ==
          "t.st: tensor 'w' data_offsets [0,8] hold 8 bytes but shape [100] F32 needs 400");
    CHECK(err_w("{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}", 8) ==
          "t.st: tensor 'w' data_offsets [0,8] hold 8 bytes but shape [2] I64 needs 16");
    CHECK(err_w(w("[100]", "[0,400]"), 64) ==
          "t.st: tensor 'w' data_offsets [0,400] exceed the data section (64 bytes)");
    // Near 2^64: end - begin is right, begin + size would wrap.
    CHECK(err_w(w("[1]", "[18446744073709551611,18446744073709551615]"), 8) ==
          "t.st: tensor 'w' data_offsets [18446744073709551611,18446744073709551615] exceed the "
          "data section (8 bytes)");

    auto two = [&](const std::string& a, const std::string& b, size_t data) {
      return err(st("{\"a\":" + a + ",\"b\":" + b + "}", std::string(data, '\0')));
    };
    CHECK(two(w("[2]", "[0,8]"), w("[2]", "[4,12]"), 12) ==
          "t.st: tensors 'a' and 'b' overlap: data_offsets [0,8] and [4,12]");
    CHECK(two(w("[2]", "[0,8]"), w("[2]", "[0,8]"), 8) ==
          "t.st: tensors 'a' and 'b' overlap: data_offsets [0,8] and [0,8]");
    CHECK(two(w("[1]", "[0,4]"), w("[1]", "[8,12]"), 12) ==
          "t.st: gap in the data section: bytes [4,8] before tensor 'b' belong to no tensor");
    CHECK(err_w(w("[1]", "[4,8]"), 8) ==
          "t.st: gap in the data section: bytes [0,4] before tensor 'w' belong to no tensor");
    CHECK(err_w(w("[1]", "[0,4]"), 8) ==
          "t.st: gap in the data section: trailing bytes [4,8] belong to no tensor");
    CHECK(err(st("{}", "abc")) ==
          "t.st: gap in the data section: trailing bytes [0,3] belong to no tensor");
  }

  TEST_CASE("rejects: metadata that is not string to string; I64 beyond int32") {
    CHECK(err(st("{\"__metadata__\":[\"a\"]}")) ==
          "t.st: __metadata__ is not an object (got [\"a\"])");
    CHECK(err(st("{\"__metadata__\":null}")) == "t.st: __metadata__ is not an object (got null)");
    CHECK(err(st("{\"__metadata__\":{\"step\":3}}")) ==
          "t.st: metadata 'step' is not a string (got 3)");
    CHECK(err(st("{\"__metadata__\":{\"cfg\":{}}}")) ==
          "t.st: metadata 'cfg' is not a string (got {})");

    auto ids = [](const std::vector<int64_t>& v) {
      return st("{\"ids\":{\"dtype\":\"I64\",\"shape\":[" + std::to_string(v.size()) +
                    "],\"data_offsets\":[0," + std::to_string(8 * v.size()) + "]}}",
                raw_bytes(v));
    };
    CHECK(err(ids({1, -2, 2147483648LL})) ==
          "t.st: tensor 'ids' (I64) element 2 value 2147483648 is outside the int32 range");
    CHECK(err(ids({-2147483649LL, 0})) ==
          "t.st: tensor 'ids' (I64) element 0 value -2147483649 is outside the int32 range");
    CHECK(
        err(ids({std::numeric_limits<int64_t>::min()})) ==
        "t.st: tensor 'ids' (I64) element 0 value -9223372036854775808 is outside the int32 range");
    CHECK(err(ids({2147483647, -2147483648LL})) == "(no error)");
  }

  TEST_CASE("rejects: files that cannot be read; load names the path") {
    TempDir dir;
    CHECK(test::error_of([&] { load_safetensors(dir / "nope.safetensors"); }) ==
          "load_safetensors: cannot open '" + (dir / "nope.safetensors") +
              "': No such file or directory");
    CHECK(test::error_of([&] { load_safetensors(dir.path); }) ==
          "load_safetensors: cannot read '" + dir.path + "': Is a directory");
    write_all(dir / "short.safetensors", "abc");
    CHECK(test::error_of([&] { load_safetensors(dir / "short.safetensors"); }) ==
          dir / "short.safetensors" + ": file is 3 bytes, shorter than the 8-byte header length");
  }

  TEST_CASE("rejects on write: names in both maps, reserved or not UTF-8; undefined tensors") {
    auto serr = [](const TensorFile& f) {
      return test::error_of([&] { serialize_safetensors(f); });
    };
    TensorFile f;
    f.floats["x"] = Tensor::scalar(1.f);
    f.ints["x"] = IntTensor::scalar(1);
    CHECK(serr(f) == "serialize_safetensors: tensor 'x' is in both floats and ints");
    f = {};
    f.floats["__metadata__"] = Tensor::scalar(1.f);
    CHECK(serr(f) == "serialize_safetensors: '__metadata__' is reserved, not a tensor name");
    f = {};
    f.floats["u"] = Tensor();
    CHECK(serr(f) == "serialize_safetensors: tensor 'u' is undefined");
    f = {};
    f.floats["bad\xff"] = Tensor::scalar(1.f);
    CHECK(serr(f) == "serialize_safetensors: tensor name 'bad\\xff' is not valid UTF-8");
    f = {};
    f.metadata["k"] = "\xc3";
    CHECK(serr(f) == "serialize_safetensors: metadata 'k' is not valid UTF-8");
  }

  // ---- hostile bytes ---------------------------------------------------------------

  TEST_CASE("every truncated prefix of a valid file is rejected") {
    const std::string bytes = serialize_safetensors(small_file());
    REQUIRE(bytes.size() > 100);
    int64_t accepted = 0;
    for (size_t len = 0; len < bytes.size(); ++len) {
      std::string m = err(bytes.substr(0, len));
      if (m == "(no error)" || m.rfind("t.st: ", 0) != 0) {
        ++accepted;
        INFO("prefix of ", len, " of ", bytes.size(), " bytes: ", m);
        CHECK(false);
      }
    }
    CHECK(accepted == 0);
    CHECK(err(bytes) == "(no error)");
    // The last cut is caught by the bounds check, not by luck.
    CHECK(err(bytes.substr(0, bytes.size() - 1)).find("exceed the data section") !=
          std::string::npos);
  }

  TEST_CASE("single-byte corruptions fail with a qkv::Error or load, nothing else") {
    const std::string bytes = serialize_safetensors(small_file());
    int64_t other = 0, rejected = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (int v : {0x00, 0xFF, int('"'), int('{'), int('['), int('9'), int('-'), int(' '),
                    int(','), int(uint8_t(bytes[i]) ^ 1)}) {
        std::string b = bytes;
        b[i] = char(v);
        try {
          parse_safetensors(b, "t.st");
        } catch (const Error&) {
          ++rejected;
        } catch (const std::exception& e) {
          ++other;
          INFO("byte ", i, " set to ", v, ": ", e.what());
          CHECK(false);
        }
      }
    }
    CHECK(other == 0);
    CHECK(rejected > 0);
  }

  // ---- atomic writes ----------------------------------------------------------------

  TEST_CASE("save replaces the file whole, by rename, and leaves no temporary file") {
    TempDir dir;
    const std::string path = dir / "m.safetensors";
    TensorFile big;
    big.floats["w"] = test::rand_tensor({64, 64}, 3);
    big.metadata["step"] = "1";
    save_safetensors(path, big);
    CHECK(read_all(path) == serialize_safetensors(big));
    CHECK(list_dir(dir.path) == std::vector<std::string>{"m.safetensors"});

    struct stat before;
    REQUIRE(::stat(path.c_str(), &before) == 0);
    std::ifstream reader(path, std::ios::binary);  // a reader holding the old file open

    TensorFile small;
    small.ints["step"] = IntTensor::scalar(2);
    save_safetensors(path, small);
    // Replaced whole: nothing of the longer old file survives past the new end.
    CHECK(read_all(path) == serialize_safetensors(small));
    CHECK(load_safetensors(path).ints.at("step").item() == 2);
    CHECK(list_dir(dir.path) == std::vector<std::string>{"m.safetensors"});
    // By rename: a new inode, and the open reader still sees the complete old file.
    struct stat after;
    REQUIRE(::stat(path.c_str(), &after) == 0);
    CHECK(after.st_ino != before.st_ino);
    std::ostringstream old;
    old << reader.rdbuf();
    CHECK(old.str() == serialize_safetensors(big));
  }

  TEST_CASE("save errors leave nothing behind and the old file untouched") {
    TempDir dir;
    const std::string pid = std::to_string(::getpid());

    // Into a missing directory: a clear message, and no directory or file appears.
    const std::string missing = dir / "no/such/m.safetensors";
    CHECK(test::error_of([&] { save_safetensors(missing, TensorFile{}); }) ==
          "save_safetensors: cannot create '" + missing + ".tmp." + pid + "' (to write '" +
              missing + "'): No such file or directory (does the directory exist?)");
    CHECK(list_dir(dir.path).empty());

    // A bad TensorFile fails before the disk is touched.
    const std::string path = dir / "m.safetensors";
    TensorFile good;
    good.floats["w"] = Tensor::from({2}, {1.f, 2.f});
    save_safetensors(path, good);
    TensorFile bad;
    bad.floats["u"] = Tensor();
    CHECK(test::error_of([&] { save_safetensors(path, bad); }) ==
          "save_safetensors: tensor 'u' is undefined");
    CHECK(read_all(path) == serialize_safetensors(good));
    CHECK(list_dir(dir.path) == std::vector<std::string>{"m.safetensors"});

    // Over a directory: the rename fails, and the written temporary file is removed.
    const std::string sub = dir / "sub";
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
    CHECK(test::error_of([&] { save_safetensors(sub, good); }) ==
          "save_safetensors: cannot rename '" + sub + ".tmp." + pid + "' to '" + sub +
              "': Is a directory");
    CHECK(list_dir(dir.path) == std::vector<std::string>{"m.safetensors", "sub"});
  }

  TEST_CASE("save to a bare file name writes into the working directory") {
    TempDir dir;
    std::string cwd = std::filesystem::current_path().string();
    std::filesystem::current_path(dir.path);
    TensorFile f;
    f.floats["w"] = Tensor::scalar(3.f);
    std::string e = test::error_of([&] { save_safetensors("bare.safetensors", f); });
    std::filesystem::current_path(cwd);
    CHECK(e == "(no error)");
    CHECK(read_all(dir / "bare.safetensors") == serialize_safetensors(f));
    CHECK(list_dir(dir.path) == std::vector<std::string>{"bare.safetensors"});
  }

}  // TEST_SUITE

}  // namespace qkv

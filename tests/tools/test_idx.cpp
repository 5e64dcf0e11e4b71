// IDX files and the Fashion-MNIST loader, on small files the tests write
// themselves (plain and gzip'd): valid files read back exactly; every
// truncation prefix, wrong magic, zero dimension, trailing data and corrupt
// gzip stream is rejected naming the file; the loader splits, limits and
// normalises as documented. Never needs the real data set.
#include <zlib.h>

#include <cmath>
#include <set>

#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/dataset.h"
#include "tools/data/fashion_mnist.h"
#include "tools/data/idx.h"

namespace qkv::data {
namespace {

std::string be32(uint32_t x) {
  return {char(x >> 24), char(x >> 16 & 0xff), char(x >> 8 & 0xff), char(x & 0xff)};
}

// The bytes of an IDX ubyte file with these dims; payload byte k = f(k).
std::string idx_bytes(const std::vector<uint32_t>& dims, uint8_t (*f)(size_t) = nullptr) {
  std::string s = std::string(2, '\0') + char(0x08) + char(dims.size());
  size_t n = 1;
  for (uint32_t d : dims) s += be32(d), n *= d;
  for (size_t k = 0; k < n; ++k) s += char(f ? f(k) : uint8_t(k * 37 + 11));
  return s;
}

std::string gzip(const std::string& raw) {
  test::TempDir tmp;
  gzFile g = gzopen((tmp / "x.gz").c_str(), "wb");
  REQUIRE(g != nullptr);
  REQUIRE(gzwrite(g, raw.data(), unsigned(raw.size())) == int(raw.size()));
  REQUIRE(gzclose(g) == Z_OK);
  return test::read_text(tmp / "x.gz");
}

TEST_SUITE("tools/idx") {
  TEST_CASE("valid files read back, plain and gzip'd") {
    test::TempDir dir;
    const std::string img = idx_bytes({3, 4, 5}), lab = idx_bytes({3});
    test::write_text(dir / "img", img);
    test::write_text(dir / "img.gz", gzip(img));
    test::write_text(dir / "lab.gz", gzip(lab));
    for (const char* name : {"img", "img.gz"}) {
      IdxArray a = idx_read_images(dir / name);
      CHECK(a.dims == std::vector<int64_t>{3, 4, 5});
      REQUIRE(a.data.size() == 60);
      CHECK(std::string(a.data.begin(), a.data.end()) == img.substr(16));
    }
    IdxArray l = idx_read_labels(dir / "lab.gz");
    CHECK(l.dims == std::vector<int64_t>{3});
    CHECK(std::string(l.data.begin(), l.data.end()) == lab.substr(8));
  }

  TEST_CASE("every truncation prefix is rejected, naming the file") {
    test::TempDir dir;
    const std::string img = idx_bytes({2, 3, 2});  // 16-byte header + 12 bytes
    const std::string gz = gzip(img);
    for (const auto& [full, name] :
         {std::pair{img, std::string("t")}, std::pair{gz, std::string("t.gz")}}) {
      for (size_t n = 0; n < full.size(); ++n) {
        INFO(name, " prefix of ", n, " bytes");
        test::write_text(dir / name, full.substr(0, n));
        const std::string e = test::error_of([&] { idx_read_images(dir / name); });
        CHECK(e.find(dir / name) != std::string::npos);
        CHECK(e != "(no error)");
      }
    }
    test::write_text(dir / "t", img.substr(0, 20));
    CHECK(test::error_of([&] { idx_read_images(dir / "t"); }) ==
          "idx: '" + (dir / "t") +
              "': truncated: the header promises 12 data bytes from byte 16 but the file "
              "ends at byte 20");
    test::write_text(dir / "t", img.substr(0, 10));
    CHECK(test::error_of([&] { idx_read_images(dir / "t"); }) ==
          "idx: '" + (dir / "t") + "': file ends at byte 10, inside dimension 1 (bytes 8..11)");
    test::write_text(dir / "t", img.substr(0, 2));
    CHECK(test::error_of([&] { idx_read_images(dir / "t"); }) ==
          "idx: '" + (dir / "t") +
              "': file ends at byte 2, inside the 4-byte magic (expected 0x00000803, images)");
  }

  TEST_CASE("wrong magic, zero dimension, trailing data, corrupt gzip, missing file") {
    test::TempDir dir;
    test::write_text(dir / "lab", idx_bytes({4}));
    CHECK(test::error_of([&] { idx_read_images(dir / "lab"); }) ==
          "idx: '" + (dir / "lab") +
              "': byte 0: expected magic 0x00000803 (images, unsigned bytes, 3 dims), "
              "got 0x00000801");
    std::string floats = idx_bytes({4});
    floats[2] = char(0x0d);  // float32 data: not ours
    test::write_text(dir / "f", floats);
    CHECK(test::error_of([&] { idx_read_labels(dir / "f"); }).find("expected magic 0x00000801") !=
          std::string::npos);
    test::write_text(dir / "zero", idx_bytes({2, 0, 3}));
    CHECK(test::error_of([&] { idx_read_images(dir / "zero"); }) ==
          "idx: '" + (dir / "zero") + "': byte 8: dimension 1 is 0");
    test::write_text(dir / "long", idx_bytes({2, 2, 2}) + "x");
    CHECK(test::error_of([&] { idx_read_images(dir / "long"); }) ==
          "idx: '" + (dir / "long") +
              "': byte 24: unexpected data after the 8 bytes the header promises");

    // A flipped bit in the deflate data or in the CRC trailer.
    const std::string gz = gzip(idx_bytes({20, 8, 8}));
    for (size_t at : {gz.size() / 2, gz.size() - 6}) {
      INFO("byte ", at, " of ", gz.size());
      std::string bad = gz;
      bad[at] = char(bad[at] ^ 0x10);
      test::write_text(dir / "bad.gz", bad);
      CHECK(test::error_of([&] { idx_read_images(dir / "bad.gz"); })
                .rfind("idx: '" + (dir / "bad.gz") +
                           "': corrupt or truncated gzip data near uncompressed byte",
                       0) == 0);
    }
    CHECK(test::error_of([&] { idx_read_images(dir / "none.gz"); }) ==
          "idx: cannot open '" + (dir / "none.gz") + "'");
  }

  // ---- the Fashion-MNIST loader -------------------------------------------------

  // A tiny Fashion-MNIST: 20 training and 6 test images of 4x3; image i's first
  // pixel is i (its identity), its label i % 10.
  void write_fake_fashion(const std::string& dir, uint32_t n_train_labels = 20,
                          uint8_t bad_label = 0) {
    auto image_bytes = [](uint32_t n) {
      std::string s = idx_bytes({n, 4, 3});
      for (uint32_t i = 0; i < n; ++i) s[16 + i * 12] = char(i);
      return s;
    };
    auto label_bytes = [&](uint32_t n) {
      std::string s = idx_bytes({n});
      for (uint32_t i = 0; i < n; ++i) s[8 + i] = char(i % 10);
      if (bad_label) s[8 + n - 1] = char(bad_label);
      return s;
    };
    const auto& f = fashion_mnist_files();
    test::write_text(dir + "/" + f[0], gzip(image_bytes(20)));
    test::write_text(dir + "/" + f[1], gzip(label_bytes(n_train_labels)));
    test::write_text(dir + "/" + f[2], gzip(image_bytes(6)));
    test::write_text(dir + "/" + f[3], gzip(label_bytes(6)));
  }

  TEST_CASE("fashion-mnist: splits, normalisation, labels and names") {
    test::TempDir dir;
    write_fake_fashion(dir.path);
    auto make = [&](const std::string& extra, uint64_t seed) {
      return make_dataset(
          Json::parse(R"({"name": "fashion-mnist", "dir": ")" + dir.path + "\"" + extra + "}"),
          seed);
    };
    Made m = make(R"(, "valid": 5)", 1);
    const Dataset& d = *m.dataset;
    CHECK(d.task() == Task::image_classification);
    CHECK(d.image_shape() == std::vector<int64_t>{1, 4, 3});
    CHECK(d.size(Split::train) == 15);
    CHECK(d.size(Split::valid) == 5);
    CHECK(d.size(Split::test) == 6);
    REQUIRE(d.class_names().size() == 10);
    CHECK(d.class_names()[0] == "T-shirt/top");
    CHECK(d.class_names()[9] == "Ankle boot");
    CHECK(m.resolved["limit"] == 0);

    // Train and valid partition the training files; test is the test files in order.
    auto ids = [&](const Dataset& ds, Split s) {
      std::vector<int> out;
      for (int64_t i = 0; i < ds.size(s); ++i) {
        Batch b = ds.batch(s, {i});
        const int id = int(std::lround((b.images.data()[0] * 0.3530f + 0.2860f) * 255.f));
        CHECK(b.labels.data()[0] == id % 10);
        CHECK(ds.target_text(s, i) == ds.class_names()[size_t(id % 10)]);
        out.push_back(id);
      }
      return out;
    };
    std::vector<int> train = ids(d, Split::train), valid = ids(d, Split::valid);
    std::set<int> all(train.begin(), train.end());
    all.insert(valid.begin(), valid.end());
    CHECK(all.size() == 20);
    CHECK(ids(d, Split::test) == std::vector<int>{0, 1, 2, 3, 4, 5});
    CHECK(ids(*make(R"(, "valid": 5)", 1).dataset, Split::valid) == valid);
    CHECK(ids(*make(R"(, "valid": 5)", 2).dataset, Split::valid) != valid);
    CHECK(make(R"(, "valid": 0.25)", 1).dataset->size(Split::valid) == 5);

    // Every pixel normalised as (x/255 - mean) / std.
    Batch b = d.batch(Split::test, {2, 1});
    REQUIRE(b.images.shape() == Shape{2, 1, 4, 3});
    for (int64_t k = 1; k < 12; ++k) {
      const float want =
          (float(uint8_t((k + 24) * 37 + 11)) / 255.f - 0.2860f) / 0.3530f;  // image 2, pixel k
      CHECK(b.images.data()[k] == doctest::Approx(want).epsilon(1e-6));
    }
    CHECK(d.source_text(Split::test, 3) == "image #3");
    CHECK(test::error_of([&] { d.encode_input("x"); }) ==
          "fashion-mnist: text input is not supported (the inputs are images)");

    Made lim = make(R"(, "valid": 5, "limit": 4)", 1);
    CHECK(lim.dataset->size(Split::train) == 4);
    CHECK(lim.dataset->size(Split::valid) == 4);
    CHECK(lim.dataset->size(Split::test) == 4);
    CHECK(test::error_of([&] { export_tsv(d, Split::test, dir / "x.tsv"); }) ==
          "export_tsv: fashion-mnist is an image data set; only text data sets export to TSV");
  }

  TEST_CASE("fashion-mnist: missing and inconsistent files") {
    test::TempDir dir;
    const std::string cfg = R"({"name": "fashion-mnist", "dir": ")" + dir.path + "\"}";
    CHECK(test::error_of([&] { make_dataset(Json::parse(cfg), 1); }) ==
          "fashion-mnist: missing file '" + dir.path +
              "/train-images-idx3-ubyte.gz' (the Debian package dataset-fashion-mnist provides it; "
              "tools/setup.sh installs it)");
    write_fake_fashion(dir.path, 19);
    CHECK(test::error_of([&] { make_dataset(Json::parse(cfg), 1); }) ==
          "fashion-mnist: '" + dir.path +
              "/train-images-idx3-ubyte.gz' holds 20 images but "
              "'train-labels-idx1-ubyte.gz' holds 19 labels");
    write_fake_fashion(dir.path, 20, 10);
    CHECK(test::error_of([&] { make_dataset(Json::parse(cfg), 1); }) ==
          "fashion-mnist: '" + dir.path +
              "/train-labels-idx1-ubyte.gz': label 10 at byte 27 is not a class in [0,10)");
    write_fake_fashion(dir.path);
    CHECK(test::error_of([&] {
            make_dataset(Json::parse(R"({"name": "fashion-mnist", "valid": 20, "dir": ")" +
                                     dir.path + "\"}"),
                         1);
          }) ==
          "data.valid: 20 leaves no training or no validation images (20 in the training files)");
  }
}

}  // namespace
}  // namespace qkv::data

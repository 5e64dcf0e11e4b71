// Fashion-MNIST: loads the four IDX files once, keeps the bytes, and
// normalises only the images a batch asks for.
#include "tools/data/fashion_mnist.h"

#include <sys/stat.h>

#include <cmath>
#include <numeric>

#include "engine/error.h"
#include "tools/data/idx.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"

namespace qkv::data {
namespace {

constexpr float kMean = 0.2860f, kStd = 0.3530f;

struct Images {
  IdxArray pixels;  // [N,rows,cols]
  IdxArray labels;  // [N]
};

Images load_pair(const std::string& dir, const std::string& images, const std::string& labels) {
  Images s;
  for (const std::string* name : {&images, &labels}) {
    const std::string path = dir + "/" + *name;
    struct stat st;
    check(::stat(path.c_str(), &st) == 0, "fashion-mnist: missing file '", path,
          "' (the Debian package dataset-fashion-mnist provides it; tools/setup.sh installs it)");
  }
  s.pixels = idx_read_images(dir + "/" + images);
  s.labels = idx_read_labels(dir + "/" + labels);
  check(s.pixels.dims[0] == s.labels.dims[0], "fashion-mnist: '", dir, "/", images, "' holds ",
        s.pixels.dims[0], " images but '", labels, "' holds ", s.labels.dims[0], " labels");
  for (size_t i = 0; i < s.labels.data.size(); ++i) {
    check(s.labels.data[i] < 10, "fashion-mnist: '", dir, "/", labels, "': label ",
          int(s.labels.data[i]), " at byte ", 8 + i, " is not a class in [0,10)");
  }
  return s;
}

class FashionMnist : public Dataset {
 public:
  FashionMnist(const FashionMnistOptions& o, uint64_t seed) {
    const auto& f = fashion_mnist_files();
    Images train = load_pair(o.dir, f[0], f[1]);
    test_ = load_pair(o.dir, f[2], f[3]);
    check(train.pixels.dims[1] == test_.pixels.dims[1] &&
              train.pixels.dims[2] == test_.pixels.dims[2],
          "fashion-mnist: training images are ", train.pixels.dims[1], "x", train.pixels.dims[2],
          " but test images ", test_.pixels.dims[1], "x", test_.pixels.dims[2]);
    train_ = std::move(train);
    rows_ = train_.pixels.dims[1];
    cols_ = train_.pixels.dims[2];
    image_shape_ = {1, rows_, cols_};
    class_names_ = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

    // Validation: a seed-fixed random subset of the training files.
    const int64_t N = train_.pixels.dims[0];
    const int64_t n_valid =
        o.valid < 1 ? int64_t(std::llround(o.valid * double(N))) : int64_t(o.valid);
    check(n_valid >= 1 && n_valid < N, o.valid_path, ": ", o.valid,
          " leaves no training or no validation images (", N, " in the training files)");
    std::vector<int64_t> perm(static_cast<size_t>(N));
    std::iota(perm.begin(), perm.end(), 0);
    Generator gen = data_generator(seed, "fashion-mnist");
    for (int64_t i = N - 1; i > 0; --i)
      std::swap(perm[size_t(i)], perm[size_t(gen.next_below(i + 1))]);
    index_[size_t(Split::valid)].assign(perm.begin(), perm.begin() + n_valid);
    index_[size_t(Split::train)].assign(perm.begin() + n_valid, perm.end());
    index_[size_t(Split::test)].resize(size_t(test_.pixels.dims[0]));
    std::iota(index_[size_t(Split::test)].begin(), index_[size_t(Split::test)].end(), 0);
    for (auto& ix : index_) {
      if (o.limit > 0 && int64_t(ix.size()) > o.limit) ix.resize(size_t(o.limit));
    }
  }

  Task task() const override { return Task::image_classification; }
  std::string name() const override { return "fashion-mnist"; }
  int64_t size(Split s) const override { return int64_t(index_[size_t(s)].size()); }

  // images: [B,1,rows,cols]; labels: [B].
  Batch batch(Split s, const std::vector<int64_t>& indices) const override {
    check(!indices.empty(), "fashion-mnist: batch of no examples");
    const Images& src = s == Split::test ? test_ : train_;
    const int64_t B = int64_t(indices.size()), HW = rows_ * cols_;
    Batch b;
    b.size = B;
    b.images = Tensor({B, 1, rows_, cols_});
    b.labels = IntTensor({B});
    for (int64_t i = 0; i < B; ++i) {
      const int64_t k = row(s, indices[size_t(i)]);
      const uint8_t* px = src.pixels.data.data() + k * HW;
      float* out = b.images.data() + i * HW;
      for (int64_t j = 0; j < HW; ++j)
        out[j] = (float(px[j]) * (1.f / 255.f) - kMean) * (1.f / kStd);
      b.labels.data()[i] = src.labels.data[size_t(k)];
    }
    return b;
  }

  std::string source_text(Split s, int64_t i) const override {
    row(s, i);
    return "image #" + std::to_string(i);
  }
  std::string target_text(Split s, int64_t i) const override {
    const Images& src = s == Split::test ? test_ : train_;
    return class_names_[src.labels.data[size_t(row(s, i))]];
  }
  Batch encode_input(const std::string&) const override {
    fail("fashion-mnist: text input is not supported (the inputs are images)");
  }

 private:
  // The row in the training or test files of example i of split s.
  int64_t row(Split s, int64_t i) const {
    check(i >= 0 && i < size(s), "fashion-mnist: ", split_name(s), " example ", i,
          " out of range [0,", size(s), ")");
    return index_[size_t(s)][size_t(i)];
  }
  Images train_, test_;
  int64_t rows_ = 0, cols_ = 0;
  std::array<std::vector<int64_t>, 3> index_;  // per split: rows of train_ (train, valid) or test_
};

}  // namespace

const std::vector<std::string>& fashion_mnist_files() {
  static const std::vector<std::string> f = {
      "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
      "t10k-labels-idx1-ubyte.gz"};
  return f;
}

FashionMnistOptions fashion_mnist_options(JsonReader& r) {
  FashionMnistOptions o;
  o.dir = r.get_string("dir", o.dir);
  o.valid = r.get_number("valid", o.valid, 0, 1e9, /*lo_open=*/true);
  if (o.valid >= 1) {
    check(std::floor(o.valid) == o.valid, r.path_of("valid"),
          ": expected a fraction in (0,1) or a whole count >= 1, got ", o.valid);
  }
  o.limit = r.get_int("limit", o.limit, 0);
  o.valid_path = r.path_of("valid");
  return o;
}

std::unique_ptr<Dataset> make_fashion_mnist(const FashionMnistOptions& o, uint64_t seed) {
  return std::make_unique<FashionMnist>(o, seed);
}

namespace {
const DatasetRegistrar registered("fashion-mnist", [](JsonReader& r, uint64_t seed) {
  const FashionMnistOptions o = fashion_mnist_options(r);
  return DatasetRecipe{[o, seed] { return make_fashion_mnist(o, seed); }};
});
}  // namespace

}  // namespace qkv::data

// The Fashion-MNIST data set (Xiao et al. 2017) from Debian's
// dataset-fashion-mnist package: 60000 training and 10000 test images, 28x28
// grey, 10 classes. The validation split is a seed-fixed random subset of the
// training files; the test split is the test files. Images are served as
// [B,1,28,28] floats, (x/255 - 0.2860) / 0.3530 (the training set's mean/std).
#pragma once
#include <memory>
#include <string>

#include "tools/data/dataset.h"

namespace qkv::data {

struct FashionMnistOptions {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  double valid = 5000;  // a count (>= 1) or a fraction of the training files (< 1)
  int64_t limit = 0;    // > 0: at most this many examples per split (quick runs)
  std::string valid_path = "data.valid";  // names "valid" in errors found once the files are read
};
FashionMnistOptions fashion_mnist_options(JsonReader& r);
std::unique_ptr<Dataset> make_fashion_mnist(const FashionMnistOptions& o, uint64_t seed);

// The four file names inside dir, in the order train images, train labels,
// test images, test labels.
const std::vector<std::string>& fashion_mnist_files();

}  // namespace qkv::data

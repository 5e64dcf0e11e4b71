// A fake text classification for the runner tests: does a string of a's and
// b's hold more a's than b's? Strings have odd lengths (no ties), drawn from
// a seeded generator, so each split is fixed by the options.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "tools/data/dataset.h"

namespace qkv::test {

struct FakeMajorityOptions {
  uint64_t seed = 5;
  int64_t train = 128, valid_test = 32;  // examples per split
  int64_t max_half = 3;                  // lengths 1, 3, ..., 2 * max_half - 1
  data::Task task = data::Task::text_classification;
};

class FakeMajority : public data::Dataset {
 public:
  explicit FakeMajority(FakeMajorityOptions o = {}) : task_(o.task) {
    src_vocab_ = data::Vocab({"a", "b"}, data::Vocab::Level::chars);
    class_names_ = {"no", "yes"};
    Generator g(o.seed);
    for (int s = 0; s < 3; ++s)
      for (int64_t i = 0; i < (s == 0 ? o.train : o.valid_test); ++i) {
        std::string x;
        const int64_t len = 1 + 2 * g.next_below(uint64_t(o.max_half));
        for (int64_t k = 0; k < len; ++k) x += char('a' + g.next_below(2));
        src_[s].push_back(x);
      }
  }
  data::Task task() const override { return task_; }
  std::string name() const override { return "fake_majority"; }
  int64_t size(data::Split s) const override { return int64_t(src_[int(s)].size()); }
  std::string source_text(data::Split s, int64_t i) const override {
    return src_[int(s)][size_t(i)];
  }
  std::string target_text(data::Split s, int64_t i) const override {
    return class_names_[size_t(label(source_text(s, i)))];
  }
  data::Batch batch(data::Split s, const std::vector<int64_t>& idx) const override {
    std::vector<std::string> xs;
    for (int64_t i : idx) xs.push_back(source_text(s, i));
    return make(xs);
  }
  data::Batch encode_input(const std::string& text) const override { return make({text}); }

 private:
  static int label(const std::string& x) {
    return 2 * std::count(x.begin(), x.end(), 'a') > int64_t(x.size());
  }
  // xs -> src [B,T] (pad 0), src_len [B], labels [B]
  data::Batch make(const std::vector<std::string>& xs) const {
    const int64_t B = int64_t(xs.size());
    int64_t T = 1;
    for (const auto& x : xs) T = std::max<int64_t>(T, int64_t(x.size()));
    data::Batch b;
    b.size = B;
    b.src = IntTensor::zeros({B, T});
    b.src_len = IntTensor::zeros({B});
    b.labels = IntTensor::zeros({B});
    for (int64_t i = 0; i < B; ++i) {
      const auto ids = src_vocab_.encode(xs[size_t(i)]);
      std::copy(ids.begin(), ids.end(), b.src.data() + i * T);
      b.src_len.data()[i] = int32_t(ids.size());
      b.labels.data()[i] = label(xs[size_t(i)]);
    }
    return b;
  }
  data::Task task_;
  std::vector<std::string> src_[3];
};

}  // namespace qkv::test

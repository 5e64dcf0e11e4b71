// A seq2seq data set of sources with one or more reference targets each (a
// pronunciation lexicon, a user's TSV pairs): the base of the pairs and g2p
// data sets. Splits are disjoint by source; training has one example per
// (source, reference), valid and test one per source, scored against all its
// references. Vocabularies come from the training split (other tokens: unk).
// The scoring hook adds a sequence error rate (a prediction is right if it
// equals any reference) and a token error rate (edit distance to the nearest
// reference over that reference's length).
//
// Legend: B batch, S source time, T target time.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/data/dataset.h"

namespace qkv::data {

struct LexiconEntry {
  std::string src;
  std::vector<std::string> refs;  // one or more, distinct, in the order read
};
// Entries with equal sources merged (first-seen order, references deduplicated).
std::vector<LexiconEntry> merge_entries(std::vector<LexiconEntry> entries);

struct LexiconSpec {
  Vocab::Level src_level = Vocab::Level::chars, tgt_level = Vocab::Level::chars;
  // The scoring hook's metric names: sequence error rate, token error rate.
  std::string seq_metric = "ser", token_metric = "ter";
};

// Splits of entries: test first, then valid, then train (shuffled by the seed
// and cut by fractions of the sources), or given as they are.
using LexiconSplits = std::array<std::vector<LexiconEntry>, 3>;  // indexed by Split
LexiconSplits split_entries(std::vector<LexiconEntry> entries, double valid, double test,
                            Generator& gen, const std::string& what);

class LexiconDataset : public Dataset {
 public:
  LexiconDataset(std::string name, LexiconSplits splits, LexiconSpec spec);

  Task task() const override { return Task::seq2seq; }
  std::string name() const override { return name_; }
  int64_t size(Split s) const override { return int64_t(examples_[size_t(s)].size()); }
  Batch batch(Split s, const std::vector<int64_t>& indices) const override;
  std::string source_text(Split s, int64_t i) const override;
  std::string target_text(Split s, int64_t i) const override;  // the example's reference
  std::vector<std::string> target_texts(Split s, int64_t i) const override;
  Batch encode_input(const std::string& text) const override;  // unknown tokens: unk

  bool scores_predictions() const override { return true; }
  void score(Split s, const std::vector<int64_t>& indices,
             const std::vector<std::vector<int32_t>>& predictions, EvalSums& sums) const override;
  Metrics metrics(const EvalSums& sums) const override;

 private:
  struct Example {
    int32_t entry = 0, ref = 0;
  };
  struct Encoded {
    std::vector<int32_t> src;
    std::vector<std::vector<int32_t>> refs;
  };
  const Example& at(Split s, int64_t i) const;

  std::string name_;
  LexiconSpec spec_;
  LexiconSplits splits_;
  std::array<std::vector<Encoded>, 3> encoded_;  // per split, per entry
  std::array<std::vector<Example>, 3> examples_;
};

// Levenshtein distance between two token sequences (unit costs).
int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace qkv::data

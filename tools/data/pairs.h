// Seq2seq data from (source, target) text pairs at character level: the shared
// base of the generated sets (dates, addition, sequence), the drawing of
// distinct examples into disjoint splits, and the padding every batch uses.
//
// Legend: B batch, S source time, T target time.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "tools/data/dataset.h"

namespace qkv::data {

struct Pair {
  std::string src, tgt;  // human-readable source, reference target
};
using Splits = std::array<std::vector<Pair>, 3>;  // indexed by Split

struct SplitSizes {
  int64_t train = 0, valid = 0, test = 0;
  int64_t total() const { return train + valid + test; }
};
// Reads "train", "valid", "test" (each an integer >= 1; `def` fills missing ones).
SplitSizes read_split_sizes(JsonReader& r, SplitSizes def);

// A generator of its own for each data set: seed mixed with the set's name, so
// data and weight initialisation never share a stream.
Generator data_generator(uint64_t seed, const std::string& name);

// Draws n.total() examples with pairwise distinct sources, test first, then
// valid, then train (so test and valid do not change when only train grows).
// `what` names the data set in the error raised when draw() cannot produce
// enough distinct sources (e.g. "data: ... only 100 distinct ...").
Splits draw_distinct(const SplitSizes& n, Generator& gen,
                     const std::function<Pair(Generator&)>& draw, const std::string& what);
// The same from a complete list of every possible example (shuffled by gen,
// then cut): for small spaces where rejection sampling would stall.
Splits split_all(std::vector<Pair> all, const SplitSizes& n, Generator& gen,
                 const std::string& what);

// ---- padding ----------------------------------------------------------------
// seqs: B token lists, each non-empty. Fills b.src [B,S] (pad elsewhere, S the
// longest) and b.src_len [B].
void pad_sources(Batch& b, const std::vector<const std::vector<int32_t>*>& seqs);
// tgts: B token lists. Fills b.tgt_in [B,T] = bos + target and b.tgt_out [B,T]
// = target + eos, pad elsewhere, T = longest target + 1.
void pad_targets(Batch& b, const std::vector<const std::vector<int32_t>*>& tgts);

// Encodes text at chars level, throwing (naming `what` and the character)
// when a character is not in the vocabulary.
std::vector<int32_t> encode_strict(const Vocab& v, const std::string& text,
                                   const std::string& what);

// ---- the data set -----------------------------------------------------------
class PairDataset : public Dataset {
 public:
  // src_alphabet / tgt_alphabet: every character the sources / targets may
  // hold (the vocabularies are built from these, not from the drawn examples,
  // so they depend on the config only). reverse_source: the model sees each
  // source reversed (Sutskever et al.'s trick); source_text stays readable.
  PairDataset(std::string name, Splits splits, const std::string& src_alphabet,
              const std::string& tgt_alphabet, bool reverse_source);

  Task task() const override { return Task::seq2seq; }
  std::string name() const override { return name_; }
  int64_t size(Split s) const override;
  Batch batch(Split s, const std::vector<int64_t>& indices) const override;
  std::string source_text(Split s, int64_t i) const override;
  std::string target_text(Split s, int64_t i) const override;
  Batch encode_input(const std::string& text) const override;

 private:
  const Pair& at(Split s, int64_t i) const;
  std::string name_;
  Splits splits_;
  std::array<std::vector<std::vector<int32_t>>, 3> src_ids_, tgt_ids_;  // encoded once
  bool reverse_source_;
};

}  // namespace qkv::data

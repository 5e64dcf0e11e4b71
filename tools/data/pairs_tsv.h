// The pairs data set: the user's own (source, target) pairs from TSV, one
// "source<TAB>target" per line (the format `qkv data` exports), characters or
// whitespace-separated tokens. Lines with the same source are one example with
// several references. Either one file, split by the seed into disjoint sets of
// sources like the built-in sets, or three files taken as the splits they are
// (an export read back trains on exactly the exported examples).
#pragma once
#include <memory>
#include <string>

#include "tools/data/lexicon.h"

namespace qkv::data {

struct PairsOptions {
  std::string file;                               // one TSV, split by fractions of its sources
  std::string train_file, valid_file, test_file;  // or "files": {"train": ..., ...}
  std::string tokens = "chars";                   // chars or words, both sides
  double valid = 0.1, test = 0.1;                 // fractions of the sources (with "file")
  Json extra = Json::object();                    // "files", which JsonReader does not record
};
PairsOptions pairs_options(JsonReader& r);
std::unique_ptr<Dataset> make_pairs(const PairsOptions& o, uint64_t seed);

// The pairs of a TSV text (the contents of file), one entry per line.
std::vector<LexiconEntry> parse_pairs_tsv(std::string_view text, const std::string& file);

}  // namespace qkv::data

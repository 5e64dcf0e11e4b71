// The sequence data set: copy, reverse or sort random symbol strings with a
// configurable length range, character level. Long reversals (lengths 30..60)
// show the fixed-context bottleneck of a seq2seq model without attention.
// Symbols are the first `symbols` of a..z A..Z 0..9; sort orders by byte value
// (digits, then upper case, then lower case).
#pragma once
#include <memory>
#include <string>

#include "tools/data/pairs.h"

namespace qkv::data {

struct SequenceOptions {
  SplitSizes n{20000, 1000, 1000};
  std::string task = "reverse";  // copy, reverse, sort
  int64_t min_len = 5, max_len = 20;
  int64_t symbols = 26;  // alphabet size, 2..62
};
SequenceOptions sequence_options(JsonReader& r);
std::unique_ptr<Dataset> make_sequence(const SequenceOptions& o, uint64_t seed);

// The target of `task` for source s.
std::string sequence_target(const std::string& task, const std::string& s);

}  // namespace qkv::data

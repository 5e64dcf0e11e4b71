// Random symbol strings and their copies, reversals or sorted versions.
#include "tools/data/sequence.h"

#include <algorithm>

#include "engine/error.h"
#include "tools/data/registry.h"

namespace qkv::data {
namespace {

const std::string kSymbols = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

// Number of distinct strings, saturating at `cap`.
int64_t distinct_strings(int64_t symbols, int64_t min_len, int64_t max_len, int64_t cap) {
  int64_t total = 0, power = 1;
  for (int64_t len = 1; len <= max_len; ++len) {
    power = power > cap / symbols ? cap : power * symbols;
    if (len >= min_len) total = std::min(cap, total + power);
  }
  return total;
}

}  // namespace

SequenceOptions sequence_options(JsonReader& r) {
  SequenceOptions o;
  o.n = read_split_sizes(r, o.n);
  o.task = r.get_string("task", o.task, {"copy", "reverse", "sort"});
  o.min_len = r.get_int("min_len", o.min_len, 1, 10000);
  o.max_len = r.get_int("max_len", o.max_len, 1, 10000);
  check(o.max_len >= o.min_len, r.path_of("max_len"), ": expected an integer >= min_len (",
        o.min_len, "), got ", o.max_len);
  o.symbols = r.get_int("symbols", o.symbols, 2, int64_t(kSymbols.size()));
  return o;
}

std::string sequence_target(const std::string& task, const std::string& s) {
  std::string t = s;
  if (task == "reverse")
    std::reverse(t.begin(), t.end());
  else if (task == "sort")
    std::sort(t.begin(), t.end());
  else
    check(task == "copy", "sequence: unknown task '", task, "'");
  return t;
}

std::unique_ptr<Dataset> make_sequence(const SequenceOptions& o, uint64_t seed) {
  const std::string alphabet = kSymbols.substr(0, size_t(o.symbols));
  const std::string what = "data (sequence)";
  Generator gen = data_generator(seed, "sequence");
  const int64_t space = distinct_strings(o.symbols, o.min_len, o.max_len, int64_t(1) << 40);
  Splits splits;
  if (space <= 4 * o.n.total()) {
    // A small space: enumerate every string (each length in base `symbols`).
    std::vector<Pair> all;
    for (int64_t len = o.min_len; len <= o.max_len; ++len) {
      int64_t count = 1;
      for (int64_t i = 0; i < len; ++i) count *= o.symbols;
      for (int64_t code = 0; code < count; ++code) {
        std::string s(size_t(len), ' ');
        for (int64_t i = 0, c = code; i < len; ++i, c /= o.symbols)
          s[size_t(i)] = alphabet[size_t(c % o.symbols)];
        all.push_back({s, sequence_target(o.task, s)});
      }
    }
    splits = split_all(std::move(all), o.n, gen, what);
  } else {
    auto draw = [&](Generator& g) {
      std::string s(size_t(o.min_len + g.next_below(o.max_len - o.min_len + 1)), ' ');
      for (char& c : s) c = alphabet[size_t(g.next_below(o.symbols))];
      return Pair{s, sequence_target(o.task, s)};
    };
    splits = draw_distinct(o.n, gen, draw, what);
  }
  return std::make_unique<PairDataset>("sequence", std::move(splits), alphabet, alphabet,
                                       /*reverse_source=*/false);
}

namespace {
const DatasetRegistrar registered("sequence", [](JsonReader& r, uint64_t seed) {
  const SequenceOptions o = sequence_options(r);
  return DatasetRecipe{[o, seed] { return make_sequence(o, seed); }};
});
}  // namespace

}  // namespace qkv::data

// TSV pairs read into a LexiconDataset.
#include "tools/data/pairs_tsv.h"

#include "engine/error.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"
#include "tools/data/tsv.h"

namespace qkv::data {

std::vector<LexiconEntry> parse_pairs_tsv(std::string_view text, const std::string& file) {
  std::vector<LexiconEntry> out;
  for (auto& row : read_tsv(text, file, {"source", "target"}))
    out.push_back({std::move(row.fields[0]), {std::move(row.fields[1])}});
  return out;
}

namespace {

std::vector<LexiconEntry> read_pairs_file(const std::string& path) {
  return merge_entries(parse_pairs_tsv(read_file_bytes(path, "pairs"), path));
}

}  // namespace

PairsOptions pairs_options(JsonReader& r) {
  PairsOptions o;
  o.file = r.get_string("file", o.file);
  const Json files = r.get_raw("files");
  check(o.file.empty() != files.is_null(), r.path_of("file"),
        ": give either \"file\" (one TSV, split by the seed) or \"files\" ",
        "({\"train\": ..., \"valid\": ..., \"test\": ...})");
  if (!files.is_null()) {
    check(files.is_object() && files.size() == 3, r.path_of("files"),
          ": expected {\"train\": FILE, \"valid\": FILE, \"test\": FILE}, got ", files.dump());
    for (const char* k : {"train", "valid", "test"}) {
      check(files.contains(k) && files[k].is_string(), r.path_of("files"), ".", k,
            ": expected a file name, got ", files.value(k, Json()).dump());
    }
    o.train_file = files["train"];
    o.valid_file = files["valid"];
    o.test_file = files["test"];
    o.extra["files"] = files;
  }
  o.tokens = r.get_string("tokens", o.tokens, {"chars", "words"});
  o.valid = r.get_number("valid", o.valid, 0, 1, /*lo_open=*/true);
  o.test = r.get_number("test", o.test, 0, 1, /*lo_open=*/true);
  check(o.valid + o.test < 1, r.path_of("test"), ": valid + test must be < 1, got ", o.valid, " + ",
        o.test);
  return o;
}

std::unique_ptr<Dataset> make_pairs(const PairsOptions& o, uint64_t seed) {
  LexiconSpec spec;
  spec.src_level = spec.tgt_level = o.tokens == "words" ? Vocab::Level::words : Vocab::Level::chars;
  LexiconSplits splits;
  if (!o.file.empty()) {
    Generator gen = data_generator(seed, "pairs");
    splits =
        split_entries(read_pairs_file(o.file), o.valid, o.test, gen, "pairs: '" + o.file + "'");
  } else {
    splits[size_t(Split::train)] = read_pairs_file(o.train_file);
    splits[size_t(Split::valid)] = read_pairs_file(o.valid_file);
    splits[size_t(Split::test)] = read_pairs_file(o.test_file);
  }
  return std::make_unique<LexiconDataset>("pairs", std::move(splits), spec);
}

namespace {
const DatasetRegistrar registered("pairs", [](JsonReader& r, uint64_t seed) {
  const PairsOptions o = pairs_options(r);
  return DatasetRecipe{[o, seed] { return make_pairs(o, seed); }, o.extra};
});
}  // namespace

}  // namespace qkv::data

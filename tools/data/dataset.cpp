// Shared pieces of the data sets: split names, the registry of data sets by
// name with make_dataset's lookup in it, and the TSV export a peer script
// trains on.
#include "tools/data/dataset.h"

#include <fstream>
#include <map>

#include "tools/data/registry.h"
#include "tools/data/tsv.h"

namespace qkv::data {

const char* split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::valid: return "valid";
    case Split::test: return "test";
  }
  return "?";
}

// ---- registry -------------------------------------------------------------------

namespace {

// Function-local: filled by registrars during static initialisation, in any order.
std::map<std::string, DatasetReader>& registry() {
  static std::map<std::string, DatasetReader> readers;
  return readers;
}

}  // namespace

void register_dataset(const std::string& name, DatasetReader read) {
  check(!name.empty(), "register_dataset: empty data set name");
  check(read != nullptr, "register_dataset: data set '", name, "' has no options reader");
  const bool added = registry().emplace(name, std::move(read)).second;
  check(added, "register_dataset: data set '", name, "' is already registered");
}

void unregister_dataset(const std::string& name) { registry().erase(name); }

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : registry()) names.push_back(name);  // a std::map: sorted
  return names;
}

Made make_dataset(const Json& cfg, uint64_t seed, const std::string& path) {
  JsonReader r(cfg, path);
  const std::string name = r.require_string("name", dataset_names());
  const auto it = registry().find(name);
  check(it != registry().end(), r.path_of("name"), ": no data set is registered under \"", name,
        "\"");  // only when none is: require_string lists them otherwise
  DatasetRecipe recipe = it->second(r, seed);
  r.finish();  // unknown keys fail here, before any generation or file reading
  Made m;
  m.dataset = recipe.make();
  m.resolved = r.resolved();
  for (auto it = recipe.extra.begin(); it != recipe.extra.end(); ++it)
    m.resolved[it.key()] = it.value();
  return m;
}

// ---- scoring hook: none by default ----------------------------------------------

void Dataset::score(Split, const std::vector<int64_t>&, const std::vector<std::vector<int32_t>>&,
                    EvalSums&) const {}
Metrics Dataset::metrics(const EvalSums&) const { return {}; }

// ---- TSV export ---------------------------------------------------------------


void export_tsv(const Dataset& d, Split s, const std::string& path) {
  check(d.task() != Task::image_classification, "export_tsv: ", d.name(),
        " is an image data set; only text data sets export to TSV");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(bool(out), "export_tsv: cannot create '", path, "'");
  const Vocab& v = *d.src_vocab();
  for (int64_t i = 0; i < d.size(s); ++i) {
    // The source as the model sees it: decoded from the batch (reversal and
    // unknown tokens included).
    Batch b = d.batch(s, {i});
    std::vector<int32_t> ids(b.src.begin(), b.src.begin() + b.src_len.data()[0]);
    std::string target = d.task() == Task::language_model
                             ? v.decode(std::vector<int32_t>(b.tgt_out.begin(), b.tgt_out.end()))
                             : d.target_text(s, i);
    if (d.task() == Task::text_classification) {
      // The normalised text, rare words spelled out (not "<unk>"): read back,
      // it maps them to unk again by the same training-split vocabulary.
      out << tsv_escape(target) << '\t' << tsv_escape(d.source_text(s, i)) << '\n';
      continue;
    }
    if (d.task() == Task::language_model) {
      out << tsv_escape(v.decode(ids)) << '\t' << tsv_escape(target) << '\n';
      continue;
    }
    for (const std::string& t : d.target_texts(s, i))
      out << tsv_escape(v.decode(ids)) << '\t' << tsv_escape(t) << '\n';
  }
  out.flush();
  check(bool(out), "export_tsv: cannot write '", path, "'");
}

}  // namespace qkv::data

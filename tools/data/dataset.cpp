// Shared pieces of the data sets: split names, make_dataset's dispatch on
// "name", and the TSV export a peer script trains on.
#include "tools/data/dataset.h"

#include <fstream>

#include "tools/data/addition.h"
#include "tools/data/dates.h"
#include "tools/data/fashion_mnist.h"
#include "tools/data/sequence.h"
#include "tools/data/text.h"

namespace qkv::data {

const char* split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::valid: return "valid";
    case Split::test: return "test";
  }
  return "?";
}

std::vector<std::string> dataset_names() {
  return {"addition", "dates", "fashion-mnist", "sequence", "text-classification", "text-lm"};
}

Made make_dataset(const Json& cfg, uint64_t seed, const std::string& path) {
  JsonReader r(cfg, path);
  const std::string name = r.require_string("name", dataset_names());
  // Each branch reads its options, then finish() rejects unknown keys before
  // any generation or file reading starts.
  Made m;
  Json extra = Json::object();
  if (name == "dates") {
    DatesOptions o = dates_options(r);
    r.finish();
    extra = o.extra;
    m.dataset = make_dates(o, seed);
  } else if (name == "addition") {
    AdditionOptions o = addition_options(r);
    r.finish();
    m.dataset = make_addition(o, seed);
  } else if (name == "sequence") {
    SequenceOptions o = sequence_options(r);
    r.finish();
    m.dataset = make_sequence(o, seed);
  } else if (name == "fashion-mnist") {
    FashionMnistOptions o = fashion_mnist_options(r);
    r.finish();
    m.dataset = make_fashion_mnist(o, seed);
  } else if (name == "text-classification") {
    TextClassificationOptions o = text_classification_options(r);
    r.finish();
    m.dataset = make_text_classification(o, seed);
  } else {
    TextLmOptions o = text_lm_options(r);
    r.finish();
    extra = o.extra;
    m.dataset = make_text_lm(o);
  }
  m.resolved = r.resolved();
  for (auto it = extra.begin(); it != extra.end(); ++it) m.resolved[it.key()] = it.value();
  return m;
}

// ---- TSV export ---------------------------------------------------------------

namespace {

std::string tsv_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out;
}

}  // namespace

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
    out << tsv_escape(v.decode(ids)) << '\t' << tsv_escape(target) << '\n';
  }
  out.flush();
  check(bool(out), "export_tsv: cannot write '", path, "'");
}

}  // namespace qkv::data

// The text data sets' readers: a language model's text (text-lm) and
// label<TAB>text lines (text-classification). Input: the text, read as both;
// tokens at words or characters by the size's parity. Whatever builds serves batches and encodes
// its own examples' text back to the same ids.
#include <algorithm>

#include "fuzz/fuzz.h"
#include "tools/data/text.h"

using namespace qkv;
using data::Split;

namespace {

// The data set's first examples as batches and text, and its first source as input.
void exercise(const data::Dataset& d) {
  for (Split s : {Split::train, Split::valid, Split::test}) {
    const int64_t n = std::min<int64_t>(d.size(s), 3);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
    if (n > 0) (void)d.batch(s, idx);
    for (int64_t i = 0; i < n; ++i) (void)d.target_text(s, i);
  }
  if (d.size(Split::train) > 0)
    fuzz::refuse_ok([&] { (void)d.encode_input(d.source_text(Split::train, 0)); });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const std::string in = fuzz::bytes(buf, size);
  fuzz::refuse_ok([&] {
    data::TextLmOptions o;
    o.seq_len = 8;
    o.valid = o.test = 0.1;
    exercise(*data::make_text_lm(o, in));
  });
  fuzz::refuse_ok([&] {
    data::TextClassificationOptions o;
    o.file = "input.tsv";
    o.tokens = size % 2 ? "chars" : "words";
    o.max_len = 16;
    o.valid = o.test = 0.25;
    exercise(*data::make_text_classification(o, 1, "text-classification",
                                              data::classes_from_tsv(in, o.file)));
  });
  return 0;
}

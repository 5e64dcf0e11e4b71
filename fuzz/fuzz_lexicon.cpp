// The real-data readers: Festival's CMUdict (with and without stress), a
// source<TAB>target pairs file, a word list (as UTF-8 and as ISO-8859-1), and
// the UTF-8 splitter under them. Input: the file's bytes, read by each. What
// a reader accepts must hold its own invariants: every entry has a reference,
// no word is empty, the code points put back together are the input.
#include "fuzz/fuzz.h"
#include <string_view>

#include "tools/data/g2p.h"
#include "tools/data/language_id.h"
#include "tools/data/pairs_tsv.h"
#include "tools/data/utf8.h"

using namespace qkv;

namespace {

void check_entries(const std::vector<data::LexiconEntry>& es) {
  for (const auto& e : es) fuzz::require(!e.refs.empty());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const std::string in = fuzz::bytes(buf, size);
  for (bool stress : {false, true})
    for (auto set : {data::CmudictPhones::cmudict, data::CmudictPhones::festival})
      fuzz::refuse_ok([&] { check_entries(data::parse_cmudict(in, "cmudict", stress, set)); });
  fuzz::refuse_ok([&] { check_entries(data::parse_pairs_tsv(in, "pairs.tsv")); });
  for (const std::string& text : {in, data::latin1_to_utf8(in)}) {
    fuzz::refuse_ok([&] {
      for (const std::string& w : data::read_word_list(text, "words")) {
        fuzz::require(!w.empty());
      }
    });
  }
  fuzz::refuse_ok([&] {
    size_t n = 0;
    for (const std::string& c : data::utf8_split(in, "input")) n += c.size();
    fuzz::require(n == in.size());
  });
  return 0;
}

// CMUdict in Festival's format, parsed line by line into pronunciations.
#include "tools/data/g2p.h"

#include <sys/stat.h>

#include <cctype>

#include "engine/error.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"
#include "tools/data/tsv.h"
#include "tools/data/utf8.h"

namespace qkv::data {
namespace {

// One entry line, read left to right; errors name the file, line and column.
class Cursor {
 public:
  Cursor(std::string_view line, std::string where) : l_(line), where_(std::move(where)) {}

  bool at(char c) {
    skip_space();
    return i_ < l_.size() && l_[i_] == c;
  }
  void expect(char c, const char* what) {
    check(at(c), where_, ": expected '", c, "' ", what, " at column ", i_ + 1, ", found ", found());
    ++i_;
  }
  // A symbol: up to the next space, parenthesis or quote.
  std::string_view symbol(const char* what) {
    skip_space();
    const size_t a = i_;
    while (i_ < l_.size() && !std::isspace(static_cast<unsigned char>(l_[i_])) && l_[i_] != '(' &&
           l_[i_] != ')' && l_[i_] != '"')
      ++i_;
    check(i_ > a, where_, ": expected ", what, " at column ", a + 1, ", found ", found());
    return l_.substr(a, i_ - a);
  }
  std::string_view quoted(const char* what) {
    expect('"', what);
    const size_t a = i_, b = l_.find('"', a);
    check(b != l_.npos, where_, ": ", what, " from column ", a, " has no closing quote");
    i_ = b + 1;
    return l_.substr(a, b - a);
  }
  void expect_end() {
    skip_space();
    check(i_ == l_.size(), where_, ": unexpected text after the entry at column ", i_ + 1);
  }
  const std::string& where() const { return where_; }

 private:
  void skip_space() {
    while (i_ < l_.size() && std::isspace(static_cast<unsigned char>(l_[i_]))) ++i_;
  }
  std::string found() const {
    return i_ < l_.size() ? "'" + std::string(1, l_[i_]) + "'" : std::string("the end of the line");
  }
  std::string_view l_;
  size_t i_ = 0;
  std::string where_;
};

bool is_vowel(std::string_view phoneme) {
  return std::string_view("aeiou").find(phoneme[0]) != std::string_view::npos;
}

// ("word" pos (((ph ph) 1) ((ph) 0)))
LexiconEntry parse_entry(Cursor& c, bool stress, CmudictPhones set) {
  c.expect('(', "opening the entry");
  LexiconEntry e;
  const std::string_view word = c.quoted("the quoted word");
  check(!word.empty(), c.where(), ": the word is empty");
  for (char ch : word) {
    check(std::isalpha(static_cast<unsigned char>(ch)) || ch == '\'' || ch == '-' || ch == '.',
          c.where(), ": the word \"", word, "\" holds '", std::string(1, ch),
          "' (expected letters, apostrophes, hyphens, periods)");
    e.src += char(std::tolower(static_cast<unsigned char>(ch)));
  }
  c.symbol("the part of speech");
  c.expect('(', "opening the syllable list");
  std::string phones;
  int syllables = 0;
  while (c.at('(')) {
    c.expect('(', "opening a syllable");
    c.expect('(', "opening the syllable's phonemes");
    std::vector<std::string_view> ps;
    while (!c.at(')')) {
      const std::string_view p = c.symbol("a phoneme");
      for (char ch : p)
        check(std::islower(static_cast<unsigned char>(ch)), c.where(), ": phoneme \"", p,
              "\" is not lower-case letters");
      ps.push_back(p);
    }
    c.expect(')', "closing the syllable's phonemes");
    check(!ps.empty(), c.where(), ": syllable ", syllables + 1, " has no phonemes");
    const std::string_view digit = c.symbol("the syllable's stress digit");
    check(digit.size() == 1 && digit[0] >= '0' && digit[0] <= '2', c.where(),
          ": the stress of syllable ", syllables + 1, " is \"", digit, "\" (expected 0, 1 or 2)");
    c.expect(')', "closing a syllable");
    for (std::string_view p : ps) {
      if (!phones.empty()) phones += ' ';
      phones += (p == "ax" && set == CmudictPhones::cmudict) ? std::string_view("ah") : p;
      if (stress && is_vowel(p)) phones += digit;
    }
    ++syllables;
  }
  check(syllables > 0, c.where(), ": the entry has no syllables");
  c.expect(')', "closing the syllable list");
  c.expect(')', "closing the entry");
  c.expect_end();
  e.refs.push_back(std::move(phones));
  return e;
}

}  // namespace

std::vector<LexiconEntry> parse_cmudict(std::string_view text, const std::string& file,
                                        bool stress, CmudictPhones set) {
  utf8_check_lines(text, file);
  std::vector<LexiconEntry> out;
  int64_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == text.npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == l.npos) continue;
    if (line == 1 && l == "MNCL") continue;  // Festival's lexicon header
    Cursor c(l, file + ":" + std::to_string(line));
    out.push_back(parse_entry(c, stress, set));
  }
  check(!out.empty(), file, ": no entries");
  return out;
}

G2pOptions g2p_options(JsonReader& r) {
  G2pOptions o;
  o.file = r.get_string("file", o.file);
  o.stress = r.get_bool("stress", o.stress);
  o.phones = r.get_enum("phones", o.phones);
  o.valid = r.get_number("valid", o.valid, 0, 1, /*lo_open=*/true);
  o.test = r.get_number("test", o.test, 0, 1, /*lo_open=*/true);
  check(o.valid + o.test < 1, r.path_of("test"), ": valid + test must be < 1, got ", o.valid, " + ",
        o.test);
  return o;
}

std::unique_ptr<Dataset> make_g2p(const G2pOptions& o, uint64_t seed) {
  struct stat st;
  check(::stat(o.file.c_str(), &st) == 0, "g2p: missing file '", o.file,
        "' (the Debian package festlex-cmu provides it; tools/setup.sh installs it)");
  std::vector<LexiconEntry> entries =
      merge_entries(parse_cmudict(read_file_bytes(o.file, "g2p"), o.file, o.stress, o.phones));
  Generator gen = data_generator(seed, "g2p");
  LexiconSpec spec;
  spec.src_level = Vocab::Level::chars;
  spec.tgt_level = Vocab::Level::words;  // phonemes are space-separated symbols
  spec.seq_metric = "wer";
  spec.token_metric = "per";
  return std::make_unique<LexiconDataset>(
      "g2p", split_entries(std::move(entries), o.valid, o.test, gen, "g2p: '" + o.file + "'"),
      spec);
}

namespace {
const DatasetRegistrar registered("g2p", [](JsonReader& r, uint64_t seed) {
  const G2pOptions o = g2p_options(r);
  return DatasetRecipe{[o, seed] { return make_g2p(o, seed); }};
});
}  // namespace

}  // namespace qkv::data

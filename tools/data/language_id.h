// The language-id data set: which language is this word? Words from the word
// lists Debian installs under /usr/share/dict (wamerican, wngerman, wfrench,
// ...), read as UTF-8 code points (a line that is not valid UTF-8 is an error
// naming file and line), lower-cased (ASCII and Latin-1 letters), kept only
// when made of letters (no apostrophes, hyphens, digits: "aardvark's" would
// give English away), and dropped when the same word is in more than one list
// (so every word has one right answer). Each class gets the same number of
// words (balanced), drawn by the seed; then the text-classification data set
// (character level) splits them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tools/data/text.h"

namespace qkv::data {

struct LanguageIdOptions {
  std::string dir = "/usr/share/dict";
  std::vector<std::string> languages;  // empty: every language of language_id_lists()
  int64_t per_class = 10000;           // words per language
  int64_t max_len = 32;                // characters kept per word
  double valid = 0.1, test = 0.1;      // fractions of each class
  Json extra = Json::object();         // "languages"
};
LanguageIdOptions language_id_options(JsonReader& r);
std::unique_ptr<Dataset> make_language_id(const LanguageIdOptions& o, uint64_t seed);

struct WordList {
  const char* language;  // class name
  const char* file;      // under dir
  const char* package;   // the Debian package that installs it
  bool latin1 = false;   // ISO-8859-1 rather than UTF-8 (wswedish), converted when read
};
const std::vector<WordList>& language_id_lists();

// ISO-8859-1 text as UTF-8 (every byte is the code point of its value).
std::string latin1_to_utf8(std::string_view text);
// The words of a list's text (the contents of file): lower-cased, letters only.
std::vector<std::string> read_word_list(std::string_view text, const std::string& file);

}  // namespace qkv::data

// Word lists to a balanced character-level classification data set.
#include "tools/data/language_id.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "engine/error.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"
#include "tools/data/tsv.h"
#include "tools/data/utf8.h"

namespace qkv::data {

const std::vector<WordList>& language_id_lists() {
  static const std::vector<WordList> lists = {
      {"dutch", "dutch", "wdutch"},       {"english", "american-english", "wamerican"},
      {"french", "french", "wfrench"},    {"german", "ngerman", "wngerman"},
      {"italian", "italian", "witalian"}, {"portuguese", "portuguese", "wportuguese"},
      {"spanish", "spanish", "wspanish"}, {"swedish", "swedish", "wswedish", /*latin1=*/true},
  };
  return lists;
}

namespace {

// ASCII and Latin-1 upper case to lower case (U+00C0..U+00DE but U+00D7 ×),
// other code points as they are; "" if c is not a letter.
std::string lower_letter(const std::string& c) {
  const auto b0 = static_cast<unsigned char>(c[0]);
  if (c.size() == 1) {
    if (!std::isalpha(b0)) return "";
    return std::string(1, char(std::tolower(b0)));
  }
  if (c.size() == 2 && b0 == 0xC3) {  // U+00C0..U+00FF
    const auto b1 = static_cast<unsigned char>(c[1]);
    if (b1 == 0x97 || b1 == 0xB7) return "";  // × ÷
    if (b1 >= 0x80 && b1 <= 0x9E) return std::string{char(b0), char(b1 + 0x20)};
    return c;
  }
  if (c.size() == 2 && b0 == 0xC2) return "";  // U+0080..U+00BF: controls, signs, symbols
  return c;  // other scripts' letters, Latin Extended (œ, ł, ...)
}

}  // namespace

std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += char(0xC0 | (c >> 6));
      out += char(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::vector<std::string> read_word_list(std::string_view text, const std::string& file) {
  utf8_check_lines(text, file);
  std::vector<std::string> words;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == text.npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string w;
    bool letters = !line.empty();
    for (const auto& c : utf8_split(line, file)) {
      const std::string l = lower_letter(c);
      letters = letters && !l.empty();
      w += l;
    }
    if (letters) words.push_back(std::move(w));
  }
  return words;
}

LanguageIdOptions language_id_options(JsonReader& r) {
  LanguageIdOptions o;
  o.dir = r.get_string("dir", o.dir);
  std::vector<std::string> known;
  for (const auto& l : language_id_lists()) known.push_back(l.language);
  const Json langs = r.get_raw("languages");
  if (!langs.is_null()) {
    check(langs.is_array() && langs.size() >= 2, r.path_of("languages"),
          ": expected a list of at least 2 languages, got ", langs.dump());
    for (size_t i = 0; i < langs.size(); ++i) {
      const bool ok = langs[i].is_string() && std::find(known.begin(), known.end(),
                                                        langs[i].get<std::string>()) != known.end();
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      check(ok, r.path_of("languages"), "[", i, "]: expected one of ", list, ", got ",
            langs[i].dump());
      o.languages.push_back(langs[i]);
    }
    std::sort(o.languages.begin(), o.languages.end());
    check(std::adjacent_find(o.languages.begin(), o.languages.end()) == o.languages.end(),
          r.path_of("languages"), ": a language is listed twice");
    o.extra["languages"] = langs;
  } else {
    o.languages = known;
  }
  o.per_class = r.get_int("per_class", o.per_class, 10);
  o.max_len = r.get_int("max_len", o.max_len, 1);
  o.valid = r.get_number("valid", o.valid, 0, 1, /*lo_open=*/true);
  o.test = r.get_number("test", o.test, 0, 1, /*lo_open=*/true);
  check(o.valid + o.test < 1, r.path_of("test"), ": valid + test must be < 1, got ", o.valid, " + ",
        o.test);
  return o;
}

std::unique_ptr<Dataset> make_language_id(const LanguageIdOptions& o, uint64_t seed) {
  // Each language's distinct words, then the words of more than one language dropped.
  std::vector<std::vector<std::string>> words;
  std::unordered_map<std::string, int> lists_of;  // word -> number of lists holding it
  for (const auto& lang : o.languages) {
    const WordList& l = *std::find_if(language_id_lists().begin(), language_id_lists().end(),
                                      [&](const WordList& x) { return lang == x.language; });
    const std::string path = o.dir + "/" + l.file;
    struct stat st;
    check(::stat(path.c_str(), &st) == 0, "language-id: missing word list '", path,
          "' (the Debian package ", l.package, " provides it; tools/setup.sh installs it)");
    std::string text = read_file_bytes(path, "language-id");
    if (l.latin1) text = latin1_to_utf8(text);
    std::vector<std::string> ws = read_word_list(text, path);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    for (const auto& w : ws) ++lists_of[w];
    words.push_back(std::move(ws));
  }
  Generator gen = data_generator(seed, "language-id");
  TextClasses classes;
  for (size_t c = 0; c < words.size(); ++c) {
    std::vector<std::string> own;
    for (auto& w : words[c])
      if (lists_of[w] == 1) own.push_back(std::move(w));
    check(int64_t(own.size()) >= o.per_class, "language-id: ", o.languages[c], " has ", own.size(),
          " words of its own, fewer than per_class = ", o.per_class);
    // A seed-fixed sample of per_class words (partial Fisher-Yates).
    for (int64_t i = 0; i < o.per_class; ++i)
      std::swap(own[size_t(i)], own[size_t(i + gen.next_below(int64_t(own.size()) - i))]);
    own.resize(size_t(o.per_class));
    classes.names.push_back(o.languages[c]);
    classes.examples.push_back(std::move(own));
  }
  TextClassificationOptions t;
  t.tokens = "chars";
  t.max_len = o.max_len;
  t.valid = o.valid;
  t.test = o.test;
  return make_text_classification(t, seed, "language-id", std::move(classes));
}

namespace {
const DatasetRegistrar registered("language-id", [](JsonReader& r, uint64_t seed) {
  const LanguageIdOptions o = language_id_options(r);
  return DatasetRecipe{[o, seed] { return make_language_id(o, seed); }, o.extra};
});
}  // namespace

}  // namespace qkv::data

// Text classification and the character-level language model over files.
#include "tools/data/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "engine/error.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"
#include "tools/data/tsv.h"
#include "tools/data/utf8.h"

namespace qkv::data {
namespace fs = std::filesystem;
namespace {

std::string read_text_file(const fs::path& p, const char* what) {
  std::ifstream in(p, std::ios::binary);
  check(bool(in), what, ": cannot read '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The non-hidden entries of dir, sorted by name.
std::vector<fs::directory_entry> list_dir(const std::string& dir, const char* what) {
  std::error_code ec;
  check(fs::is_directory(dir, ec), what, ": '", dir, "' is not a directory");
  std::vector<fs::directory_entry> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind('.', 0) != 0) out.push_back(e);
  }
  check(!ec, what, ": cannot list '", dir, "': ", ec.message());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return out;
}

// Whitespace runs to one space, trimmed; lower-cased for words.
std::string normalise(const std::string& text, bool lower) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += char(lower ? std::tolower(c) : c);
  }
  return out;
}

double read_fraction(JsonReader& r, const std::string& key, double def) {
  return r.get_number(key, def, 0, 1, /*lo_open=*/true);
}

// ---- text classification ----------------------------------------------------

struct Example {
  std::string text;          // normalised and truncated: what the model reads
  std::vector<int32_t> ids;  // encoded (unk for rare tokens)
  int32_t label = 0;
};

// One file per class (each non-empty line an example) or one folder per
// class (each file an example); classes sorted by name.
TextClasses load_class_dir(const std::string& dir) {
  const char* what = "text-classification";
  auto entries = list_dir(dir, what);
  const bool folders =
      std::any_of(entries.begin(), entries.end(), [](const auto& e) { return e.is_directory(); });
  TextClasses c;
  for (const auto& e : entries) {
    check(e.is_directory() == folders, what, ": '", dir, "' mixes files and folders ('",
          e.path().filename().string(), "'): use one file per class or one folder per class");
    std::vector<std::string> xs;
    if (folders) {
      for (const auto& f : list_dir(e.path().string(), what)) {
        if (!f.is_regular_file()) continue;
        std::string t = read_text_file(f.path(), what);
        utf8_check_lines(t, f.path().string());
        if (!normalise(t, false).empty()) xs.push_back(std::move(t));
      }
      c.names.push_back(e.path().filename().string());
    } else {
      const std::string text = read_text_file(e.path(), what);
      utf8_check_lines(text, e.path().string());
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);) {
        if (!normalise(line, false).empty()) xs.push_back(line);
      }
      c.names.push_back(e.path().stem().string());
    }
    check(!xs.empty(), what, ": class '", c.names.back(), "' in '", dir, "' has no examples");
    c.examples.push_back(std::move(xs));
  }
  check(c.examples.size() >= 2, what, ": '", dir, "' holds ", c.examples.size(),
        " classes; expected at least 2 (files or folders)");
  for (size_t i = 1; i < c.names.size(); ++i) {
    check(c.names[i] != c.names[i - 1], what, ": class '", c.names[i], "' appears twice in '", dir,
          "'");
  }
  return c;
}

TextClasses load_class_tsv(const std::string& file) {
  return classes_from_tsv(read_file_bytes(file, "text-classification"), file);
}

class TextClassification : public Dataset {
 public:
  TextClassification(const TextClassificationOptions& o, uint64_t seed, std::string name,
                     TextClasses classes)
      : o_(o), name_(std::move(name)) {
    const Vocab::Level level = o.tokens == "chars" ? Vocab::Level::chars : Vocab::Level::words;
    level_ = Vocab(std::vector<std::string>{}, level);  // only for split() before the vocab exists
    class_names_ = std::move(classes.names);
    std::vector<std::vector<std::string>>& by_class = classes.examples;
    Generator gen = data_generator(seed, name_);
    for (size_t c = 0; c < by_class.size(); ++c) {
      auto& xs = by_class[c];
      for (int64_t i = int64_t(xs.size()) - 1; i > 0; --i)
        std::swap(xs[size_t(i)], xs[size_t(gen.next_below(i + 1))]);
      const auto n_valid = size_t(std::llround(o.valid * double(xs.size())));
      const auto n_test =
          std::min(xs.size() - n_valid, size_t(std::llround(o.test * double(xs.size()))));
      for (size_t i = 0; i < xs.size(); ++i) {
        const Split s = i < n_valid            ? Split::valid
                        : i < n_valid + n_test ? Split::test
                                               : Split::train;
        splits_[size_t(s)].push_back({prepare(xs[i]), {}, int32_t(c)});
      }
    }
    for (Split s : {Split::train, Split::valid, Split::test}) {
      check(!splits_[size_t(s)].empty(), name_, ": the ", split_name(s),
            " split is empty (too few examples for the valid/test fractions)");
    }
    build_vocab(level);
    for (auto& split : splits_) {
      for (Example& e : split) e.ids = src_vocab_.encode(e.text);
    }
  }

  Task task() const override { return Task::text_classification; }
  std::string name() const override { return name_; }
  int64_t size(Split s) const override { return int64_t(splits_[size_t(s)].size()); }

  Batch batch(Split s, const std::vector<int64_t>& indices) const override {
    check(!indices.empty(), name_, ": batch of no examples");
    std::vector<const std::vector<int32_t>*> src;
    Batch b;
    b.labels = IntTensor({int64_t(indices.size())});
    for (size_t i = 0; i < indices.size(); ++i) {
      const Example& e = at(s, indices[i]);
      src.push_back(&e.ids);
      b.labels.data()[i] = e.label;
    }
    pad_sources(b, src);
    return b;
  }
  std::string source_text(Split s, int64_t i) const override { return at(s, i).text; }
  std::string target_text(Split s, int64_t i) const override {
    return class_names_[size_t(at(s, i).label)];
  }
  Batch encode_input(const std::string& text) const override {
    std::vector<int32_t> ids = src_vocab_.encode(prepare(text));
    check(!ids.empty(), name_, ": the input has no tokens");
    Batch b;
    pad_sources(b, {&ids});
    return b;
  }

 private:
  const Example& at(Split s, int64_t i) const {
    check(i >= 0 && i < size(s), name_, ": ", split_name(s), " example ", i,
          " out of range [0,", size(s), ")");
    return splits_[size_t(s)][size_t(i)];
  }

  // Normalised, cut to max_len tokens, re-joined as the model's text.
  std::string prepare(const std::string& raw) const {
    const bool words = level_.level() == Vocab::Level::words;
    std::vector<std::string> toks = level_.split(normalise(raw, words));
    if (int64_t(toks.size()) > o_.max_len) toks.resize(size_t(o_.max_len));
    std::string out;
    for (const auto& t : toks) out += (words && !out.empty() ? " " : "") + t;
    return out;
  }

  void build_vocab(Vocab::Level level) {
    std::map<std::string, int64_t> counts;
    for (const Example& e : splits_[size_t(Split::train)]) {
      for (auto& t : level_.split(e.text)) ++counts[t];
    }
    std::vector<std::string> keep;
    for (const auto& [t, n] : counts) {
      if (n >= o_.min_freq) keep.push_back(t);
    }
    src_vocab_ = Vocab(std::move(keep), level);
  }

  TextClassificationOptions o_;
  std::string name_;
  Vocab level_;  // empty vocabulary at the right level: its split() tokenises
  std::array<std::vector<Example>, 3> splits_;
};

// ---- language model ---------------------------------------------------------

class TextLm : public Dataset {
 public:
  // text: o.files concatenated, each ending in a newline (when empty: read here).
  TextLm(const TextLmOptions& o, std::string text) : seq_len_(o.seq_len), text_(std::move(text)) {
    if (!text_.empty()) utf8_check_lines(text_, "text-lm input");
    for (const auto& f : text_.empty() ? o.files : std::vector<std::string>{}) {
      const std::string t = read_text_file(f, "text-lm");
      utf8_check_lines(t, f);
      text_ += t;
      if (!text_.empty() && text_.back() != '\n') text_ += '\n';
    }
    // Characters are code points; offsets_ maps each to its first byte.
    const std::vector<std::string> chars = utf8_split(text_, "text-lm");
    offsets_.reserve(chars.size() + 1);
    size_t at = 0;
    for (const auto& c : chars) offsets_.push_back(std::exchange(at, at + c.size()));
    offsets_.push_back(at);
    src_vocab_ = Vocab(chars, Vocab::Level::chars);  // deduplicated inside
    ids_.reserve(chars.size());
    for (const auto& c : chars) ids_.push_back(src_vocab_.id(c));
    max_target_len_ = seq_len_;

    // Contiguous chunks: [0, a) train, [a, b) valid, [b, N) test.
    const auto N = int64_t(ids_.size());
    const auto b = N - int64_t(std::llround(o.test * double(N)));
    const auto a = b - int64_t(std::llround(o.valid * double(N)));
    chunk_ = {{{0, a}, {a, b}, {b, N}}};
    for (Split s : {Split::train, Split::valid, Split::test}) {
      const auto& [lo, hi] = chunk_[size_t(s)];
      check(size(s) >= 1, "text-lm: the ", split_name(s), " split has ", hi - lo,
            " characters, fewer than seq_len + 1 = ", seq_len_ + 1, " (", N,
            " characters in all): use more text, a smaller seq_len or a larger fraction");
    }
  }

  Task task() const override { return Task::language_model; }
  std::string name() const override { return "text-lm"; }
  int64_t size(Split s) const override {
    const auto& [lo, hi] = chunk_[size_t(s)];
    return hi - lo >= seq_len_ + 1 ? (hi - lo - 1) / seq_len_ : 0;
  }

  // src: [B,S] the windows' first S chars; tgt_out: [B,S] the next char of each.
  Batch batch(Split s, const std::vector<int64_t>& indices) const override {
    check(!indices.empty(), "text-lm: batch of no examples");
    const int64_t B = int64_t(indices.size()), S = seq_len_;
    Batch b;
    b.size = B;
    b.src = IntTensor({B, S});
    b.tgt_out = IntTensor({B, S});
    b.src_len = IntTensor::full({B}, int32_t(S));
    for (int64_t i = 0; i < B; ++i) {
      const int32_t* w = ids_.data() + start(s, indices[size_t(i)]);
      std::copy(w, w + S, b.src.data() + i * S);
      std::copy(w + 1, w + S + 1, b.tgt_out.data() + i * S);
    }
    return b;
  }
  std::string source_text(Split s, int64_t i) const override { return chars(start(s, i)); }
  std::string target_text(Split s, int64_t i) const override { return chars(start(s, i) + 1); }
  Batch encode_input(const std::string& text) const override {
    check(!text.empty(), "text-lm: empty input");
    std::vector<int32_t> ids = encode_strict(src_vocab_, text, "text-lm input");
    Batch b;
    pad_sources(b, {&ids});
    return b;
  }

 private:
  int64_t start(Split s, int64_t i) const {
    check(i >= 0 && i < size(s), "text-lm: ", split_name(s), " example ", i, " out of range [0,",
          size(s), ")");
    return chunk_[size_t(s)].first + i * seq_len_;
  }
  // seq_len_ characters from character `from`, as text.
  std::string chars(int64_t from) const {
    const size_t a = offsets_[size_t(from)], b = offsets_[size_t(from + seq_len_)];
    return text_.substr(a, b - a);
  }
  int64_t seq_len_;
  std::string text_;
  std::vector<size_t> offsets_;  // byte offset of each character, and the end
  std::vector<int32_t> ids_;
  std::array<std::pair<int64_t, int64_t>, 3> chunk_;  // [lo, hi) per split
};

}  // namespace

TextClassificationOptions text_classification_options(JsonReader& r) {
  TextClassificationOptions o;
  o.dir = r.get_string("dir", o.dir);
  o.file = r.get_string("file", o.file);
  check(o.dir.empty() != o.file.empty(), r.path_of("dir"),
        ": give either \"dir\" (a file or folder per class) or \"file\" (label<TAB>text lines)");
  o.tokens = r.get_string("tokens", o.tokens, {"words", "chars"});
  o.max_len = r.get_int("max_len", o.max_len, 1);
  o.min_freq = r.get_int("min_freq", o.min_freq, 1);
  o.valid = read_fraction(r, "valid", o.valid);
  o.test = read_fraction(r, "test", o.test);
  check(o.valid + o.test < 1, r.path_of("test"), ": valid + test must be < 1, got ", o.valid, " + ",
        o.test);
  return o;
}

std::unique_ptr<Dataset> make_text_classification(const TextClassificationOptions& o,
                                                  uint64_t seed) {
  return make_text_classification(o, seed, "text-classification",
                                  o.file.empty() ? load_class_dir(o.dir) : load_class_tsv(o.file));
}

std::unique_ptr<Dataset> make_text_classification(const TextClassificationOptions& o,
                                                  uint64_t seed, const std::string& name,
                                                  TextClasses classes) {
  return std::make_unique<TextClassification>(o, seed, name, std::move(classes));
}

TextLmOptions text_lm_options(JsonReader& r) {
  TextLmOptions o;
  const Json files = r.get_raw("files");
  o.dir = r.get_string("dir", o.dir);
  check(files.is_null() != o.dir.empty(), r.path_of("files"),
        ": give either \"files\" (a list of text files) or \"dir\" (a folder of them)");
  if (!files.is_null()) {
    check(files.is_array() && !files.empty(), r.path_of("files"),
          ": expected a non-empty list of file names, got ", files.dump());
    for (size_t i = 0; i < files.size(); ++i) {
      check(files[i].is_string(), r.path_of("files"), "[", i, "]: expected a file name, got ",
            files[i].dump());
      o.files.push_back(files[i].get<std::string>());
    }
    o.extra["files"] = files;
  } else {
    for (const auto& e : list_dir(o.dir, "text-lm")) {
      if (e.is_regular_file()) o.files.push_back(e.path().string());
    }
    check(!o.files.empty(), r.path_of("dir"), ": '", o.dir, "' holds no files");
  }
  o.seq_len = r.get_int("seq_len", o.seq_len, 1, 100000);
  o.valid = read_fraction(r, "valid", o.valid);
  o.test = read_fraction(r, "test", o.test);
  check(o.valid + o.test < 1, r.path_of("test"), ": valid + test must be < 1, got ", o.valid, " + ",
        o.test);
  return o;
}

std::unique_ptr<Dataset> make_text_lm(const TextLmOptions& o) {
  return std::make_unique<TextLm>(o, std::string());
}

std::unique_ptr<Dataset> make_text_lm(const TextLmOptions& o, std::string text) {
  check(!text.empty(), "text-lm: no text");
  return std::make_unique<TextLm>(o, std::move(text));
}

// "label<TAB>text" lines; classes sorted by label, examples in file order.
TextClasses classes_from_tsv(std::string_view bytes, const std::string& file) {
  std::map<std::string, std::vector<std::string>> by_label;
  for (auto& row : read_tsv(bytes, file, {"label", "text"}))
    by_label[row.fields[0]].push_back(std::move(row.fields[1]));
  check(by_label.size() >= 2, "text-classification: '", file, "' holds ", by_label.size(),
        " labels; expected at least 2");
  TextClasses c;
  for (auto& [label, xs] : by_label) {
    c.names.push_back(label);
    c.examples.push_back(std::move(xs));
  }
  return c;
}


namespace {
const DatasetRegistrar registered_classification("text-classification", [](JsonReader& r,
                                                                           uint64_t seed) {
  const TextClassificationOptions o = text_classification_options(r);
  return DatasetRecipe{[o, seed] { return make_text_classification(o, seed); }};
});
const DatasetRegistrar registered_lm("text-lm", [](JsonReader& r, uint64_t) {
  const TextLmOptions o = text_lm_options(r);
  return DatasetRecipe{[o] { return make_text_lm(o); }, o.extra};
});
}  // namespace

}  // namespace qkv::data

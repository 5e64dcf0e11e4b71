// Data sets from text files on disk:
//  - text-classification: a directory with one file per class (each non-empty
//    line one example; the class is the file name without its extension) or
//    one folder per class (each file one example), or one TSV file of
//    "label<TAB>text" lines (the layout `qkv data` exports). Words (lower-cased,
//    whitespace-separated) or characters; whitespace runs become one space.
//    Each class is shuffled (seed-fixed) and cut into valid / test / train
//    fractions, so every split holds every class in proportion.
//  - text-lm: one or more text files, concatenated, character level; the
//    text is cut into contiguous chunks (train first, then valid, then test)
//    and each chunk into windows of seq_len + 1 characters: src = the first
//    seq_len, tgt_out = the next character of each (the window shifted by one).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/data/dataset.h"

namespace qkv::data {

struct TextClassificationOptions {
  std::string dir;                 // a file or folder per class; or
  std::string file;                // one TSV file of label<TAB>text lines
  std::string tokens = "words";    // words or chars
  int64_t max_len = 256;           // tokens kept per example (the rest is cut)
  int64_t min_freq = 1;            // training-split count a token needs to get an id (else unk)
  double valid = 0.1, test = 0.1;  // fractions of each class
};
TextClassificationOptions text_classification_options(JsonReader& r);
std::unique_ptr<Dataset> make_text_classification(const TextClassificationOptions& o,
                                                  uint64_t seed);

// Examples by class, for a data set that makes its own classes (language-id).
struct TextClasses {
  std::vector<std::string> names;                  // sorted
  std::vector<std::vector<std::string>> examples;  // per class, each non-empty
};
// The same data set over the given classes, named `name` (and its split seeded by name).
std::unique_ptr<Dataset> make_text_classification(const TextClassificationOptions& o,
                                                  uint64_t seed, const std::string& name,
                                                  TextClasses classes);
// The classes of a label<TAB>text file's bytes (file names it in errors).
TextClasses classes_from_tsv(std::string_view bytes, const std::string& file);

struct TextLmOptions {
  std::vector<std::string> files;  // "files", or every file of "dir" (sorted)
  std::string dir;
  int64_t seq_len = 64;
  double valid = 0.05, test = 0.05;  // fractions of the text, from its end
  Json extra = Json::object();       // resolved values JsonReader does not record ("files")
};
TextLmOptions text_lm_options(JsonReader& r);
std::unique_ptr<Dataset> make_text_lm(const TextLmOptions& o);
// The same from the text of o.files already read and concatenated (not empty).
std::unique_ptr<Dataset> make_text_lm(const TextLmOptions& o, std::string text);

}  // namespace qkv::data

// Data sets from text files on disk:
//  - text-classification: a directory with one file per class (each non-empty
//    line one example; the class is the file name without its extension) or
//    one folder per class (each file one example). Words (lower-cased,
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
#include <utility>
#include <vector>

#include "tools/data/dataset.h"

namespace qkv::data {

struct TextClassificationOptions {
  std::string dir;                 // required
  std::string tokens = "words";    // words or chars
  int64_t max_len = 256;           // tokens kept per example (the rest is cut)
  int64_t min_freq = 1;            // training-split count a token needs to get an id (else unk)
  double valid = 0.1, test = 0.1;  // fractions of each class
};
TextClassificationOptions text_classification_options(JsonReader& r);
std::unique_ptr<Dataset> make_text_classification(const TextClassificationOptions& o,
                                                  uint64_t seed);
// The same from class files already read: (class name, the file's text), one
// example a line, sorted by name (o.dir only names them in messages).
std::unique_ptr<Dataset> make_text_classification(
    const TextClassificationOptions& o, uint64_t seed,
    const std::vector<std::pair<std::string, std::string>>& class_files);

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

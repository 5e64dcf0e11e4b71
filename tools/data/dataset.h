// Data sets for the experiment runner: generated (dates, addition, sequence)
// or loaded (fashion-mnist, text-classification, text-lm), each with train /
// valid / test splits fixed by the experiment's seed, served as padded batches.
//
// Legend: B batch, S source time, T target time, C/IH/IW image channels, height, width.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/tensor.h"
#include "nn/batch.h"
#include "nn/json_config.h"
#include "nn/model.h"

namespace qkv::data {

enum class Split { train, valid, test };
const char* split_name(Split s);  // "train", "valid", "test"

using Task = qkv::TaskKind;  // seq2seq, text_classification, image_classification, language_model

// A token vocabulary. Ids 0..3 are the specials, in this order; the tokens
// follow, sorted, so a vocabulary rebuilt from the same config gets the same ids.
class Vocab {
 public:
  static constexpr int32_t pad = 0, bos = 1, eos = 2, unk = 3;
  enum class Level { chars, words };  // chars: UTF-8 code points; words: split on whitespace

  Vocab() = default;
  Vocab(std::vector<std::string> tokens, Level level);  // sorted and deduplicated inside
  int64_t size() const { return int64_t(tokens_.size()); }  // including the 4 specials
  Level level() const { return level_; }
  int32_t id(const std::string& token) const;                  // unk when unknown
  const std::string& token(int32_t id) const;                  // "<pad>", "<s>", "</s>", "<unk>" for specials
  // text's tokens at this level; Error "text: invalid UTF-8 at byte N" for chars.
  std::vector<std::string> split(const std::string& text) const;
  std::vector<int32_t> encode(const std::string& text) const;     // no bos / eos added
  // Stops at eos, skips pad and bos; words are joined by single spaces.
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  std::vector<std::string> tokens_;
  Level level_ = Level::chars;
  std::unordered_map<std::string, int32_t> ids_;  // token -> id, specials included
};

using Batch = qkv::Batch;  // nn/batch.h

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual Task task() const = 0;
  virtual std::string name() const = 0;  // "dates", ...
  virtual int64_t size(Split s) const = 0;
  // The examples `indices` of split s (each in [0, size(s))), in that order, as one batch.
  virtual Batch batch(Split s, const std::vector<int64_t>& indices) const = 0;
  // Example i as text, for showing predictions: its source and its reference
  // target (the class name for classification; for images, "image #i").
  virtual std::string source_text(Split s, int64_t i) const = 0;
  virtual std::string target_text(Split s, int64_t i) const = 0;
  // A user's input (qkv predict --input TEXT) as a batch of one, encoded
  // exactly as the data set encodes its sources (reversal included).
  // Throws qkv::Error naming what cannot be encoded (e.g. images: not supported).
  virtual Batch encode_input(const std::string& text) const = 0;

  // ---- scoring hook: metrics of the data set's own (g2p's WER and PER) ----
  // The evaluation hands a data set that scores predictions the model's
  // decoded output for each example (greedy, or beam search when beam > 1);
  // score() adds per-example sums (so slices and processes add up) and
  // metrics() turns sums into the metrics listed after the model's.
  virtual bool scores_predictions() const { return false; }
  // predictions[k]: the decoded ids (eos included if reached) of example indices[k] of s.
  virtual void score(Split s, const std::vector<int64_t>& indices,
                     const std::vector<std::vector<int32_t>>& predictions, EvalSums& sums) const;
  // The same names for any sums, empty ones included (metric names come from metrics({})).
  virtual Metrics metrics(const EvalSums& sums) const;
  // Every reference target of example i (several for a word with several
  // pronunciations); by default the one target_text. export_tsv writes one line each.
  virtual std::vector<std::string> target_texts(Split s, int64_t i) const {
    return {target_text(s, i)};
  }

  // What the model needs to know; the runner fills these into the model config.
  const Vocab* src_vocab() const { return src_vocab_.size() ? &src_vocab_ : nullptr; }
  const Vocab* tgt_vocab() const { return tgt_vocab_.size() ? &tgt_vocab_ : nullptr; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  std::vector<int64_t> image_shape() const { return image_shape_; }  // {C,H,W} or empty
  int64_t max_target_len() const { return max_target_len_; }         // decode limit, eos included
  // The same as named facts for a model config ({"src_vocab": 40, "tgt_vocab": 14,
  // "classes": 2}; only the known ones, > 0; tgt_vocab is src_vocab when there is one
  // vocabulary): a model type's registration says which config key takes which fact.
  Json facts() const;
  // A model's prediction (ids: decoded tokens, a class id, or an LM's added tokens) as
  // text, for the input it was made from, by this data set's task: the target text,
  // the class name, or the input continued. tokens (if not null) receives the output
  // labels one per id (the class name; nothing for a language model).
  std::string output_text(const std::string& input, const std::vector<int32_t>& ids,
                          std::vector<std::string>* tokens = nullptr) const;

 protected:
  Vocab src_vocab_, tgt_vocab_;  // the LM uses src_vocab_ for both
  std::vector<std::string> class_names_;
  std::vector<int64_t> image_shape_;
  int64_t max_target_len_ = 0;
};

struct Made {
  std::unique_ptr<Dataset> dataset;
  Json resolved;  // the "data" config with every default filled in
};

// cfg: the experiment's "data" object ({"name": "dates", "train": 20000, ...});
// path names it in errors ("data"). Unknown keys and bad values throw
// qkv::Error naming the JSON path; missing or corrupt files name the file.
// seed fixes generation and the split of loaded data. "name" is looked up
// among the registered data sets (tools/data/registry.h).
Made make_dataset(const Json& cfg, uint64_t seed, const std::string& path = "data");

// The registered data set names (those make_dataset knows), sorted.
std::vector<std::string> dataset_names();

// Writes split s as "source<TAB>target" lines (so a peer script can train on
// exactly qkv's data, and the pairs data set reads it back): the source as
// the model sees it (reversal included), one line per reference target; a
// classification set writes "label<TAB>text" lines, the layout its TSV reader
// takes. Tab, newline and backslash are escaped as \t, \n, \\. Image data
// sets throw qkv::Error.
void export_tsv(const Dataset& d, Split s, const std::string& path);

}  // namespace qkv::data

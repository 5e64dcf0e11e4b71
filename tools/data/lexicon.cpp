// Sources with several references: splits by source, vocabularies from the
// training split, batches, and the error-rate scoring hook.
#include "tools/data/lexicon.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "engine/error.h"
#include "tools/data/pairs.h"

namespace qkv::data {

std::vector<LexiconEntry> merge_entries(std::vector<LexiconEntry> entries) {
  std::vector<LexiconEntry> out;
  std::unordered_map<std::string, size_t> at;
  for (auto& e : entries) {
    auto [it, added] = at.emplace(e.src, out.size());
    if (added) {
      out.push_back({std::move(e.src), {}});
    }
    auto& refs = out[it->second].refs;
    for (auto& r : e.refs) {
      if (std::find(refs.begin(), refs.end(), r) == refs.end()) refs.push_back(std::move(r));
    }
  }
  return out;
}

LexiconSplits split_entries(std::vector<LexiconEntry> entries, double valid, double test,
                            Generator& gen, const std::string& what) {
  const auto N = int64_t(entries.size());
  for (int64_t i = N - 1; i > 0; --i)
    std::swap(entries[size_t(i)], entries[size_t(gen.next_below(i + 1))]);
  const auto n_test = int64_t(std::llround(test * double(N)));
  const auto n_valid = int64_t(std::llround(valid * double(N)));
  check(n_test >= 1 && n_valid >= 1 && N - n_test - n_valid >= 1, what, ": ", N,
        " distinct sources are too few for valid ", valid, " and test ", test,
        " (each split needs at least one)");
  LexiconSplits s;
  auto take = [&](int64_t from, int64_t n) {
    return std::vector<LexiconEntry>(std::make_move_iterator(entries.begin() + from),
                                     std::make_move_iterator(entries.begin() + from + n));
  };
  s[size_t(Split::test)] = take(0, n_test);
  s[size_t(Split::valid)] = take(n_test, n_valid);
  s[size_t(Split::train)] = take(n_test + n_valid, N - n_test - n_valid);
  return s;
}

int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  // One row of the dynamic programme: row[j] = distance(a[:i], b[:j]).
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = int64_t(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];
    row[0] = int64_t(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// ---- the data set -----------------------------------------------------------

LexiconDataset::LexiconDataset(std::string name, LexiconSplits splits, LexiconSpec spec)
    : name_(std::move(name)), spec_(std::move(spec)), splits_(std::move(splits)) {
  for (Split s : {Split::train, Split::valid, Split::test})
    check(!splits_[size_t(s)].empty(), name_, ": the ", split_name(s), " split is empty");
  // Vocabularies from the training split only.
  const Vocab src_level({}, spec_.src_level), tgt_level({}, spec_.tgt_level);
  std::vector<std::string> src_tokens, tgt_tokens;
  for (const auto& e : splits_[size_t(Split::train)]) {
    for (auto& t : src_level.split(e.src)) src_tokens.push_back(std::move(t));
    for (const auto& r : e.refs)
      for (auto& t : tgt_level.split(r)) tgt_tokens.push_back(std::move(t));
  }
  src_vocab_ = Vocab(std::move(src_tokens), spec_.src_level);
  tgt_vocab_ = Vocab(std::move(tgt_tokens), spec_.tgt_level);
  for (size_t s = 0; s < 3; ++s) {
    const auto& entries = splits_[s];
    for (size_t k = 0; k < entries.size(); ++k) {
      Encoded enc{src_vocab_.encode(entries[k].src), {}};
      check(!enc.src.empty() && !entries[k].refs.empty(), name_, ": source \"", entries[k].src,
            "\" has no tokens or no reference");
      for (const auto& r : entries[k].refs) {
        enc.refs.push_back(tgt_vocab_.encode(r));
        check(!enc.refs.back().empty(), name_, ": a reference of \"", entries[k].src,
              "\" has no tokens");
        max_target_len_ = std::max<int64_t>(max_target_len_, int64_t(enc.refs.back().size()) + 1);
      }
      // Training sees every reference; evaluation one example per source.
      const size_t n = Split(s) == Split::train ? enc.refs.size() : 1;
      for (size_t r = 0; r < n; ++r) examples_[s].push_back({int32_t(k), int32_t(r)});
      encoded_[s].push_back(std::move(enc));
    }
  }
}

const LexiconDataset::Example& LexiconDataset::at(Split s, int64_t i) const {
  check(i >= 0 && i < size(s), name_, ": ", split_name(s), " example ", i, " out of range [0,",
        size(s), ")");
  return examples_[size_t(s)][size_t(i)];
}

Batch LexiconDataset::batch(Split s, const std::vector<int64_t>& indices) const {
  check(!indices.empty(), name_, ": batch of no examples");
  std::vector<const std::vector<int32_t>*> src, tgt;
  for (int64_t i : indices) {
    const Example& x = at(s, i);
    const Encoded& e = encoded_[size_t(s)][size_t(x.entry)];
    src.push_back(&e.src);
    tgt.push_back(&e.refs[size_t(x.ref)]);
  }
  Batch b;
  pad_sources(b, src);
  pad_targets(b, tgt);
  return b;
}

std::string LexiconDataset::source_text(Split s, int64_t i) const {
  return splits_[size_t(s)][size_t(at(s, i).entry)].src;
}

std::string LexiconDataset::target_text(Split s, int64_t i) const {
  const Example& x = at(s, i);
  return splits_[size_t(s)][size_t(x.entry)].refs[size_t(x.ref)];
}

std::vector<std::string> LexiconDataset::target_texts(Split s, int64_t i) const {
  // Training examples are one per reference already.
  if (s == Split::train) return {target_text(s, i)};
  return splits_[size_t(s)][size_t(at(s, i).entry)].refs;
}

Batch LexiconDataset::encode_input(const std::string& text) const {
  std::vector<int32_t> ids = src_vocab_.encode(text);
  check(!ids.empty(), name_, ": the input has no tokens");
  Batch b;
  pad_sources(b, {&ids});
  return b;
}

void LexiconDataset::score(Split s, const std::vector<int64_t>& indices,
                           const std::vector<std::vector<int32_t>>& predictions,
                           EvalSums& sums) const {
  check(predictions.size() == indices.size(), name_, ": ", predictions.size(), " predictions for ",
        indices.size(), " examples");
  double errors = 0, edits = 0, ref_tokens = 0;
  std::vector<int32_t> pred;
  for (size_t k = 0; k < indices.size(); ++k) {
    const Encoded& e = encoded_[size_t(s)][size_t(at(s, indices[k]).entry)];
    pred = predictions[k];
    if (!pred.empty() && pred.back() == Vocab::eos) pred.pop_back();
    // The nearest reference (the first of equal distance) sets both counts.
    int64_t best = -1;
    size_t best_len = 0;
    for (const auto& r : e.refs) {
      const int64_t d = edit_distance(pred, r);
      if (best < 0 || d < best) best = d, best_len = r.size();
    }
    errors += best > 0;
    edits += double(best);
    ref_tokens += double(best_len);
  }
  sums["scored_sequences"] += double(indices.size());
  sums["sequence_errors"] += errors;
  sums["scored_ref_tokens"] += ref_tokens;
  sums["token_edits"] += edits;
}

Metrics LexiconDataset::metrics(const EvalSums& s) const {
  return {{spec_.seq_metric, eval_rate(s, "sequence_errors", "scored_sequences")},
          {spec_.token_metric, eval_rate(s, "token_edits", "scored_ref_tokens")}};
}

}  // namespace qkv::data

// Pairs of texts as a seq2seq data set; distinct drawing; padded batches.
#include "tools/data/pairs.h"

#include <algorithm>
#include <unordered_set>

#include "engine/error.h"
#include "tools/data/utf8.h"

namespace qkv::data {

SplitSizes read_split_sizes(JsonReader& r, SplitSizes def) {
  SplitSizes n;
  n.train = r.get_int("train", def.train, 1);
  n.valid = r.get_int("valid", def.valid, 1);
  n.test = r.get_int("test", def.test, 1);
  // draw_distinct holds every example at once, a Pair each at least.
  r.check_fits((double(n.train) + double(n.valid) + double(n.test)) * double(sizeof(Pair)),
               "the examples", {"train", "valid", "test"});
  return n;
}

Generator data_generator(uint64_t seed, const std::string& name) {
  // FNV-1a of the name, then a splitmix64 finaliser of seed ^ hash.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  uint64_t z = seed ^ h;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return Generator(z ^ (z >> 31));
}

namespace {

// Cuts a list already in draw order (test, valid, train) into the splits.
Splits cut(std::vector<Pair> all, const SplitSizes& n) {
  Splits s;
  auto take = [&](size_t from, int64_t count) {
    return std::vector<Pair>(std::make_move_iterator(all.begin() + int64_t(from)),
                             std::make_move_iterator(all.begin() + int64_t(from) + count));
  };
  s[size_t(Split::test)] = take(0, n.test);
  s[size_t(Split::valid)] = take(size_t(n.test), n.valid);
  s[size_t(Split::train)] = take(size_t(n.test + n.valid), n.train);
  return s;
}

}  // namespace

Splits draw_distinct(const SplitSizes& n, Generator& gen,
                     const std::function<Pair(Generator&)>& draw, const std::string& what) {
  std::vector<Pair> all;
  all.reserve(size_t(n.total()));
  std::unordered_set<std::string> seen;
  seen.reserve(size_t(n.total()) * 2);
  // Rejection sampling; the budget only runs out when the space of distinct
  // sources is (nearly) smaller than the request.
  const int64_t budget = 20 * n.total() + 10000;
  for (int64_t tries = 0; int64_t(all.size()) < n.total(); ++tries) {
    check(tries < budget, what, ": train + valid + test = ", n.total(),
          " distinct examples requested, but only ", all.size(), " found in ", budget,
          " draws: the configuration has too few distinct sources; ask for fewer examples");
    Pair p = draw(gen);
    if (seen.insert(p.src).second) all.push_back(std::move(p));
  }
  return cut(std::move(all), n);
}

Splits split_all(std::vector<Pair> all, const SplitSizes& n, Generator& gen,
                 const std::string& what) {
  check(n.total() <= int64_t(all.size()), what, ": train + valid + test = ", n.total(),
        " exceeds the ", all.size(), " distinct examples this configuration has");
  // Fisher-Yates, stopping once the first n.total() places are drawn.
  for (int64_t i = 0; i < n.total(); ++i) {
    int64_t j = i + gen.next_below(int64_t(all.size()) - i);
    std::swap(all[size_t(i)], all[size_t(j)]);
  }
  all.resize(size_t(n.total()));
  return cut(std::move(all), n);
}

// ---- padding ----------------------------------------------------------------

void pad_sources(Batch& b, const std::vector<const std::vector<int32_t>*>& seqs) {
  const int64_t B = int64_t(seqs.size());
  int64_t S = 1;
  for (const auto* q : seqs) S = std::max<int64_t>(S, int64_t(q->size()));
  b.size = B;
  b.src = IntTensor::full({B, S}, Vocab::pad);
  b.src_len = IntTensor({B});
  for (int64_t i = 0; i < B; ++i) {
    const auto& q = *seqs[size_t(i)];
    check(!q.empty(), "batch: example ", i, " has an empty source");
    std::copy(q.begin(), q.end(), b.src.data() + i * S);
    b.src_len.data()[i] = int32_t(q.size());
  }
}

void pad_targets(Batch& b, const std::vector<const std::vector<int32_t>*>& tgts) {
  const int64_t B = int64_t(tgts.size());
  int64_t T = 1;
  for (const auto* q : tgts) T = std::max<int64_t>(T, int64_t(q->size()) + 1);
  b.tgt_in = IntTensor::full({B, T}, Vocab::pad);
  b.tgt_out = IntTensor::full({B, T}, Vocab::pad);
  for (int64_t i = 0; i < B; ++i) {
    const auto& q = *tgts[size_t(i)];
    int32_t* in = b.tgt_in.data() + i * T;
    int32_t* out = b.tgt_out.data() + i * T;
    in[0] = Vocab::bos;
    std::copy(q.begin(), q.end(), in + 1);
    std::copy(q.begin(), q.end(), out);
    out[q.size()] = Vocab::eos;
  }
}

std::vector<int32_t> encode_strict(const Vocab& v, const std::string& text,
                                   const std::string& what) {
  const std::vector<std::string> chars = utf8_split(text, what);
  std::vector<int32_t> ids;
  ids.reserve(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) {
    ids.push_back(v.id(chars[i]));
    check(ids.back() != Vocab::unk, what, ": character '", chars[i], "' at ", i,
          " is not in the source vocabulary");
  }
  return ids;
}

// ---- the data set -----------------------------------------------------------

namespace {

// The source's ids, in the order the model reads them.
std::vector<int32_t> encode_source(const Vocab& v, const std::string& text, bool reverse,
                                   const std::string& what) {
  std::vector<int32_t> ids = encode_strict(v, text, what);
  if (reverse) std::reverse(ids.begin(), ids.end());
  return ids;
}

}  // namespace

PairDataset::PairDataset(std::string name, Splits splits, const std::string& src_alphabet,
                         const std::string& tgt_alphabet, bool reverse_source)
    : name_(std::move(name)), splits_(std::move(splits)), reverse_source_(reverse_source) {
  src_vocab_ = Vocab(utf8_split(src_alphabet, name_ + " alphabet"), Vocab::Level::chars);
  tgt_vocab_ = Vocab(utf8_split(tgt_alphabet, name_ + " alphabet"), Vocab::Level::chars);
  for (size_t s = 0; s < 3; ++s) {
    for (const Pair& p : splits_[s]) {
      // Generators only emit alphabet characters: an unk here is a bug in one.
      src_ids_[s].push_back(encode_source(src_vocab_, p.src, reverse_source_, name_));
      tgt_ids_[s].push_back(encode_strict(tgt_vocab_, p.tgt, name_ + " target"));
      max_target_len_ = std::max<int64_t>(max_target_len_, int64_t(tgt_ids_[s].back().size()) + 1);
    }
  }
}

int64_t PairDataset::size(Split s) const { return int64_t(splits_[size_t(s)].size()); }

const Pair& PairDataset::at(Split s, int64_t i) const {
  check(i >= 0 && i < size(s), name_, ": ", split_name(s), " example ", i, " out of range [0,",
        size(s), ")");
  return splits_[size_t(s)][size_t(i)];
}

Batch PairDataset::batch(Split s, const std::vector<int64_t>& indices) const {
  check(!indices.empty(), name_, ": batch of no examples");
  std::vector<const std::vector<int32_t>*> src, tgt;
  for (int64_t i : indices) {
    at(s, i);  // range check
    src.push_back(&src_ids_[size_t(s)][size_t(i)]);
    tgt.push_back(&tgt_ids_[size_t(s)][size_t(i)]);
  }
  Batch b;
  pad_sources(b, src);
  pad_targets(b, tgt);
  return b;
}

std::string PairDataset::source_text(Split s, int64_t i) const { return at(s, i).src; }
std::string PairDataset::target_text(Split s, int64_t i) const { return at(s, i).tgt; }

Batch PairDataset::encode_input(const std::string& text) const {
  check(!text.empty(), name_, ": empty input");
  std::vector<int32_t> ids = encode_source(src_vocab_, text, reverse_source_, name_ + " input");
  Batch b;
  pad_sources(b, {&ids});
  return b;
}

}  // namespace qkv::data

// The decoding loops, model-agnostic and batched over sources: see nn/decoding.h.
#include "nn/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "engine/error.h"

namespace qkv {
namespace {

const double kDead = -std::numeric_limits<double>::infinity();

// Appends row r of t ([R,W], or [R,G,W]: each of its G groups), the first `take` columns of
// each group; `take` zeros when t is undefined (a model without attention).
void append_row(const Tensor& t, int64_t r, int64_t take, std::vector<float>& out) {
  if (!t.defined()) {
    out.insert(out.end(), size_t(take), 0.f);
    return;
  }
  const int64_t W = t.size(t.dim() - 1), G = t.numel() / (t.size(0) * W);
  const float* p = t.data() + r * G * W;
  for (int64_t g = 0; g < G; ++g) out.insert(out.end(), p + g * W, p + g * W + take);
}

// rows: T_out rows of [NH,S] -> [NH,T_out,S]
Tensor head_matrix(const std::vector<float>& rows, int64_t NH, int64_t S) {
  if (NH == 0) return Tensor();
  const int64_t T = int64_t(rows.size()) / (NH * S);
  Tensor a({NH, T, S});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < NH; ++h)
      std::copy_n(rows.data() + (t * NH + h) * S, S, a.data() + (h * T + t) * S);
  return a;
}

Tensor attention_of(const std::vector<float>& rows, int64_t S) {
  return Tensor::from({int64_t(rows.size()) / std::max<int64_t>(S, 1), S}, rows);
}

// N, after checking that the per-source options agree.
int64_t check_options(const DecodeOptions& o, const char* op) {
  const int64_t N = int64_t(o.src_len.size());
  check(int64_t(o.max_len.size()) == N, op, ": max_len has ", o.max_len.size(), " entries for ", N,
        " sources");
  for (int64_t n = 0; n < N; ++n) {
    check(o.max_len[size_t(n)] >= 1, op, ": max_len must be >= 1, got ", o.max_len[size_t(n)]);
    check(o.src_len[size_t(n)] >= 1, op, ": src_len must be >= 1, got ", o.src_len[size_t(n)]);
  }
  return N;
}

// The rows that stay, as new row k <- old row keep[k]: the live rows among the first `live`
// keep their places and the live rows after them fill the gaps, so keep[k] >= k and each
// row moves at most once: a state can select in place, moving one row per retired row
// (rather than every row after the first retired one).
void retire_rows(const std::vector<uint8_t>& alive, size_t R, size_t live,
                 std::vector<int32_t>& keep) {
  keep.resize(live);
  size_t tail = R;  // the next live row from the end to fill a gap with
  for (size_t k = 0; k < live; ++k) {
    if (alive[k]) {
      keep[k] = int32_t(k);
      continue;
    }
    do --tail;
    while (!alive[tail]);
    keep[k] = int32_t(tail);
  }
}

}  // namespace

float normalised_score(double logp, size_t len, float alpha) {
  return float(logp / std::pow(double(std::max<size_t>(len, 1)), double(alpha)));
}

bool selects_in_place(const IntTensor& rows) {
  std::vector<bool> taken;
  for (int64_t k = 0; k < rows.numel(); ++k) {
    const int32_t r = rows.data()[k];
    if (r < k) return false;
    if (size_t(r) >= taken.size()) taken.resize(size_t(r) + 1);
    if (taken[size_t(r)]) return false;
    taken[size_t(r)] = true;
  }
  return true;
}

void select_rows(Tensor& x, const IntTensor& rows, bool in_place) {
  if (!in_place || !x.sole_owner()) {
    x = index_select(x, rows);
    return;
  }
  const int64_t W = x.numel() / std::max<int64_t>(x.size(0), 1);
  for (int64_t k = 0; k < rows.numel(); ++k)
    if (rows.data()[k] != k) std::copy_n(x.data() + rows.data()[k] * W, W, x.data() + k * W);
  x = x.narrow_rows(0, rows.numel());
}

// ---- greedy -------------------------------------------------------------------------

std::vector<Decoded> greedy_decode(DecodeState& st, const DecodeOptions& o) {
  const int64_t N = check_options(o, "greedy_decode");
  struct Run {
    std::vector<float> rows, head_rows;  // attention [len*S_n], per head [len*NH*S_n]
    double total = 0;
  };
  std::vector<Decoded> out(static_cast<size_t>(N));
  std::vector<Run> run(static_cast<size_t>(N));
  std::vector<int32_t> source(static_cast<size_t>(N));  // the source of each row
  std::iota(source.begin(), source.end(), 0);
  IntTensor input = IntTensor::full({N}, o.bos);
  int64_t NH = 0;
  std::vector<int32_t> token(static_cast<size_t>(N)), keep;  // each row's token, kept rows
  std::vector<uint8_t> alive(static_cast<size_t>(N));
  for (int64_t t = 0; !source.empty(); ++t) {
    const StepOutput s = st.step(input);
    const int64_t V = s.logp.size(1);
    if (s.head_attention.defined()) NH = s.head_attention.size(1);
    size_t live = 0;
    for (size_t r = 0; r < source.size(); ++r) {
      const size_t n = size_t(source[r]);
      const int64_t Sn = o.src_len[n];
      const float* p = s.logp.data() + int64_t(r) * V;
      const int32_t tok = int32_t(std::max_element(p, p + V) - p);  // first maximum on ties
      run[n].total += p[tok];
      out[n].tokens.push_back(tok);
      append_row(s.attention, int64_t(r), Sn, run[n].rows);
      if (s.head_attention.defined())
        append_row(s.head_attention, int64_t(r), Sn, run[n].head_rows);
      token[r] = tok;
      alive[r] = tok != o.eos && t + 1 < o.max_len[n];
      live += alive[r];
    }
    if (live == 0) break;
    if (live < source.size()) {
      retire_rows(alive, source.size(), live, keep);
      st.select(IntTensor::from({int64_t(live)}, keep));
      for (size_t k = 0; k < live; ++k)
        source[k] = source[size_t(keep[k])], token[k] = token[size_t(keep[k])];
      source.resize(live);
    }
    input = IntTensor::from({int64_t(live)},
                            std::vector<int32_t>(token.begin(), token.begin() + ptrdiff_t(live)));
  }
  for (size_t n = 0; n < size_t(N); ++n) {
    out[n].attention = attention_of(run[n].rows, o.src_len[n]);
    out[n].head_attention = head_matrix(run[n].head_rows, NH, o.src_len[n]);
    out[n].score = float(run[n].total);
  }
  return out;
}

// ---- beam search --------------------------------------------------------------------

namespace {

// One source's search. Hypotheses share prefixes: each generated token is a node
// pointing at its parent, so extending a hypothesis copies nothing.
struct Beam {
  struct Node {
    int32_t parent;  // node index, -1 at the start
    int32_t token;
  };
  struct Hyp {
    int32_t node = -1;  // last token's node (-1: nothing generated yet)
    double logp = 0;
    size_t len = 0;
  };
  std::vector<Node> nodes;
  std::vector<float> rows, head_rows;  // node i's attention: S_n (per head NH*S_n) floats
  std::vector<Hyp> live;               // the K rows; dead rows have logp = -inf
  std::vector<Hyp> finished;

  // The tokens and attention rows from the start to `h`.
  Decoded trace(const Hyp& h, int64_t S, int64_t NH, float alpha) const {
    std::vector<int32_t> path;
    for (int32_t i = h.node; i >= 0; i = nodes[size_t(i)].parent) path.push_back(i);
    std::reverse(path.begin(), path.end());
    Decoded d;
    std::vector<float> att, heads;
    for (int32_t i : path) {
      d.tokens.push_back(nodes[size_t(i)].token);
      att.insert(att.end(), rows.begin() + i * S, rows.begin() + (i + 1) * S);
      if (NH)
        heads.insert(heads.end(), head_rows.begin() + i * NH * S,
                     head_rows.begin() + (i + 1) * NH * S);
    }
    d.attention = attention_of(att, S);
    d.head_attention = head_matrix(heads, NH, S);
    d.score = normalised_score(h.logp, h.len, alpha);
    return d;
  }
};

struct Cand {
  double score;
  int32_t parent, token;
};

// Best first; ties by parent then token, so beam 1 picks greedy's first maximum.
bool better(const Cand& a, const Cand& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.parent != b.parent) return a.parent < b.parent;
  return a.token < b.token;
}

}  // namespace

std::vector<Decoded> beam_decode(DecodeState& st, const DecodeOptions& o, int64_t beam_size,
                                 float alpha) {
  const int64_t N = check_options(o, "beam_decode");
  check(beam_size >= 1, "beam_decode: beam_size must be >= 1, got ", beam_size);
  check(alpha >= 0.f, "beam_decode: length-normalisation alpha must be >= 0, got ", alpha);
  const int64_t K = beam_size;
  std::vector<Beam> beams(static_cast<size_t>(N));
  for (Beam& b : beams) {  // only row 0 of each source starts alive
    b.live.resize(size_t(K));
    for (size_t k = 1; k < size_t(K); ++k) b.live[k].logp = kDead;
  }
  std::vector<int32_t> active(
      static_cast<size_t>(N));  // sources still searching, in row-block order
  std::iota(active.begin(), active.end(), 0);
  IntTensor input = IntTensor::full({N * K}, o.bos);
  int64_t NH = 0;
  std::vector<Cand> cands;
  std::vector<int32_t> keep, next_token, still_active;
  for (int64_t t = 0; !active.empty(); ++t) {
    const StepOutput s = st.step(input);
    const int64_t V = s.logp.size(1);
    if (s.head_attention.defined()) NH = s.head_attention.size(1);
    keep.clear(), next_token.clear(), still_active.clear();
    for (size_t a = 0; a < active.size(); ++a) {
      const size_t n = size_t(active[a]);
      const int64_t base = int64_t(a) * K, Sn = o.src_len[n];
      Beam& b = beams[n];
      cands.clear();
      for (int64_t k = 0; k < K; ++k) {
        if (b.live[size_t(k)].logp == kDead) continue;
        const float* p = s.logp.data() + (base + k) * V;
        for (int64_t v = 0; v < V; ++v)
          cands.push_back({b.live[size_t(k)].logp + p[v], int32_t(k), int32_t(v)});
      }
      // At most K candidates end in eos (one per row), so the best 2K fill the beam.
      const size_t take = std::min(cands.size(), size_t(2 * K));
      std::partial_sort(cands.begin(), cands.begin() + ptrdiff_t(take), cands.end(), better);
      std::vector<Beam::Hyp> next;
      std::vector<int32_t> parents;
      for (size_t i = 0; i < take && int64_t(next.size()) < K; ++i) {
        const Cand& c = cands[i];
        const Beam::Hyp& from = b.live[size_t(c.parent)];
        const Beam::Hyp h{int32_t(b.nodes.size()), c.score, from.len + 1};
        b.nodes.push_back({from.node, c.token});
        append_row(s.attention, base + c.parent, Sn, b.rows);
        if (s.head_attention.defined())
          append_row(s.head_attention, base + c.parent, Sn, b.head_rows);
        if (c.token == o.eos) {
          b.finished.push_back(h);
        } else {
          next.push_back(h);
          parents.push_back(c.parent);
        }
      }
      // Done once no live hypothesis can still beat the best finished one: its
      // log-prob only falls, so its best normalised score is logp / max_len^alpha.
      // (alpha = 0 and beam 1: stops exactly where greedy stops.)
      double best_done = kDead, best_live = kDead;
      for (const Beam::Hyp& h : b.finished)
        best_done = std::max(best_done, double(normalised_score(h.logp, h.len, alpha)));
      for (const Beam::Hyp& h : next)
        best_live = std::max(best_live, h.logp / std::pow(double(o.max_len[n]), double(alpha)));
      if (next.empty() || best_done >= best_live) continue;  // done
      if (t + 1 == o.max_len[n]) {  // the limit: unfinished hypotheses compete too
        b.finished.insert(b.finished.end(), next.begin(), next.end());
        continue;
      }
      while (int64_t(next.size()) < K) {  // fewer than K candidates: pad with dead rows
        next.push_back({-1, kDead, 0});
        parents.push_back(0);
      }
      for (int64_t k = 0; k < K; ++k) {
        keep.push_back(int32_t(base) + parents[size_t(k)]);
        const Beam::Hyp& h = next[size_t(k)];
        next_token.push_back(h.logp == kDead ? o.eos : b.nodes[size_t(h.node)].token);
      }
      b.live = std::move(next);
      still_active.push_back(int32_t(n));
    }
    active = still_active;
    if (active.empty()) break;
    st.select(IntTensor::from({int64_t(keep.size())}, keep));
    input = IntTensor::from({int64_t(next_token.size())}, next_token);
  }

  std::vector<Decoded> out;
  for (size_t n = 0; n < size_t(N); ++n) {
    const Beam& b = beams[n];
    size_t best = 0;
    for (size_t i = 1; i < b.finished.size(); ++i)
      if (normalised_score(b.finished[i].logp, b.finished[i].len, alpha) >
          normalised_score(b.finished[best].logp, b.finished[best].len, alpha))
        best = i;
    out.push_back(b.trace(b.finished[best], o.src_len[n], NH, alpha));
  }
  return out;
}

}  // namespace qkv

// The decoding loops, model-agnostic: see nn/decoding.h.
#include "nn/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace qkv {
namespace {

// Appends row k of a [K,...] tensor (or `width` zeros when undefined) to out.
void append_row(const Tensor& t, int64_t k, int64_t width, std::vector<float>& out) {
  if (!t.defined()) {
    out.insert(out.end(), size_t(width), 0.f);
    return;
  }
  const int64_t n = t.numel() / t.size(0);
  out.insert(out.end(), t.data() + k * n, t.data() + (k + 1) * n);
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

}  // namespace

float normalised_score(double logp, size_t len, float alpha) {
  return float(logp / std::pow(double(std::max<size_t>(len, 1)), double(alpha)));
}

Decoded greedy_decode(DecodeState& st, const DecodeOptions& o) {
  check(o.max_len >= 1, "greedy_decode: max_len must be >= 1, got ", o.max_len);
  const int64_t S = o.src_len;
  Decoded d;
  std::vector<float> rows, head_rows;
  int64_t NH = 0;
  double total = 0;
  int32_t tok = o.bos;
  for (int64_t t = 0; t < o.max_len; ++t) {
    StepOutput s = st.step(IntTensor::from({1}, {tok}));
    const int64_t V = s.logp.size(1);
    const float* p = s.logp.data();
    tok = int32_t(std::max_element(p, p + V) - p);  // first maximum on ties
    total += p[tok];
    d.tokens.push_back(tok);
    append_row(s.attention, 0, S, rows);
    if (s.head_attention.defined()) {
      NH = s.head_attention.size(1);
      append_row(s.head_attention, 0, NH * S, head_rows);
    }
    if (tok == o.eos) break;
  }
  d.attention = attention_of(rows, S);
  d.head_attention = head_matrix(head_rows, NH, S);
  d.score = float(total);
  return d;
}

Decoded beam_decode(DecodeState& st, const DecodeOptions& o, int64_t beam_size, float alpha) {
  check(o.max_len >= 1, "beam_decode: max_len must be >= 1, got ", o.max_len);
  check(beam_size >= 1, "beam_decode: beam_size must be >= 1, got ", beam_size);
  check(alpha >= 0.f, "beam_decode: length-normalisation alpha must be >= 0, got ", alpha);
  const int64_t K = beam_size, S = o.src_len;
  const double dead = -std::numeric_limits<double>::infinity();

  struct Hyp {
    std::vector<int32_t> tokens;
    std::vector<float> rows;       // attention, [len*S]
    std::vector<float> head_rows;  // per head, [len*NH*S]
    double logp = 0;
  };
  // The K live hypotheses are the state's K rows; only row 0 starts alive.
  std::vector<Hyp> live(static_cast<size_t>(K)), finished;
  for (int64_t k = 1; k < K; ++k) live[size_t(k)].logp = dead;
  IntTensor input = IntTensor::full({K}, o.bos);
  int64_t NH = 0;

  struct Cand {
    double score;
    int32_t parent, token;
  };
  std::vector<Cand> cands;
  bool hit_max = true;
  for (int64_t t = 0; t < o.max_len; ++t) {
    StepOutput s = st.step(input);
    const int64_t V = s.logp.size(1);
    if (s.head_attention.defined()) NH = s.head_attention.size(1);
    cands.clear();
    for (int64_t k = 0; k < K; ++k) {
      if (live[size_t(k)].logp == dead) continue;
      for (int64_t v = 0; v < V; ++v)
        cands.push_back({live[size_t(k)].logp + s.logp.data()[k * V + v], int32_t(k), int32_t(v)});
    }
    // Best first; ties by parent then token, so beam 1 picks greedy's first maximum.
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.parent != b.parent) return a.parent < b.parent;
      return a.token < b.token;
    });
    std::vector<Hyp> next;
    std::vector<int32_t> parents;
    for (const Cand& c : cands) {
      if (int64_t(next.size()) == K) break;
      Hyp h = live[size_t(c.parent)];
      h.tokens.push_back(c.token);
      h.logp = c.score;
      append_row(s.attention, c.parent, S, h.rows);
      if (s.head_attention.defined()) append_row(s.head_attention, c.parent, NH * S, h.head_rows);
      if (c.token == o.eos) {
        finished.push_back(std::move(h));
      } else {
        next.push_back(std::move(h));
        parents.push_back(c.parent);
      }
    }
    // Stop once no live hypothesis can still beat the best finished one: its
    // log-prob only falls, so its best normalised score is logp / max_len^alpha.
    // (alpha = 0 and beam 1: stops exactly where greedy stops.)
    double best_done = dead, best_live = dead;
    for (const Hyp& h : finished)
      best_done = std::max(best_done, double(normalised_score(h.logp, h.tokens.size(), alpha)));
    for (const Hyp& h : next)
      best_live = std::max(best_live, h.logp / std::pow(double(o.max_len), double(alpha)));
    if (next.empty() || best_done >= best_live) {
      hit_max = false;
      break;
    }
    while (int64_t(next.size()) < K) {  // fewer than K candidates: pad with dead rows
      next.emplace_back();
      next.back().logp = dead;
      parents.push_back(0);
    }
    st.select(IntTensor::from({K}, parents));
    for (int64_t k = 0; k < K; ++k)
      input.data()[k] = next[size_t(k)].tokens.empty() ? o.eos : next[size_t(k)].tokens.back();
    live = std::move(next);
  }
  if (hit_max)  // unfinished hypotheses compete too
    for (Hyp& h : live)
      if (h.logp != dead) finished.push_back(std::move(h));

  size_t best = 0;
  for (size_t i = 1; i < finished.size(); ++i)
    if (normalised_score(finished[i].logp, finished[i].tokens.size(), alpha) >
        normalised_score(finished[best].logp, finished[best].tokens.size(), alpha))
      best = i;
  Decoded d;
  d.tokens = finished[best].tokens;
  d.attention = attention_of(finished[best].rows, S);
  d.head_attention = head_matrix(finished[best].head_rows, NH, S);
  d.score = normalised_score(finished[best].logp, d.tokens.size(), alpha);
  return d;
}

}  // namespace qkv

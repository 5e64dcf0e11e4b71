// Fused scaled dot-product attention kernels (contract in attention.h).
// Forward: per (head, query block) it streams over key blocks, S_blk = scale
// Q_blk K_blk^T (block_gemm), masks, and an online softmax (running max m,
// running sum l; the output accumulator is rescaled by exp(m_old - m_new)),
// O_blk += P V_blk. Only lse = m + log(l) per row is kept. Backward: per head,
// recomputes P = exp(S - lse) block by block. The *_ref pair at the end is the
// definition, row by row in double.
#include "engine/kernels/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/gemm.h"
#include "engine/kernels/gemm_small.h"
#include "engine/kernels/row_moments.h"
#include "engine/kernels/transpose.h"
#include "engine/rng.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {

int64_t AttentionCall::key_limit(int64_t b, int64_t t) const {
  int64_t lim = S;
  if (!lengths.empty()) lim = std::min<int64_t>(lim, lengths[b]);
  if (causal) lim = std::min<int64_t>(lim, std::max<int64_t>(0, t + (S - T) + 1));
  return lim;
}

// Element i = r*S + s (+ drop_offset) is lane i % 4 of Philox block drop_base + i / 4.
void AttentionCall::drop_mask(int64_t r, int64_t s0, int64_t n, float* m) const {
  int64_t i = r * S + s0 + drop_offset;
  std::array<uint32_t, 4> blk = Generator::philox(drop_seed, drop_base + uint64_t(i / 4));
  for (int64_t j = 0; j < n; ++j, ++i) {
    if (j > 0 && i % 4 == 0) blk = Generator::philox(drop_seed, drop_base + uint64_t(i / 4));
    m[j] = u32_to_unit(blk[size_t(i % 4)]) < drop_p ? 0.f : drop_scale;
  }
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kBQ = 64;   // query rows per block
constexpr int64_t kBK = 128;  // keys per block

// max of s[0, n) (-inf when n == 0).
float row_max(const float* s, int64_t n) {
  using simd::VF;
  constexpr int64_t W = simd::W;
  float m = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  if (n >= W) {
    VF vm = VF::load_unaligned(s);
    for (j = W; j + W <= n; j += W) vm = xsimd::max(vm, VF::load_unaligned(s + j));
    m = simd::hmax(vm);
  }
  for (; j < n; ++j) m = std::max(m, s[j]);
  return m;
}

// C = alpha op(A) B + beta C on one block (see gemm.h for the layouts).
// Blocks whose columns fill whole vectors (a head dimension of 16, 32, 64;
// a key block of 128) take the unpacked register-tiled kernel, which is
// 2-5x faster than gemm() on them (measured on 64-128 rows, HD 32); ragged
// widths take gemm(), whose edge tiles handle any N.
void block_gemm(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (N % simd::W == 0)
    gemm_small(ta, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm(ta, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// p[j] = exp(s[j] - m) for j < n; returns the sum.
float exp_sub_sum(const float* s, float* p, int64_t n, float m) {
  using simd::VF;
  constexpr int64_t W = simd::W;
  const VF vm(m);
  VF acc(0.f);
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    VF e = xsimd::exp(VF::load_unaligned(s + j) - vm);
    e.store_unaligned(p + j);
    acc += e;
  }
  float sum = simd::hsum(acc);
  for (; j < n; ++j) {
    p[j] = std::exp(s[j] - m);
    sum += p[j];
  }
  return sum;
}

// Scores of rows [t0, t0+nq) x keys [s0, s0+nk) of head bh into sc (ld nk),
// scaled and masked (-inf where masked). kt: the head's keys transposed,
// [HD, S] (transpose_block of its [S, HD] rows).
void scores(const AttentionCall& a, int64_t bh, int64_t t0, int64_t nq, int64_t s0, int64_t nk,
            const float* q, const float* kt, float* sc) {
  block_gemm(false, nq, nk, a.HD, a.scale, q + a.at(a.lq, bh, t0), a.lq.st, kt + s0, a.S, 0.f, sc,
             nk);
  const int64_t b = bh / a.NH, h = bh % a.NH;
  const float* mp = a.mask.defined() ? a.mask.data() + b * a.ms[0] + h * a.ms[1] : nullptr;
  for (int64_t i = 0; i < nq; ++i) {
    float* row = sc + i * nk;
    const int64_t t = t0 + i;
    if (mp) {
      const float* mr = mp + t * a.ms[2];
      for (int64_t j = 0; j < nk; ++j) row[j] += mr[(s0 + j) * a.ms[3]];
    }
    const int64_t lim = a.key_limit(b, t);
    for (int64_t j = std::max<int64_t>(0, lim - s0); j < nk; ++j) row[j] = kNegInf;
  }
}

// Keys needed by query block [t0, t0+nq) of batch b: [0, end).
int64_t block_key_end(const AttentionCall& a, int64_t b, int64_t t0, int64_t nq) {
  int64_t end = 0;
  for (int64_t i = 0; i < nq; ++i) end = std::max(end, a.key_limit(b, t0 + i));
  return end;
}

}  // namespace

// ---- forward -----------------------------------------------------------------------

int64_t attention_forward(const AttentionCall& a, const float* q, const float* k, const float* v,
                          float* out, float* lse) {
  const int64_t BH = a.B * a.NH, T = a.T, HD = a.HD;
  const int64_t nqb = (T + kBQ - 1) / kBQ;
  const int64_t work = BH * T * a.S * std::max<int64_t>(HD, 1) / 4;
  int64_t bad_row = -1;  // smallest fully masked (bh*T + t), for the message
#pragma omp parallel num_threads(num_threads()) if (worth_threads(work) && num_threads() > 1)
  {
    std::vector<float> sc(kBQ * kBK), acc(kBQ * std::max<int64_t>(HD, 1)), m(kBQ), l(kBQ);
    std::vector<float> dm(a.drop_p > 0.f ? kBK : 0), kt(HD * a.S);
    int64_t my_bad = -1, kt_head = -1;
#pragma omp for schedule(static)
    for (int64_t w = 0; w < BH * nqb; ++w) {
      const int64_t bh = w / nqb, t0 = (w % nqb) * kBQ, nq = std::min(kBQ, T - t0);
      const int64_t b = bh / a.NH;
      if (bh != kt_head) {  // a thread's work items run in order: once per head
        transpose_block(k + a.at(a.lk, bh, 0), a.lk.st, a.S, HD, kt.data(), a.S);  // K^T [HD,S]
        kt_head = bh;
      }
      std::fill(acc.begin(), acc.begin() + nq * HD, 0.f);
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), 0.f);
      const int64_t kend = block_key_end(a, b, t0, nq);
      for (int64_t s0 = 0; s0 < kend; s0 += kBK) {
        const int64_t nk = std::min(kBK, kend - s0);
        scores(a, bh, t0, nq, s0, nk, q, kt.data(), sc.data());
        for (int64_t i = 0; i < nq; ++i) {
          float* row = sc.data() + i * nk;
          const float mb = row_max(row, nk);
          const float mnew = std::max(m[i], mb);
          if (mnew == kNegInf) {  // nothing visible yet: P = 0, state unchanged
            std::fill(row, row + nk, 0.f);
            continue;
          }
          const float alpha = m[i] == kNegInf ? 0.f : std::exp(m[i] - mnew);
          l[i] = l[i] * alpha + exp_sub_sum(row, row, nk, mnew);
          m[i] = mnew;
          if (alpha != 1.f) {
            float* ar = acc.data() + i * HD;
            for (int64_t d = 0; d < HD; ++d) ar[d] *= alpha;
          }
          if (a.drop_p > 0.f) {  // O accumulates dropout(P) V; l stays the undropped sum
            a.drop_mask(bh * T + t0 + i, s0, nk, dm.data());
            for (int64_t j = 0; j < nk; ++j) row[j] *= dm[j];
          }
        }
        block_gemm(false, nq, HD, nk, 1.f, sc.data(), nk, v + a.at(a.lv, bh, s0), a.lv.st, 1.f,
                   acc.data(), HD);
      }
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t r = bh * T + t0 + i;
        float* o = out + a.at(a.lo, bh, t0 + i);
        if (!(l[i] > 0.f)) {
          if (my_bad < 0 || r < my_bad) my_bad = r;
          std::fill(o, o + HD, 0.f);
          lse[r] = kNegInf;
          continue;
        }
        const float inv = 1.f / l[i];
        for (int64_t d = 0; d < HD; ++d) o[d] = acc[i * HD + d] * inv;
        lse[r] = m[i] + std::log(l[i]);
      }
    }
#pragma omp critical(qkv_sdpa_bad)
    if (my_bad >= 0 && (bad_row < 0 || my_bad < bad_row)) bad_row = my_bad;
  }
  return bad_row;
}

// ---- the weights -------------------------------------------------------------------

void attention_weights(const AttentionCall& a, const float* q, const float* k, const float* lse,
                       float* W) {
  const int64_t BH = a.B * a.NH, T = a.T, S = a.S;
  const int64_t nqb = (T + kBQ - 1) / kBQ;
  const int64_t work = BH * T * S * std::max<int64_t>(a.HD, 1) / 4;
#pragma omp parallel num_threads(num_threads()) if (worth_threads(work) && num_threads() > 1)
  {
    std::vector<float> sc(kBQ * kBK), kt(a.HD * S);
    int64_t kt_head = -1;
#pragma omp for schedule(static)
    for (int64_t x = 0; x < BH * nqb; ++x) {
      const int64_t bh = x / nqb, t0 = (x % nqb) * kBQ, nq = std::min(kBQ, T - t0);
      if (bh != kt_head) {
        transpose_block(k + a.at(a.lk, bh, 0), a.lk.st, S, a.HD, kt.data(), S);
        kt_head = bh;
      }
      const int64_t kend = block_key_end(a, bh / a.NH, t0, nq);
      for (int64_t s0 = 0; s0 < kend; s0 += kBK) {
        const int64_t nk = std::min(kBK, kend - s0);
        scores(a, bh, t0, nq, s0, nk, q, kt.data(), sc.data());
        for (int64_t i = 0; i < nq; ++i) {
          const int64_t r = bh * T + t0 + i;
          exp_sub_sum(sc.data() + i * nk, W + r * S + s0, nk, lse[r]);
        }
      }
      for (int64_t i = 0; i < nq; ++i)  // keys beyond every row's limit
        std::fill(W + (bh * T + t0 + i) * S + kend, W + (bh * T + t0 + i + 1) * S, 0.f);
    }
  }
}

// ---- backward ----------------------------------------------------------------------

void attention_backward(const AttentionCall& a, const float* q, const float* k, const float* v,
                        const float* o, const float* lse, const float* dout, const float* dw,
                        const float* w, float* dq, float* dk, float* dv) {
  const int64_t BH = a.B * a.NH, T = a.T, S = a.S, HD = a.HD;
  const int64_t work = BH * T * S * std::max<int64_t>(HD, 1) / 2;
#pragma omp parallel num_threads(num_threads()) if (worth_threads(work) && num_threads() > 1)
  {
    const bool drop = a.drop_p > 0.f;
    std::vector<float> P(kBQ * kBK), dP(kBQ * kBK), D(T);
    std::vector<float> M(drop ? kBQ * kBK : 0), Pd(drop ? kBQ * kBK : 0);  // mask, dropout(P)
    // This head's keys and values transposed ([HD,S], the right operands of
    // S = Q K^T and dP = dO V^T).
    std::vector<float> Kt(HD * S), Vt(dq || dk ? HD * S : 0);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const int64_t b = bh / a.NH;
      // this head's rows start at these pointers; row t is t * (layout).st further
      const float* Q = q + a.at(a.lq, bh, 0);
      const float* K = k + a.at(a.lk, bh, 0);
      const float* V = v + a.at(a.lv, bh, 0);
      const float* dO = dout + a.at(a.lo, bh, 0);
      const int64_t sq = a.lq.st, sk = a.lk.st, sv = a.lv.st, so = a.lo.st;
      float* dQ = dq ? dq + a.at(a.lq, bh, 0) : nullptr;
      float* dK = dk ? dk + a.at(a.lk, bh, 0) : nullptr;
      float* dV = dv ? dv + a.at(a.lv, bh, 0) : nullptr;
      transpose_block(K, sk, S, HD, Kt.data(), S);
      if (!Vt.empty()) transpose_block(V, sv, S, HD, Vt.data(), S);
      // D = rowsum(dO * O) (+ rowsum(dW * W) for the weights output)
      for (int64_t t = 0; t < T; ++t) {
        float s = rows::dot(dO + t * so, o + a.at(a.lo, bh, t), HD);
        if (dw) s += rows::dot(dw + (bh * T + t) * S, w + (bh * T + t) * S, S);
        D[t] = s;
      }
      // dQ, dK, dV are accumulated in place, in the gradients' own layouts (a
      // head's rows are L1/L2-sized). Key rows [0, kinit) hold a partial sum
      // already; a block's first product stores (beta 0) rather than adds.
      // The key range a query block sees only grows with t0 (key_limit is
      // nondecreasing in t), so rows >= kinit have never been written.
      int64_t kinit = 0;
      auto zero_rows = [HD](float* x, int64_t ld, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) std::fill_n(x + r * ld, HD, 0.f);
      };
      for (int64_t t0 = 0; t0 < T; t0 += kBQ) {
        const int64_t nq = std::min(kBQ, T - t0);
        const int64_t kend = block_key_end(a, b, t0, nq);
        if (dQ && kend == 0) zero_rows(dQ, sq, t0, t0 + nq);
        for (int64_t s0 = 0; s0 < kend; s0 += kBK) {
          const int64_t nk = std::min(kBK, kend - s0);
          // beta of this block's dK, dV products: 0 when all its rows are new,
          // else 1 (any new rows zeroed first)
          float kbeta = 1.f;
          if (s0 >= kinit) {
            kbeta = 0.f;
          } else if (s0 + nk > kinit) {
            if (dK) zero_rows(dK, sk, kinit, s0 + nk);
            if (dV) zero_rows(dV, sv, kinit, s0 + nk);
          }
          scores(a, bh, t0, nq, s0, nk, q, Kt.data(), P.data());
          for (int64_t i = 0; i < nq; ++i)
            exp_sub_sum(P.data() + i * nk, P.data() + i * nk, nk, lse[bh * T + t0 + i]);
          if (drop) {
            for (int64_t i = 0; i < nq; ++i)
              a.drop_mask(bh * T + t0 + i, s0, nk, M.data() + i * nk);
            for (int64_t j = 0; j < nq * nk; ++j) Pd[size_t(j)] = P[size_t(j)] * M[size_t(j)];
          }
          // O = dropout(P) V: dV [nk,HD] += dropout(P)^T dO
          if (dV)
            block_gemm(true, nk, HD, nq, 1.f, drop ? Pd.data() : P.data(), nk, dO + t0 * so, so,
                       kbeta, dV + s0 * sv, sv);
          if (!dQ && !dK) continue;
          block_gemm(false, nq, nk, HD, 1.f, dO + t0 * so, so, Vt.data() + s0, S, 0.f, dP.data(),
                     nk);
          for (int64_t i = 0; i < nq; ++i) {
            const int64_t r = bh * T + t0 + i;
            const float* p = P.data() + i * nk;
            float* g = dP.data() + i * nk;
            const float Di = D[t0 + i];
            if (drop) {  // d P = d dropout(P) * mask
              const float* mk = M.data() + i * nk;
              for (int64_t j = 0; j < nk; ++j) g[j] *= mk[j];
            }
            if (dw) {
              const float* gw = dw + r * S + s0;
              for (int64_t j = 0; j < nk; ++j) g[j] = p[j] * (g[j] + gw[j] - Di);
            } else {
              for (int64_t j = 0; j < nk; ++j) g[j] = p[j] * (g[j] - Di);
            }
          }
          // dQ [nq,HD] += scale dS K
          if (dQ)
            block_gemm(false, nq, HD, nk, a.scale, dP.data(), nk, K + s0 * sk, sk,
                       s0 == 0 ? 0.f : 1.f, dQ + t0 * sq, sq);
          // dK [nk,HD] += scale dS^T Q
          if (dK)
            block_gemm(true, nk, HD, nq, a.scale, dP.data(), nk, Q + t0 * sq, sq, kbeta,
                       dK + s0 * sk, sk);
        }
        kinit = std::max(kinit, kend);
      }
      // keys no query saw (beyond every key length) get zero gradients
      if (dK) zero_rows(dK, sk, kinit, S);
      if (dV) zero_rows(dV, sv, kinit, S);
    }
  }
}

// ---- references ----------------------------------------------------------------------

namespace {

// Row t of head bh: the masked, scaled scores s [S] (-inf where masked) and the
// softmax p [S] in double. Returns false when every key is masked (p all 0).
bool ref_row(const AttentionCall& a, int64_t bh, int64_t t, const float* q, const float* k,
             std::vector<double>& s, std::vector<double>& p, double* lse) {
  const int64_t b = bh / a.NH, h = bh % a.NH, S = a.S, HD = a.HD;
  const float* qt = q + a.at(a.lq, bh, t);
  const int64_t lim = a.key_limit(b, t);
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < S; ++j) {
    s[j] = -std::numeric_limits<double>::infinity();
    if (j >= lim) continue;
    const float* kj = k + a.at(a.lk, bh, j);
    double d = 0;
    for (int64_t c = 0; c < HD; ++c) d += double(qt[c]) * kj[c];
    s[j] = a.scale * d;
    if (a.mask.defined())
      s[j] += a.mask.data()[b * a.ms[0] + h * a.ms[1] + t * a.ms[2] + j * a.ms[3]];
    m = std::max(m, s[j]);
  }
  std::fill(p.begin(), p.end(), 0.0);
  if (m == -std::numeric_limits<double>::infinity()) return false;
  double sum = 0;
  for (int64_t j = 0; j < S; ++j) sum += std::exp(s[j] - m);
  for (int64_t j = 0; j < S; ++j) p[j] = std::exp(s[j] - m) / sum;
  *lse = m + std::log(sum);
  return true;
}

}  // namespace

int64_t attention_forward_ref(const AttentionCall& a, const float* q, const float* k,
                              const float* v, float* out, float* lse, float* w) {
  const int64_t BH = a.B * a.NH, T = a.T, S = a.S, HD = a.HD;
  std::vector<double> s(S), p(S), o(HD);
  std::vector<float> dm(S, 1.f);
  int64_t bad_row = -1;
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = bh * T + t;
      double l = -std::numeric_limits<double>::infinity();
      if (!ref_row(a, bh, t, q, k, s, p, &l) && bad_row < 0) bad_row = r;
      if (a.drop_p > 0.f) a.drop_mask(r, 0, S, dm.data());
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t j = 0; j < S; ++j) {
        const float* vj = v + a.at(a.lv, bh, j);
        for (int64_t c = 0; c < HD; ++c) o[c] += p[j] * dm[j] * vj[c];
      }
      float* ot = out + a.at(a.lo, bh, t);
      for (int64_t c = 0; c < HD; ++c) ot[c] = float(o[c]);
      lse[r] = float(l);
      if (w)
        for (int64_t j = 0; j < S; ++j) w[r * S + j] = float(p[j]);
    }
  return bad_row;
}

// out[t] = sum_j P[j] M[j] v[j] (M the dropout multipliers), so per row:
//   dv[j] += P[j] M[j] dout[t];  dP[j] = M[j] (dout[t] . v[j]) + dw[t,j]
//   ds[j] = P[j] (dP[j] - sum_i P[i] dP[i])          (softmax backward)
//   dq[t] += scale sum_j ds[j] k[j];  dk[j] += scale ds[j] q[t]
void attention_backward_ref(const AttentionCall& a, const float* q, const float* k, const float* v,
                            const float*, const float*, const float* dout, const float* dw,
                            const float*, float* dq, float* dk, float* dv) {
  const int64_t BH = a.B * a.NH, T = a.T, S = a.S, HD = a.HD;
  std::vector<double> s(S), p(S), dp(S), gq(T * HD), gk(S * HD), gv(S * HD);
  std::vector<float> dm(S, 1.f);
  for (int64_t bh = 0; bh < BH; ++bh) {
    std::fill(gq.begin(), gq.end(), 0.0);
    std::fill(gk.begin(), gk.end(), 0.0);
    std::fill(gv.begin(), gv.end(), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = bh * T + t;
      double l = 0;
      ref_row(a, bh, t, q, k, s, p, &l);
      if (a.drop_p > 0.f) a.drop_mask(r, 0, S, dm.data());
      const float* qt = q + a.at(a.lq, bh, t);
      const float* go = dout + a.at(a.lo, bh, t);
      double pdp = 0;
      for (int64_t j = 0; j < S; ++j) {
        const float* vj = v + a.at(a.lv, bh, j);
        double d = 0;
        for (int64_t c = 0; c < HD; ++c) {
          d += double(go[c]) * vj[c];
          gv[j * HD + c] += p[j] * dm[j] * go[c];
        }
        dp[j] = dm[j] * d + (dw ? dw[r * S + j] : 0.0);
        pdp += p[j] * dp[j];
      }
      for (int64_t j = 0; j < S; ++j) {
        const double ds = a.scale * p[j] * (dp[j] - pdp);
        const float* kj = k + a.at(a.lk, bh, j);
        for (int64_t c = 0; c < HD; ++c) {
          gq[t * HD + c] += ds * kj[c];
          gk[j * HD + c] += ds * qt[c];
        }
      }
    }
    for (int64_t t = 0; t < T && dq; ++t)
      for (int64_t c = 0; c < HD; ++c) dq[a.at(a.lq, bh, t) + c] = float(gq[t * HD + c]);
    for (int64_t j = 0; j < S; ++j)
      for (int64_t c = 0; c < HD; ++c) {
        if (dk) dk[a.at(a.lk, bh, j) + c] = float(gk[j * HD + c]);
        if (dv) dv[a.at(a.lv, bh, j) + c] = float(gv[j * HD + c]);
      }
  }
}

}  // namespace qkv

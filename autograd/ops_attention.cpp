// Fused scaled dot-product attention: softmax(Q K^T * scale + mask) V as one
// autograd op, in the manner of FlashAttention / PyTorch's CPU flash kernel.
//
// Forward: threads over (batch*head, query block); per query block it streams
// over key blocks, S_blk = scale Q_blk K_blk^T (block_gemm), masks, and an online
// softmax (running max m, running sum l; the output accumulator is rescaled by
// exp(m_old - m_new)), O_blk += P V_blk. Only lse = m + log(l) per row is kept.
// Backward: threads over batch*head (so dK, dV of a head have one owner, no
// locks), recomputes P = exp(S - lse) block by block:
//   D = rowsum(dO * O), dV += P^T dO, dP = dO V^T, dS = P * (dP - D),
//   dQ += scale dS K, dK += scale dS^T Q.
// Attention dropout (p > 0): the row's probabilities P are dropped after the
// softmax (its normaliser uses the undropped P), O = dropout(P) V. The mask of
// element i = (bh*T + t)*S + s is Philox draw i of the generator's counter, as
// dropout() draws it over a [B,NH,T,S] tensor, so the composite softmax ->
// dropout -> matmul with the same generator state gives the same mask. The
// backward regenerates it; D = rowsum(dO * O) still equals rowsum(P * dP).
// Layouts: q, k, v, out (and their gradients) are addressed through a Layout,
// so the same kernels read [B,NH,T,HD] tensors or the packed [B,T,3D]
// in-projection of self-attention (q | k | v along the last axis) and write
// [B,T,D] with the heads merged, without any permute or slice copies.
// The composite matmul + softmax + matmul is its oracle (tests/autograd/test_attention.cpp).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/gemm_small.h"
#include "engine/kernels/row_moments.h"
#include "engine/kernels/transpose.h"
#include "engine/rng.h"
#include "engine/simd.h"
#include "engine/threads.h"

namespace qkv {
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
void block_gemm(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
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

// Row t of head h of batch b of one operand starts at b*sb + h*sh + t*st;
// its HD elements are contiguous, st is the GEMM leading dimension.
struct Layout {
  int64_t sb = 0, sh = 0, st = 0;
};

// [B,NH,T,HD] contiguous.
Layout layout_bhtd(int64_t NH, int64_t T, int64_t HD) { return {NH * T * HD, T * HD, HD}; }
// [B,T,W] with head h at columns [h*HD, (h+1)*HD) (plus the caller's column offset).
Layout layout_btw(int64_t T, int64_t HD, int64_t W) { return {T * W, HD, W}; }

// Everything the kernels need to know about one call.
struct Sdpa {
  int64_t B = 0, NH = 0, T = 0, S = 0, HD = 0;
  float scale = 1.f;
  bool causal = false;
  std::vector<int32_t> lengths;  // [B] or empty
  Tensor mask;                   // additive, or undefined
  int64_t ms[4] = {0, 0, 0, 0};  // broadcast strides of mask over [B,NH,T,S]
  float drop_p = 0.f;            // attention dropout probability (0: none)
  float drop_scale = 1.f;        // 1 / (1 - drop_p)
  uint64_t drop_seed = 0, drop_base = 0;  // Philox key and first counter of the mask
  Layout lq, lk, lv, lo;                  // of q, k, v, out (gradients share them)

  // Offset of row t of head bh (= b*NH + h) in an operand of layout L.
  int64_t at(const Layout& L, int64_t bh, int64_t t) const {
    return (bh / NH) * L.sb + (bh % NH) * L.sh + t * L.st;
  }

  // m[j] = dropout multiplier (0 or 1/(1-p)) of row r = bh*T + t, keys [s0, s0+n):
  // element i = r*S + s is lane i % 4 of Philox block drop_base + i / 4.
  void drop_mask(int64_t r, int64_t s0, int64_t n, float* m) const {
    int64_t i = r * S + s0;
    std::array<uint32_t, 4> blk = Generator::philox(drop_seed, drop_base + uint64_t(i / 4));
    for (int64_t j = 0; j < n; ++j, ++i) {
      if (j > 0 && i % 4 == 0) blk = Generator::philox(drop_seed, drop_base + uint64_t(i / 4));
      m[j] = u32_to_unit(blk[size_t(i % 4)]) < drop_p ? 0.f : drop_scale;
    }
  }

  // Keys [0, limit) can be visible to query row t of batch b (a bound, not a mask).
  int64_t key_limit(int64_t b, int64_t t) const {
    int64_t lim = S;
    if (!lengths.empty()) lim = std::min<int64_t>(lim, lengths[b]);
    if (causal) lim = std::min<int64_t>(lim, t + (S - T) + 1);
    return lim;
  }

  // Scores of rows [t0, t0+nq) x keys [s0, s0+nk) of head bh into sc (ld nk),
  // scaled and masked (-inf where masked). kt: the head's keys transposed,
  // [HD, S] (transpose_block of its [S, HD] rows).
  void scores(int64_t bh, int64_t t0, int64_t nq, int64_t s0, int64_t nk, const float* q,
              const float* kt, float* sc) const {
    block_gemm(false, nq, nk, HD, scale, q + at(lq, bh, t0), lq.st, kt + s0, S, 0.f, sc, nk);
    const int64_t b = bh / NH, h = bh % NH;
    const float* mp = mask.defined() ? mask.data() + b * ms[0] + h * ms[1] : nullptr;
    for (int64_t i = 0; i < nq; ++i) {
      float* row = sc + i * nk;
      const int64_t t = t0 + i;
      if (mp) {
        const float* mr = mp + t * ms[2];
        for (int64_t j = 0; j < nk; ++j) row[j] += mr[(s0 + j) * ms[3]];
      }
      const int64_t lim = key_limit(b, t);
      for (int64_t j = std::max<int64_t>(0, lim - s0); j < nk; ++j) row[j] = kNegInf;
    }
  }

  // Keys needed by query block [t0, t0+nq) of batch b: [0, end).
  int64_t block_key_end(int64_t b, int64_t t0, int64_t nq) const {
    int64_t end = 0;
    for (int64_t i = 0; i < nq; ++i) end = std::max(end, key_limit(b, t0 + i));
    return end;
  }
};

// The masks, scale and dropout of a call whose sizes and layouts are set in a.
Sdpa prepare_rest(const char* op, Sdpa a, bool causal, const IntTensor* key_lengths,
                  const Tensor& attn_mask, float scale, float dropout_p, Generator* gen) {
  check(!causal || a.T == a.S, op, ": causal requires T == S; got T=", a.T, " S=", a.S);
  a.causal = causal;
  a.scale = scale > 0.f ? scale : 1.f / std::sqrt(float(std::max<int64_t>(a.HD, 1)));
  if (key_lengths) {
    check(key_lengths->dim() == 1 && key_lengths->size(0) == a.B, op,
          ": key_lengths must be [B] = [", a.B, "]; got ", key_lengths->shape());
    a.lengths.assign(key_lengths->begin(), key_lengths->end());
    for (int32_t L : a.lengths)
      check(L >= 0 && L <= a.S, op, ": key length ", L, " outside [0, ", a.S, "]");
  }
  if (attn_mask.defined()) {
    check(attn_mask.dim() <= 4, op, ": attn_mask ", attn_mask.shape(),
          " does not broadcast to [B,NH,T,S]");
    const Shape full = {a.B, a.NH, a.T, a.S};
    Shape ms(4, 1);
    for (int64_t i = 0; i < attn_mask.dim(); ++i) ms[4 - attn_mask.dim() + i] = attn_mask.size(i);
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      check(ms[i] == full[i] || ms[i] == 1, op, ": attn_mask ", attn_mask.shape(),
            " does not broadcast to ", full);
      a.ms[i] = ms[i] == 1 ? 0 : stride;
      stride *= ms[i];
    }
    a.mask = attn_mask;
  }
  check(dropout_p >= 0.f && dropout_p < 1.f, op, ": dropout_p must be in [0, 1), got ", dropout_p);
  if (dropout_p > 0.f) {
    check(gen != nullptr, op, ": dropout_p = ", dropout_p, " needs a generator");
    a.drop_p = dropout_p;
    a.drop_scale = 1.f / (1.f - dropout_p);
    a.drop_seed = gen->seed();
    a.drop_base = gen->counter();
    // consume the draws of a [B,NH,T,S] mask, as dropout() over the weights would
    const int64_t n = a.B * a.NH * a.T * a.S;
    gen->set_state(gen->seed(), gen->counter() + uint64_t((n + 3) / 4));
  }
  return a;
}

// q: [B,NH,T,HD], k, v: [B,NH,S,HD]; out [B,NH,T,HD]
Sdpa prepare(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
             const IntTensor* key_lengths, const Tensor& attn_mask, float scale, float dropout_p,
             Generator* gen) {
  check(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
        ": q, k, v must be [B,NH,T,HD], [B,NH,S,HD], [B,NH,S,HD]; got ", q.shape(), ", ",
        k.shape(), ", ", v.shape());
  Sdpa a;
  a.B = q.size(0), a.NH = q.size(1), a.T = q.size(2), a.HD = q.size(3), a.S = k.size(2);
  check(k.size(0) == a.B && k.size(1) == a.NH && k.size(3) == a.HD && v.shape() == k.shape(),
        op, ": k and v must be [B,NH,S,HD] matching q ", q.shape(), "; got ", k.shape(), ", ",
        v.shape());
  a.lq = a.lo = layout_bhtd(a.NH, a.T, a.HD);
  a.lk = a.lv = layout_bhtd(a.NH, a.S, a.HD);
  return prepare_rest(op, a, causal, key_lengths, attn_mask, scale, dropout_p, gen);
}

// qkv: [B,T,3D] = q | k | v, each [NH,HD] per row; out [B,T,D]
Sdpa prepare_packed(const char* op, const Tensor& qkv, int64_t NH, bool causal,
                    const IntTensor* key_lengths, const Tensor& attn_mask, float scale,
                    float dropout_p, Generator* gen) {
  check(qkv.dim() == 3 && NH >= 1 && qkv.size(2) % (3 * NH) == 0, op,
        ": qkv must be [B,T,3*NH*HD] with NH=", NH, "; got ", qkv.shape());
  Sdpa a;
  a.B = qkv.size(0), a.NH = NH, a.T = a.S = qkv.size(1), a.HD = qkv.size(2) / (3 * NH);
  const int64_t D = NH * a.HD;
  a.lq = a.lk = a.lv = layout_btw(a.T, a.HD, 3 * D);
  a.lo = layout_btw(a.T, a.HD, D);
  return prepare_rest(op, a, causal, key_lengths, attn_mask, scale, dropout_p, gen);
}

// Forward: out (layout lo), lse [BH,T]. Throws when a row has every key masked.
void forward(const char* op, const Sdpa& a, const float* q, const float* k, const float* v,
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
      const int64_t kend = a.block_key_end(b, t0, nq);
      for (int64_t s0 = 0; s0 < kend; s0 += kBK) {
        const int64_t nk = std::min(kBK, kend - s0);
        a.scores(bh, t0, nq, s0, nk, q, kt.data(), sc.data());
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
  if (bad_row >= 0) {
    const int64_t bh = bad_row / T, t = bad_row % T;
    fail(op, ": query row ", t, " of batch ", bh / a.NH, ", head ", bh % a.NH,
         " has every key masked (its softmax is undefined)");
  }
}

// Weights [BH,T,S] = exp(S - lse), masked entries 0.
Tensor weights_of(const Sdpa& a, const float* q, const float* k, const float* lse) {
  const int64_t BH = a.B * a.NH, T = a.T, S = a.S;
  Tensor w = Tensor::zeros({a.B, a.NH, T, S});
  float* W = w.data();
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
      const int64_t kend = a.block_key_end(bh / a.NH, t0, nq);
      for (int64_t s0 = 0; s0 < kend; s0 += kBK) {
        const int64_t nk = std::min(kBK, kend - s0);
        a.scores(bh, t0, nq, s0, nk, q, kt.data(), sc.data());
        for (int64_t i = 0; i < nq; ++i) {
          const int64_t r = bh * T + t0 + i;
          exp_sub_sum(sc.data() + i * nk, W + r * S + s0, nk, lse[r]);
        }
      }
    }
  }
  return w;
}

// Backward. dq, dk, dv have the layouts of q, k, v; dout that of o. dw/w: the
// upstream gradient of the weights and the weights ([BH,T,S]), or null. Any of
// dq, dk, dv may be null (not needed).
void backward_kernel(const Sdpa& a, const float* q, const float* k, const float* v,
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
        const int64_t kend = a.block_key_end(b, t0, nq);
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
          a.scores(bh, t0, nq, s0, nk, q, Kt.data(), P.data());
          for (int64_t i = 0; i < nq; ++i)
            exp_sub_sum(P.data() + i * nk, P.data() + i * nk, nk, lse[bh * T + t0 + i]);
          if (drop) {
            for (int64_t i = 0; i < nq; ++i) a.drop_mask(bh * T + t0 + i, s0, nk, M.data() + i * nk);
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

// The shared body of both entry points.
std::vector<Var> sdpa(const char* op, bool with_weights, const Var& q, const Var& k, const Var& v,
                      bool causal, const IntTensor* key_lengths, const Tensor& attn_mask,
                      float scale, float dropout_p, Generator* gen) {
  const Tensor qt = q.value(), kt = k.value(), vt = v.value();
  const Sdpa a =
      prepare(op, qt, kt, vt, causal, key_lengths, attn_mask, scale, dropout_p, gen);
  Tensor out(qt.shape());
  Tensor lse({a.B, a.NH, a.T});
  forward(op, a, qt.data(), kt.data(), vt.data(), out.data(), lse.data());
  std::vector<Tensor> outs{out};
  Tensor w;
  if (with_weights) {
    w = weights_of(a, qt.data(), kt.data(), lse.data());
    outs.push_back(w);
  }
  return record_multi(
      op, outs, {q, k, v},
      [a, qt, kt, vt, out, lse, w](const std::vector<Tensor>& douts, const std::vector<bool>& needs) {
        Tensor dO = douts[0].defined() ? douts[0] : Tensor::zeros(out.shape());
        const Tensor* dW = douts.size() > 1 && douts[1].defined() ? &douts[1] : nullptr;
        Tensor dq = needs[0] ? Tensor(qt.shape()) : Tensor();
        Tensor dk = needs[1] ? Tensor(kt.shape()) : Tensor();
        Tensor dv = needs[2] ? Tensor(vt.shape()) : Tensor();
        backward_kernel(a, qt.data(), kt.data(), vt.data(), out.data(), lse.data(), dO.data(),
                        dW ? dW->data() : nullptr, dW ? w.data() : nullptr,
                        needs[0] ? dq.data() : nullptr, needs[1] ? dk.data() : nullptr,
                        needs[2] ? dv.data() : nullptr);
        return std::vector<Tensor>{dq, dk, dv};
      });
}

// Self-attention on the packed projection: q, k, v are column blocks of one
// tensor, and so are their gradients (one [B,T,3D] buffer, each head's
// columns written by the thread that owns the head).
Var sdpa_packed(const char* op, const Var& qkv, int64_t NH, bool causal,
                const IntTensor* key_lengths, const Tensor& attn_mask, float scale,
                float dropout_p, Generator* gen) {
  const Tensor x = qkv.value();
  const Sdpa a =
      prepare_packed(op, x, NH, causal, key_lengths, attn_mask, scale, dropout_p, gen);
  const int64_t D = a.NH * a.HD;
  Tensor out({a.B, a.T, D});
  Tensor lse({a.B, a.NH, a.T});
  forward(op, a, x.data(), x.data() + D, x.data() + 2 * D, out.data(), lse.data());
  return record(op, out, {qkv},
                [a, x, out, lse, D](const Tensor& dO, const std::vector<bool>&) {
                  Tensor dx(x.shape());
                  backward_kernel(a, x.data(), x.data() + D, x.data() + 2 * D, out.data(),
                                  lse.data(), dO.data(), nullptr, nullptr, dx.data(),
                                  dx.data() + D, dx.data() + 2 * D);
                  return std::vector<Tensor>{dx};
                });
}

}  // namespace

Var scaled_dot_product_attention_packed(const Var& qkv, int64_t num_heads, bool causal,
                                        const IntTensor* key_lengths, const Tensor& attn_mask,
                                        float scale, float dropout_p, Generator* gen) {
  return sdpa_packed("scaled_dot_product_attention_packed", qkv, num_heads, causal, key_lengths,
                     attn_mask, scale, dropout_p, gen);
}

Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, bool causal,
                                 const IntTensor* key_lengths, const Tensor& attn_mask,
                                 float scale, float dropout_p, Generator* gen) {
  return sdpa("scaled_dot_product_attention", false, q, k, v, causal, key_lengths, attn_mask,
              scale, dropout_p, gen)[0];
}

std::vector<Var> scaled_dot_product_attention_weights(const Var& q, const Var& k, const Var& v,
                                                      bool causal, const IntTensor* key_lengths,
                                                      const Tensor& attn_mask, float scale,
                                                      float dropout_p, Generator* gen) {
  return sdpa("scaled_dot_product_attention_weights", true, q, k, v, causal, key_lengths,
              attn_mask, scale, dropout_p, gen);
}

}  // namespace qkv

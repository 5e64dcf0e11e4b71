// Fused pointwise parts of one LSTM / GRU step over a batch: the gate
// nonlinearities and the state update in one pass (forward), and the gate
// gradients in one pass (backward). The GEMMs around them live in the
// autograd sequence op. Rows with active[b] == 0 (a finished sequence in a
// padded batch) are skipped: their outputs are left untouched.
//
// Gate layouts follow PyTorch: LSTM rows are [i | f | g | o] (4H), GRU rows
// are [r | z | n] (3H).
#pragma once
#include <cstdint>

namespace qkv {

// gates: [B,4H] pre-activations (x W_ih^T + h W_hh^T + biases), overwritten
// with the activations (i, f, g, o) that backward needs.
// c_prev: [B,H] -> c, h: [B,H] (c = f c_prev + i g, h = o tanh(c)).
void lstm_cell_forward(float* gates, const float* c_prev, float* c, float* h, int64_t B,
                       int64_t H, const uint8_t* active);
void lstm_cell_forward_ref(float* gates, const float* c_prev, float* c, float* h, int64_t B,
                           int64_t H, const uint8_t* active);

// act: [B,4H] activations from forward; c_prev, c: [B,H]; dh: [B,H] gradient
// into h; dc: [B,H] gradient into c, replaced by the gradient into c_prev.
// dgates: [B,4H] gradient of the pre-activations.
void lstm_cell_backward(const float* act, const float* c_prev, const float* c, const float* dh,
                        float* dc, float* dgates, int64_t B, int64_t H, const uint8_t* active);
void lstm_cell_backward_ref(const float* act, const float* c_prev, const float* c,
                            const float* dh, float* dc, float* dgates, int64_t B, int64_t H,
                            const uint8_t* active);

// gx: [B,3H] input part incl. b_ih; gh: [B,3H] hidden part incl. b_hh.
// r = s(gx_r + gh_r), z = s(gx_z + gh_z), n = tanh(gx_n + r gh_n),
// h = (1 - z) n + z h_prev. Saves act = [r | z | n] and keeps gh (its n part
// is needed by backward).
void gru_cell_forward(const float* gx, const float* gh, const float* h_prev, float* h, float* act,
                      int64_t B, int64_t H, const uint8_t* active);
void gru_cell_forward_ref(const float* gx, const float* gh, const float* h_prev, float* h,
                          float* act, int64_t B, int64_t H, const uint8_t* active);

// dh: [B,H] gradient into h. Writes dgx, dgh: [B,3H] gradients of the input
// and hidden pre-activations, and dh_prev_direct = dh * z (the part of the
// gradient into h_prev that skips the GEMM).
void gru_cell_backward(const float* act, const float* gh, const float* h_prev, const float* dh,
                       float* dgx, float* dgh, float* dh_prev_direct, int64_t B, int64_t H,
                       const uint8_t* active);
void gru_cell_backward_ref(const float* act, const float* gh, const float* h_prev,
                           const float* dh, float* dgx, float* dgh, float* dh_prev_direct,
                           int64_t B, int64_t H, const uint8_t* active);

}  // namespace qkv

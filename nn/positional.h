// Positional encodings added to token embeddings: x + P[offset : offset+T].
//   sinusoidal (Vaswani et al. 2017; the PyTorch tutorial's PositionalEncoding):
//     P[pos, 2i] = sin(pos * w_i), P[pos, 2i+1] = cos(pos * w_i), w_i = exp(-2i ln(10000) / D)
//     fixed: the buffer "pe" [max_len,D], saved with the state but never trained.
//   learned: the parameter "weight" [max_len,D] ~ N(0, 0.02).
// offset lets a decoder with a key/value cache encode position t alone.
// Not here: dropout (the models apply it after the sum), relative or rotary encodings.
#pragma once
#include <memory>
#include <string>

#include "nn/enum_names.h"
#include "nn/module.h"

namespace qkv {

class Generator;

class PositionalEncoding : public Module {
 public:
  // x: [B,T,D] -> x + P[offset, offset+T) broadcast over B
  virtual Var forward(const Var& x, int64_t offset = 0) = 0;
  int64_t max_len() const { return max_len_; }

 protected:
  PositionalEncoding(int64_t d_model, int64_t max_len);
  Var add_rows(const Var& x, const Var& table, int64_t offset) const;
  int64_t d_model_, max_len_;
};

class SinusoidalEncoding : public PositionalEncoding {
 public:
  SinusoidalEncoding(int64_t d_model, int64_t max_len);
  Var forward(const Var& x, int64_t offset = 0) override;
  std::string describe() const override;
  Tensor pe;  // [max_len,D]
};

class LearnedEncoding : public PositionalEncoding {
 public:
  LearnedEncoding(int64_t d_model, int64_t max_len, Generator& gen);
  Var forward(const Var& x, int64_t offset = 0) override;
  std::string describe() const override;
  Var weight;  // [max_len,D]
};

enum class PositionalKind { sinusoidal, learned };
inline constexpr EnumName<PositionalKind> kPositionalKindNames[] = {
    {PositionalKind::sinusoidal, "sinusoidal"}, {PositionalKind::learned, "learned"}};
constexpr std::span<const EnumName<PositionalKind>> enum_names(PositionalKind) {
  return kPositionalKindNames;
}

std::shared_ptr<PositionalEncoding> make_positional(PositionalKind kind, int64_t d_model,
                                                    int64_t max_len, Generator& gen);

}  // namespace qkv

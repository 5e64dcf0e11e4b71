#include "nn/positional.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "engine/error.h"
#include "nn/init.h"

namespace qkv {

PositionalEncoding::PositionalEncoding(int64_t d_model, int64_t max_len)
    : d_model_(d_model), max_len_(max_len) {
  check(d_model >= 1 && max_len >= 1, "PositionalEncoding: d_model and max_len must be >= 1, got ",
        d_model, " and ", max_len);
}

Var PositionalEncoding::add_rows(const Var& x, const Var& table, int64_t offset) const {
  // x: [B,T,D], table: [max_len,D]
  check(x.dim() == 3 && x.size(2) == d_model_, "PositionalEncoding: input must be [B,T,", d_model_,
        "], got ", x.shape());
  const int64_t T = x.size(1);
  check(offset >= 0 && offset + T <= max_len_, "PositionalEncoding: positions [", offset, ", ",
        offset + T, ") exceed max_len ", max_len_);
  return x + slice(table, 0, offset, offset + T);
}

SinusoidalEncoding::SinusoidalEncoding(int64_t d_model, int64_t max_len)
    : PositionalEncoding(d_model, max_len) {
  pe = Tensor::zeros({max_len, d_model});
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t i = 0; i < d_model; i += 2) {
      // float32 as torch computes it: div_term = exp(arange(0, D, 2) * (-ln(10000) / D))
      const float w = std::exp(float(i) * (-std::log(10000.f) / float(d_model)));
      const float a = float(pos) * w;
      pe.data()[pos * d_model + i] = std::sin(a);
      if (i + 1 < d_model) pe.data()[pos * d_model + i + 1] = std::cos(a);
    }
  register_buffer("pe", pe);
}

Var SinusoidalEncoding::forward(const Var& x, int64_t offset) { return add_rows(x, Var(pe), offset); }

std::string SinusoidalEncoding::describe() const {
  std::ostringstream s;
  s << "SinusoidalEncoding(d_model=" << d_model_ << ", max_len=" << max_len_ << ")";
  return s.str();
}

LearnedEncoding::LearnedEncoding(int64_t d_model, int64_t max_len, Generator& gen)
    : PositionalEncoding(d_model, max_len) {
  Tensor w({max_len, d_model});
  init::normal(w, 0.f, 0.02f, gen);
  weight = register_parameter("weight", w);
}

Var LearnedEncoding::forward(const Var& x, int64_t offset) { return add_rows(x, weight, offset); }

std::string LearnedEncoding::describe() const {
  std::ostringstream s;
  s << "LearnedEncoding(d_model=" << d_model_ << ", max_len=" << max_len_ << ")";
  return s.str();
}

std::shared_ptr<PositionalEncoding> make_positional(PositionalKind kind, int64_t d_model,
                                                    int64_t max_len, Generator& gen) {
  if (kind == PositionalKind::learned)
    return std::make_shared<LearnedEncoding>(d_model, max_len, gen);
  return std::make_shared<SinusoidalEncoding>(d_model, max_len);
}

}  // namespace qkv

// The addition data set: "16+75" -> "91", character level. Operands are
// uniform in [0, 10^digits); with reverse_source the model reads each source
// backwards ("57+61"; Sutskever et al.'s trick: it shortens the distance
// between the digits that decide the carries and the outputs they affect).
#pragma once
#include <memory>

#include "tools/data/pairs.h"

namespace qkv::data {

struct AdditionOptions {
  SplitSizes n{8000, 1000, 1000};  // 2-digit addition has only 10^4 distinct problems
  int64_t digits = 2;              // max digits per operand, 1..9
  bool reverse_source = false;
};
AdditionOptions addition_options(JsonReader& r);
std::unique_ptr<Dataset> make_addition(const AdditionOptions& o, uint64_t seed);

}  // namespace qkv::data

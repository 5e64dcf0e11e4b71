// Named forward: a module run on tensors named as its PyTorch forward's
// arguments ("input", "src", "memory", "h0", ...) and returning its outputs by
// name ("output", "h_n", "logits", "weights"). This is what `qkv forward`
// calls, so any module type the JSON builder makes can be held against PyTorch
// without the caller knowing its type. Not a training path: the models' own
// forward/loss functions are.
#pragma once
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace qkv {

// The inputs of one forward_named call. Floats are Vars (the caller decides
// whether they require a gradient); ints hold token ids, lengths and flags (a
// one-element tensor, nonzero = true). Every getter records the name it read,
// so the caller can reject inputs nobody read: a misspelt "h_0" must not
// silently become a zero state.
class NamedInputs {
 public:
  // where: names the source in messages (the input file).
  NamedInputs(std::map<std::string, Var> floats, std::map<std::string, IntTensor> ints,
              std::string where);

  Var tensor(const std::string& name);                      // required float input
  Var optional(const std::string& name);                    // float input, or undefined
  const IntTensor& ids(const std::string& name);            // required integer input
  const IntTensor* optional_ids(const std::string& name);   // integer input, or null
  bool flag(const std::string& name, bool absent = false);  // one-element integer input

  std::vector<std::string> unread() const;  // names present but never read
  const std::vector<std::string>& read() const { return read_; }
  const std::map<std::string, Var>& floats() const { return floats_; }
  const std::string& where() const { return where_; }

 private:
  std::map<std::string, Var> floats_;
  std::map<std::string, IntTensor> ints_;
  std::string where_;
  std::vector<std::string> read_;  // in the order read (for messages)
};

// Outputs in the module's order; an undefined Var is an output this
// configuration does not have (a GRU's c_n, attention of an attention-free model).
using NamedOutputs = std::vector<std::pair<std::string, Var>>;

}  // namespace qkv

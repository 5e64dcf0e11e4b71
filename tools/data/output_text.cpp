// What a data set tells a model config (facts) and how it shows a model's
// prediction (output_text): both go by the data set's own task kind, never by
// the model's type.
#include <string>
#include <vector>

#include "tools/data/dataset.h"

namespace qkv::data {

Json Dataset::facts() const {
  Json f = Json::object();
  const int64_t src_v = src_vocab() ? src_vocab()->size() : 0;
  const int64_t tgt_v = tgt_vocab() ? tgt_vocab()->size() : src_v;
  const int64_t classes = int64_t(class_names().size());
  if (src_v > 0) f["src_vocab"] = src_v;
  if (tgt_v > 0) f["tgt_vocab"] = tgt_v;
  if (classes > 0) f["classes"] = classes;
  return f;
}

std::string Dataset::output_text(const std::string& input, const std::vector<int32_t>& ids,
                                 std::vector<std::string>* tokens) const {
  switch (task()) {
    case Task::seq2seq: {
      const Vocab* v = tgt_vocab() ? tgt_vocab() : src_vocab();
      check(v != nullptr, name(), ": no target vocabulary to decode with");
      if (tokens)
        for (int32_t t : ids) tokens->push_back(v->token(t));
      return v->decode(ids);
    }
    case Task::text_classification:
    case Task::image_classification: {
      check(ids.size() == 1, name(), ": a class prediction is one id, got ", ids.size());
      const int64_t k = ids[0];
      const auto& names = class_names();
      std::string text = k >= 0 && k < int64_t(names.size()) ? names[size_t(k)] : std::to_string(k);
      if (tokens) tokens->push_back(text);
      return text;
    }
    case Task::language_model:
      check(src_vocab() != nullptr, name(), ": no vocabulary to decode with");
      return input + src_vocab()->decode(ids);
  }
  fail(name(), ": unknown task");
}

}  // namespace qkv::data

// Checkpoint loading and single-input prediction.
#include "tools/runner/predict.h"

#include <algorithm>
#include <filesystem>

#include "engine/rng.h"
#include "nn/attn_classifier.h"
#include "nn/checkpoint.h"
#include "nn/seq_model.h"
#include "nn/transformer.h"

namespace qkv::runner {

void load_model(Experiment& ex, const std::string& checkpoint) {
  check(std::filesystem::exists(checkpoint), checkpoint, ": no such checkpoint file");
  load_checkpoint(checkpoint, *ex.model, nullptr);
  ex.model->eval();
}

Prediction predict(Experiment& ex, const std::string& input, const PredictOptions& o) {
  auto lm = std::dynamic_pointer_cast<TransformerLM>(ex.model);
  check(lm || (o.length == 0 && o.temperature == 0.f),
        "predict: --length and --temperature apply to a language model, not to ",
        ex.model->describe());
  check(o.temperature >= 0.f, "predict: --temperature must be >= 0, got ", o.temperature);
  ex.model->eval();
  NoGrad no_grad;
  const data::Batch b = ex.data->encode_input(input);
  const data::Vocab* sv = ex.data->src_vocab();
  Prediction p;
  const int64_t S = b.src.size(1);
  for (int64_t s = 0; s < S && sv; ++s) p.src_tokens.push_back(sv->token(b.src.data()[s]));
  if (auto m = std::dynamic_pointer_cast<SeqToSeqModel>(ex.model)) {
    const data::Vocab* tv = ex.data->tgt_vocab() ? ex.data->tgt_vocab() : sv;
    const int64_t max_len = std::max<int64_t>(ex.data->max_target_len(), 2 * S + 8);
    const Decoded d = o.beam > 1 ? m->beam(b.src, o.beam, max_len) : m->greedy(b.src, max_len);
    p.text = tv->decode(d.tokens);
    for (int32_t t : d.tokens) p.out_tokens.push_back(tv->token(t));
    p.attention = d.head_attention.defined() ? d.head_attention : d.attention;
    return p;
  }
  if (auto m = std::dynamic_pointer_cast<AttnClassifier>(ex.model)) {
    const ClassifierOutput o = m->forward(b.src, b.src_len);  // logits [1,classes], weights [1,T]
    const float* z = o.logits.value().data();
    const int64_t k = std::max_element(z, z + o.logits.size(1)) - z;
    const auto& names = ex.data->class_names();
    p.text = k < int64_t(names.size()) ? names[size_t(k)] : std::to_string(k);
    p.out_tokens = {p.text};
    p.attention = o.weights.value();
    return p;
  }
  if (lm) {
    // Continues the input by o.length tokens (default: as many as the
    // model's context allows, at most 200), greedy or sampled.
    const std::vector<int32_t> prefix(b.src.begin(), b.src.begin() + S);
    const int64_t room = lm->options.max_len + 1 - S;
    const int64_t n =
        o.length > 0 ? o.length : std::max<int64_t>(1, std::min<int64_t>(200, room - 1));
    check(n <= room, "predict: cannot add ", n, " tokens (--length): the input is ", S,
          " tokens and the model's max_len is ", lm->options.max_len, ", room for ",
          std::max<int64_t>(0, room), " more");
    Generator gen(ex.cfg.seed);
    const std::vector<int32_t> more = lm->generate(prefix, n, o.temperature, &gen);
    p.text = input + sv->decode(more);
    return p;
  }
  fail("predict: the model ", ex.model->describe(), " has no single-input prediction");
}

}  // namespace qkv::runner

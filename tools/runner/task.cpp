// Task bindings: one small class per task kind, and the evaluation loop.
#include "tools/runner/task.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "nn/attn_classifier.h"
#include "nn/seq_model.h"
#include "nn/transformer.h"

namespace qkv::runner {
namespace {

// Row-wise argmax of logits [N,V] -> N ids.
std::vector<int32_t> argmax_rows(const Tensor& logits) {
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  std::vector<int32_t> out(static_cast<size_t>(N));
  const float* p = logits.data();
  for (int64_t n = 0; n < N; ++n, p += V) out[size_t(n)] = int32_t(std::max_element(p, p + V) - p);
  return out;
}

// ---- seq2seq ---------------------------------------------------------------
class Seq2SeqTask : public Task {
 public:
  Seq2SeqTask(std::shared_ptr<SeqToSeqModel> m, int64_t beam, int64_t max_len)
      : m_(std::move(m)), beam_(beam), max_len_(max_len) {}

  Var loss(const data::Batch& b) override {
    return m_->loss(b.src, b.src_len, b.tgt_in, b.tgt_out);
  }

  void eval_batch(const data::Batch& b, EvalSums& s) override {
    // logits: [B,T,V]; tgt_out: [B,T]
    const Var logits = m_->forward_teacher(b.src, b.src_len, b.tgt_in).logits;
    const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
    const Var l = cross_entropy(reshape(logits, {B * T, V}), b.tgt_out.reshape({B * T}),
                                m_->pad_id(), 0.f, Reduction::sum);
    s.loss_sum += double(l.item());
    const std::vector<int32_t> pred = argmax_rows(logits.value());
    const int32_t* tgt = b.tgt_out.data();
    for (int64_t i = 0; i < B; ++i) {
      bool all = true;
      for (int64_t t = 0; t < T; ++t) {
        const int32_t y = tgt[i * T + t];
        if (y == m_->pad_id()) continue;
        const bool ok = pred[size_t(i * T + t)] == y;
        s.tokens += 1;
        s.tokens_correct += ok;
        all &= ok;
      }
      if (beam_ > 1) all = beam_matches(b, i);
      s.examples += 1;
      s.examples_correct += all;
    }
    s.loss_units = s.tokens;
  }

  Metrics metrics(const EvalSums& s) const override {
    return {{"loss", s.loss_sum / double(std::max<int64_t>(1, s.loss_units))},
            {"token_accuracy", double(s.tokens_correct) / double(std::max<int64_t>(1, s.tokens))},
            {"exact_match", double(s.examples_correct) / double(std::max<int64_t>(1, s.examples))}};
  }
  std::vector<std::string> metric_names() const override {
    return {"loss", "token_accuracy", "exact_match"};
  }

 private:
  // Beam-decodes example i of b and compares with its target (eos included).
  bool beam_matches(const data::Batch& b, int64_t i) {
    const int64_t T = b.tgt_out.size(1), len = b.src_len.data()[i];
    IntTensor src = slice(b.src.narrow_rows(i, i + 1), 1, 0, len);  // [1,len]
    const Decoded d = m_->beam(src, beam_, max_len_);
    std::vector<int32_t> want;
    for (int64_t t = 0; t < T; ++t) {
      const int32_t y = b.tgt_out.data()[i * T + t];
      if (y != m_->pad_id()) want.push_back(y);
    }
    return d.tokens == want;
  }

  std::shared_ptr<SeqToSeqModel> m_;
  int64_t beam_, max_len_;
};

// ---- classification (text or images) ---------------------------------------------
class ClassifyTask : public Task {
 public:
  ClassifyTask(std::shared_ptr<AttnClassifier> text, std::shared_ptr<UnaryModule> image)
      : text_(std::move(text)), image_(std::move(image)) {}

  Var loss(const data::Batch& b) override { return cross_entropy(logits(b), b.labels); }

  void eval_batch(const data::Batch& b, EvalSums& s) override {
    const Var z = logits(b);  // [B,classes]
    s.loss_sum += double(cross_entropy(z, b.labels, -100, 0.f, Reduction::sum).item());
    s.loss_units += b.size;
    const std::vector<int32_t> pred = argmax_rows(z.value());
    for (int64_t i = 0; i < b.size; ++i)
      s.examples_correct += pred[size_t(i)] == b.labels.data()[i];
    s.examples += b.size;
  }

  Metrics metrics(const EvalSums& s) const override {
    return {{"loss", s.loss_sum / double(std::max<int64_t>(1, s.loss_units))},
            {"accuracy", double(s.examples_correct) / double(std::max<int64_t>(1, s.examples))}};
  }
  std::vector<std::string> metric_names() const override { return {"loss", "accuracy"}; }

 private:
  // logits: [B,classes]
  Var logits(const data::Batch& b) {
    if (text_) return text_->forward(b.src, b.src_len).logits;
    return image_->forward(Var(b.images));
  }
  std::shared_ptr<AttnClassifier> text_;
  std::shared_ptr<UnaryModule> image_;
};

// ---- language model -----------------------------------------------------------------
class LanguageModelTask : public Task {
 public:
  explicit LanguageModelTask(std::shared_ptr<TransformerLM> m) : m_(std::move(m)) {}

  Var loss(const data::Batch& b) override { return m_->loss(b.src, b.tgt_out); }

  void eval_batch(const data::Batch& b, EvalSums& s) override {
    const Var logits = m_->forward(b.src);  // [B,T,V]; tgt_out: [B,T]
    const int64_t N = logits.size(0) * logits.size(1), V = logits.size(2);
    s.loss_sum += double(cross_entropy(reshape(logits, {N, V}), b.tgt_out.reshape({N}),
                                       data::Vocab::pad, 0.f, Reduction::sum)
                             .item());
    const std::vector<int32_t> pred = argmax_rows(logits.value());
    const int32_t* tgt = b.tgt_out.data();
    for (int64_t i = 0; i < N; ++i) {
      if (tgt[i] == data::Vocab::pad) continue;
      s.tokens += 1;
      s.tokens_correct += pred[size_t(i)] == tgt[i];
    }
    s.loss_units = s.tokens;
  }

  Metrics metrics(const EvalSums& s) const override {
    const double loss = s.loss_sum / double(std::max<int64_t>(1, s.loss_units));
    return {{"loss", loss},
            {"token_accuracy", double(s.tokens_correct) / double(std::max<int64_t>(1, s.tokens))},
            {"perplexity", std::exp(loss)}};
  }
  std::vector<std::string> metric_names() const override {
    return {"loss", "token_accuracy", "perplexity"};
  }

 private:
  std::shared_ptr<TransformerLM> m_;
};

}  // namespace

std::unique_ptr<Task> make_task(const data::Dataset& d, std::shared_ptr<Module> model,
                                int64_t beam) {
  using data::Task;
  switch (d.task()) {
    case Task::seq2seq: {
      auto m = std::dynamic_pointer_cast<SeqToSeqModel>(model);
      check(m != nullptr, "model: data set '", d.name(),
            "' is a sequence-to-sequence task: the model must be a seq2seq or transformer, got ",
            model->describe());
      return std::make_unique<Seq2SeqTask>(m, beam, std::max<int64_t>(1, d.max_target_len()));
    }
    case Task::text_classification: {
      auto m = std::dynamic_pointer_cast<AttnClassifier>(model);
      check(m != nullptr, "model: data set '", d.name(),
            "' is text classification: the model must be an attn_classifier, got ",
            model->describe());
      return std::make_unique<ClassifyTask>(m, nullptr);
    }
    case Task::image_classification: {
      auto m = std::dynamic_pointer_cast<UnaryModule>(model);
      check(m != nullptr, "model: data set '", d.name(),
            "' is image classification: the model must map [B,C,H,W] to logits (e.g. a "
            "sequential), got ",
            model->describe());
      return std::make_unique<ClassifyTask>(nullptr, m);
    }
    case Task::language_model: {
      auto m = std::dynamic_pointer_cast<TransformerLM>(model);
      check(m != nullptr, "model: data set '", d.name(),
            "' is a language model task: the model must be a transformer_lm, got ",
            model->describe());
      return std::make_unique<LanguageModelTask>(m);
    }
  }
  fail("model: unknown task");
}

Metrics evaluate(Task& task, Module& model, const data::Dataset& d, data::Split s, int64_t limit,
                 int64_t batch_size) {
  const int64_t n = limit > 0 ? std::min(limit, d.size(s)) : d.size(s);
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  EvalSums sums;
  std::vector<int64_t> idx;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    idx.resize(size_t(end - start));
    std::iota(idx.begin(), idx.end(), start);
    task.eval_batch(d.batch(s, idx), sums);
  }
  model.train(was_training);
  return task.metrics(sums);
}

}  // namespace qkv::runner

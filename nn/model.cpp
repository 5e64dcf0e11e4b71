// Model (see model.h): the task check, the default FLOPs answer, and the
// evaluation pieces the families share (classification, token accuracy).
#include "nn/model.h"

#include <algorithm>
#include <cstdio>

#include "autograd/ops.h"
#include "engine/error.h"

namespace qkv {

const char* task_kind_name(TaskKind t) {
  switch (t) {
    case TaskKind::seq2seq:
      return "sequence-to-sequence";
    case TaskKind::text_classification:
      return "text classification";
    case TaskKind::image_classification:
      return "image classification";
    case TaskKind::language_model:
      return "language modelling";
  }
  return "unknown";
}

void Model::check_task(TaskKind t, const std::string& dataset_name) const {
  const std::vector<TaskKind> can = tasks();
  if (std::find(can.begin(), can.end(), t) != can.end()) return;
  std::string list;
  for (TaskKind k : can) list += std::string(list.empty() ? "" : ", ") + task_kind_name(k);
  fail("model: data set '", dataset_name, "' is for ", task_kind_name(t), ", which the model ",
       describe(), " cannot do (it does: ", list.empty() ? "none" : list, ")");
}

std::vector<std::string> Model::metric_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : metrics(EvalSums{})) names.push_back(name);
  return names;
}

double Model::flops_per_step(const Batch&, std::string* how) const {
  if (how) *how = "no estimate for this model kind";
  return 0;
}

std::vector<Predicted> Model::predict_batch(const std::vector<Batch>& ones,
                                            const PredictParams& p) {
  std::vector<Predicted> out;
  for (const Batch& one : ones) out.push_back(predict(one, p));
  return out;
}

void Model::check_no_generation(const PredictParams& p) const {
  check(p.length == 0 && p.temperature == 0.f,
        "predict: --length and --temperature apply to a language model, not to ", describe());
}

// ---- helpers --------------------------------------------------------------------

std::string human_count(double x) {
  char buf[32];
  const char* unit[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (x >= 1000 && u < 4) {
    x /= 1000;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.3g%s", x, unit[u]);
  return buf;
}

double matrix_weights(const Module& m) {
  double w = 0;
  for (const auto& [name, v] : m.named_parameters())
    if (v.dim() >= 2) w += double(v.numel());
  return w;
}

double sum_lengths(const IntTensor& lengths) {
  double n = 0;
  if (lengths.defined())
    for (int32_t l : lengths) n += l;
  return n;
}

std::vector<int32_t> argmax_rows(const Tensor& logits) {
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  std::vector<int32_t> out(static_cast<size_t>(N));
  const float* p = logits.data();
  for (int64_t n = 0; n < N; ++n, p += V) out[size_t(n)] = int32_t(std::max_element(p, p + V) - p);
  return out;
}

// logits: [B,classes]
Var classification_loss(const Var& logits, const Batch& b) {
  return cross_entropy(logits, b.labels);
}

// logits: [B,classes]
void classification_eval(const Var& logits, const Batch& b, EvalSums& s, const EvalOptions& o) {
  s["loss_sum"] += double(cross_entropy(logits, b.labels, -100, 0.f, Reduction::sum).item());
  s["loss_units"] += double(b.size);
  const std::vector<int32_t> pred = argmax_rows(logits.value());
  int64_t correct = 0;
  for (int64_t i = 0; i < b.size; ++i) {
    correct += pred[size_t(i)] == b.labels.data()[i];
    if (o.predictions) o.predictions->push_back({pred[size_t(i)]});
  }
  s["examples_correct"] += double(correct);
  s["examples"] += double(b.size);
}

double eval_sum(const EvalSums& s, const std::string& name) {
  auto it = s.find(name);
  return it == s.end() ? 0.0 : it->second;
}
double eval_rate(const EvalSums& s, const std::string& num, const std::string& den) {
  return eval_sum(s, num) / std::max(1.0, eval_sum(s, den));
}

Metrics classification_metrics(const EvalSums& s) {
  return {{"loss", eval_rate(s, "loss_sum", "loss_units")},
          {"accuracy", eval_rate(s, "examples_correct", "examples")}};
}

// logits: [B,T,V], targets: [B,T]
std::vector<int32_t> token_eval(const Var& logits, const IntTensor& targets, int32_t pad,
                                EvalSums& s, std::vector<bool>* correct) {
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  const Var l = cross_entropy(reshape(logits, {B * T, V}), targets.reshape({B * T}), pad, 0.f,
                              Reduction::sum);
  s["loss_sum"] += double(l.item());
  std::vector<int32_t> pred = argmax_rows(logits.value());
  const int32_t* tgt = targets.data();
  int64_t tokens = 0, tokens_correct = 0;
  if (correct) correct->assign(size_t(B), true);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) {
      const int32_t y = tgt[i * T + t];
      if (y == pad) continue;
      const bool ok = pred[size_t(i * T + t)] == y;
      tokens += 1;
      tokens_correct += ok;
      if (correct && !ok) (*correct)[size_t(i)] = false;
    }
  s["tokens"] += double(tokens);
  s["tokens_correct"] += double(tokens_correct);
  return pred;
}

int64_t count_tokens(const IntTensor& targets, int32_t pad) {
  int64_t n = 0;
  for (int32_t t : targets) n += t != pad;
  return n;
}

}  // namespace qkv

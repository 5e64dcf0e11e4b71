// A padded mini-batch, as a data set serves it and a model consumes it, and
// the task kinds a data set poses (a model says which it can do). Lives in nn/
// so that models take whole batches without knowing any data set.
//
// Legend: B batch, S source time, T target time, C/IH/IW image channels, height, width.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace qkv {

enum class TaskKind {
  seq2seq,               // src text -> tgt text (dates, addition, sequence)
  text_classification,   // text -> class
  image_classification,  // image -> class (fashion-mnist)
  language_model,        // text -> next tokens (text-lm)
};
// "sequence-to-sequence", "text classification", ... (for messages; nn/model.cpp).
const char* task_kind_name(TaskKind t);

// One padded mini-batch. Only the fields of the data set's task are defined.
struct Batch {
  int64_t size = 0;   // B
  IntTensor src;      // [B,S] token ids, pad-filled (seq2seq, text classification, LM input)
  IntTensor src_len;  // [B] lengths in [1,S]
  IntTensor tgt_in;   // [B,T] bos + target, pad-filled (seq2seq)
  IntTensor tgt_out;  // [B,T] target + eos, pad-filled (seq2seq); LM: [B,S] next tokens, pad-filled
  IntTensor labels;   // [B] class ids (classification)
  Tensor images;      // [B,C,IH,IW] floats, normalised (image classification)
};

}  // namespace qkv

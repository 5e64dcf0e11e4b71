// Embedding: rows of a [num_embeddings, embedding_dim] table picked by ids
// (torch.nn.Embedding: weight ~ N(0, 1); the padding_idx row starts at zero
// and never receives a gradient).
#pragma once
#include "nn/module.h"

namespace qkv {

class Generator;

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  int64_t padding_idx = -1;  // -1: none
};

class Embedding : public Module {
 public:
  Embedding(const EmbeddingOptions& opt, Generator& gen);
  Var forward(const IntTensor& ids);  // ids: [...] -> [..., embedding_dim]
  std::string describe() const override;
  // Named forward (nn/forward_io.h): input (ids) -> output.
  NamedOutputs forward_named(NamedInputs& in) override;

  EmbeddingOptions options;
  Var weight;  // [num_embeddings, embedding_dim]
};

}  // namespace qkv

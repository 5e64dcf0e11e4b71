#include "nn/embedding.h"

#include <cstring>

#include "autograd/ops.h"
#include "engine/rng.h"
#include "nn/init.h"

namespace qkv {

Embedding::Embedding(const EmbeddingOptions& opt, Generator& gen) : options(opt) {
  check(opt.num_embeddings >= 1 && opt.embedding_dim >= 1,
        "Embedding: num_embeddings and embedding_dim must be >= 1, got ", opt.num_embeddings,
        " and ", opt.embedding_dim);
  check(opt.padding_idx >= -1 && opt.padding_idx < opt.num_embeddings, "Embedding: padding_idx ",
        opt.padding_idx, " out of range [0,", opt.num_embeddings, ")");
  Tensor w({opt.num_embeddings, opt.embedding_dim});
  init::normal(w, 0.f, 1.f, gen);
  if (opt.padding_idx >= 0)
    std::memset(w.data() + opt.padding_idx * opt.embedding_dim, 0,
                opt.embedding_dim * sizeof(float));
  weight = register_parameter("weight", w);
}

Var Embedding::forward(const IntTensor& ids) {
  return index_select(weight, ids, options.padding_idx);
}

std::string Embedding::describe() const {
  std::string s = "Embedding(" + std::to_string(options.num_embeddings) + ", " +
                  std::to_string(options.embedding_dim);
  if (options.padding_idx >= 0) s += ", padding_idx=" + std::to_string(options.padding_idx);
  return s + ")";
}

// ---- named forward (nn/forward_io.h) ----------------------------------------------

NamedOutputs Embedding::forward_named(NamedInputs& in) {
  return {{"output", forward(in.ids("input"))}};
}

}  // namespace qkv

// TrainState <-> checkpoint metadata. Integers are written in decimal, doubles
// to round-trip (NaN as "nan"; nn/metadata.h); reading accepts exactly what
// writing produces.
#include "tools/runner/train_state.h"

#include "engine/error.h"
#include "nn/metadata.h"

namespace qkv::runner {
namespace {

using Meta = std::map<std::string, std::string>;

const std::string& meta_get(const Meta& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  check(it != m.end(), path, ": not a qkv training checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

int64_t meta_int(const Meta& m, const std::string& key, const std::string& path) {
  return parse_meta_int(meta_get(m, key, path), key, path);
}

uint64_t meta_uint(const Meta& m, const std::string& key, const std::string& path) {
  return parse_meta_uint(meta_get(m, key, path), key, path);
}

double meta_double(const Meta& m, const std::string& key, const std::string& path) {
  return parse_meta_double(meta_get(m, key, path), key, path);
}

}  // namespace

std::map<std::string, std::string> TrainState::to_metadata() const {
  return {{"qkv.format", kCheckpointFormat},
          {"qkv.step", std::to_string(step)},
          {"qkv.epoch", std::to_string(epoch)},
          {"qkv.batch_in_epoch", std::to_string(batch_in_epoch)},
          {"qkv.gen_seed", std::to_string(gen_seed)},
          {"qkv.gen_counter", std::to_string(gen_counter)},
          {"qkv.best", meta_string(best)},
          {"qkv.best_metric", best_metric},
          {"qkv.best_step", std::to_string(best_step)},
          {"qkv.bad_evals", std::to_string(bad_evals)},
          {"qkv.train_seconds", meta_string(train_seconds)},
          {"qkv.loss_sum", meta_string(loss_sum)},
          {"qkv.loss_n", std::to_string(loss_n)},
          {"qkv.config", config}};
}

TrainState TrainState::from_metadata(const std::map<std::string, std::string>& meta,
                                     const std::string& path) {
  const std::string& format = meta_get(meta, "qkv.format", path);
  check(format == kCheckpointFormat, path, ": unknown checkpoint format '", format, "'");
  TrainState s;
  s.step = meta_int(meta, "qkv.step", path);
  s.best = meta_double(meta, "qkv.best", path);
  s.best_step = meta_int(meta, "qkv.best_step", path);
  s.bad_evals = meta_int(meta, "qkv.bad_evals", path);
  s.train_seconds = meta_double(meta, "qkv.train_seconds", path);
  s.loss_sum = meta_double(meta, "qkv.loss_sum", path);
  s.loss_n = meta_int(meta, "qkv.loss_n", path);
  s.gen_seed = meta_uint(meta, "qkv.gen_seed", path);
  s.gen_counter = meta_uint(meta, "qkv.gen_counter", path);
  s.epoch = meta_int(meta, "qkv.epoch", path);
  s.batch_in_epoch = meta_int(meta, "qkv.batch_in_epoch", path);
  s.best_metric = meta_get(meta, "qkv.best_metric", path);
  s.config = meta_get(meta, "qkv.config", path);
  return s;
}

}  // namespace qkv::runner

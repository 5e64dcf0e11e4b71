// The one door through which code below the trainer reaches the other
// processes of a data-parallel run, without knowing how they are reached:
// an abstract process group (installed by the communication layer, dist/;
// none installed = a single process) and the rows of the global batch this
// process holds (set by the trainer for a step). Both default to "alone", so
// a single-process run never pays for them beyond one pointer test.
// Users: synchronised BatchNorm (nn/batchnorm.cpp), example-keyed dropout.
#pragma once
#include <cstdint>

namespace qkv {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int size() const = 0;
  // In place: p[0..n) becomes the sum over the group's processes (the same on every one).
  virtual void allreduce_sum(double* p, int64_t n) = 0;
};

// The installed group, null when this process trains alone.
inline ProcessGroup*& process_group_slot() {
  static ProcessGroup* g = nullptr;
  return g;
}
inline ProcessGroup* process_group() { return process_group_slot(); }
inline void set_process_group(ProcessGroup* g) { process_group_slot() = g; }
// True when a group of more than one process is installed.
inline bool in_process_group() {
  const ProcessGroup* g = process_group();
  return g != nullptr && g->size() > 1;
}

// This process's part of the global batch: rows [offset, offset + local) of
// `global`. Randomness drawn per example (dropout) keys on the global row, so
// the slice draws exactly what a single process draws for those rows.
// global == 0: no split (the batch is whole).
struct BatchRows {
  int64_t offset = 0, local = 0, global = 0;
  bool split() const { return global > local; }
};
inline BatchRows& batch_rows() {
  static BatchRows r;
  return r;
}

// Sets batch_rows() for a scope (the trainer's step), restoring "whole" after.
class BatchRowsScope {
 public:
  BatchRowsScope(int64_t offset, int64_t local, int64_t global) {
    batch_rows() = {offset, local, global};
  }
  ~BatchRowsScope() { batch_rows() = {}; }
  BatchRowsScope(const BatchRowsScope&) = delete;
  BatchRowsScope& operator=(const BatchRowsScope&) = delete;
};

}  // namespace qkv

// Tensor: an N-d array of float (or int32 for ids, labels and lengths) in
// contiguous row-major storage, 64-byte aligned and padded to a whole number of
// 64-byte lines so a full-width SIMD load at the tail stays in bounds.
//
// A Tensor is a handle: copies share storage (like torch.Tensor). reshape/view
// are free (same storage, new shape); permute, transpose, slice, concat, stack
// and index_select materialise a new contiguous tensor. There are no strides:
// every kernel may assume contiguity, and the GEMM absorbs transposes itself.
#pragma once
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"

namespace qkv {

class Generator;

int64_t numel_of(const Shape& s);
// Resolves a possibly negative axis against rank `dim`; names `op` on error.
int normalize_axis(int64_t axis, int64_t dim, const char* op);

// A shape seen as [outer, mid, inner] around `axis` (mid = shape[axis]): the
// view every per-axis kernel (slice, concat, reductions) iterates over.
struct AxisSplit {
  int64_t outer = 1, mid = 1, inner = 1;
};
AxisSplit split_axis(const Shape& s, int axis);

template <class T>
class TensorT {
 public:
  using value_type = T;

  TensorT() = default;                       // undefined: no storage
  explicit TensorT(Shape shape);             // uninitialised contents
  static TensorT empty(Shape shape) { return TensorT(std::move(shape)); }
  static TensorT zeros(Shape shape);
  static TensorT full(Shape shape, T value);
  static TensorT from(Shape shape, const std::vector<T>& values);
  static TensorT scalar(T value) { return full({}, value); }

  bool defined() const { return bool(data_); }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t axis) const;          // negative axes count from the end
  int64_t numel() const { return numel_; }

  T* data() { return data_.get() + offset_; }
  const T* data() const { return data_.get() + offset_; }
  T* begin() { return data(); }
  T* end() { return data() + numel_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + numel_; }
  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

  // Checked element access by full index, and the value of a one-element tensor.
  T& at(std::initializer_list<int64_t> idx);
  T at(std::initializer_list<int64_t> idx) const;
  T item() const;

  // Free views: same storage. One entry of `shape` may be -1 (inferred).
  TensorT view(Shape shape) const;
  TensorT reshape(Shape shape) const { return view(std::move(shape)); }
  // Rows [start, end) of axis 0, still sharing storage (contiguous by construction).
  TensorT narrow_rows(int64_t start, int64_t end) const;
  TensorT clone() const;
  bool shares_storage(const TensorT& o) const { return data_ == o.data_; }
  // No other handle or view shares this storage.
  bool sole_owner() const { return data_ && data_.use_count() == 1; }

  void fill(T value);
  void copy_from(const TensorT& src);        // same numel; shapes may differ

 private:
  std::shared_ptr<T[]> data_;
  int64_t offset_ = 0;
  int64_t numel_ = 0;
  Shape shape_;
  int64_t flat_index(std::initializer_list<int64_t> idx) const;
};

using Tensor = TensorT<float>;
using IntTensor = TensorT<int32_t>;  // token ids, labels, lengths

// ---- creation (float) -------------------------------------------------------
Tensor zeros(Shape shape);
Tensor ones(Shape shape);
Tensor full(Shape shape, float value);
Tensor arange(int64_t n);                               // 0, 1, ..., n-1
Tensor arange(float start, float stop, float step = 1.f);
Tensor uniform(Shape shape, float lo, float hi, Generator& gen);
Tensor normal(Shape shape, float mean, float stddev, Generator& gen);

// ---- materialising layout ops (float and int32) -----------------------------
// out[i_dims[0], ..., i_dims[n-1]] = x[i_0, ..., i_{n-1}]: like torch.permute.
template <class T> TensorT<T> permute(const TensorT<T>& x, const std::vector<int>& dims);
template <class T> TensorT<T> transpose(const TensorT<T>& x, int64_t a, int64_t b);
// Elements [start, end) of `axis` (step 1); negative start/end count from the end.
template <class T> TensorT<T> slice(const TensorT<T>& x, int64_t axis, int64_t start, int64_t end);
template <class T> TensorT<T> concat(const std::vector<TensorT<T>>& xs, int64_t axis);
template <class T> TensorT<T> stack(const std::vector<TensorT<T>>& xs, int64_t axis);
// out[i, ...] = x[idx[i], ...]: embedding gather along axis 0. idx may have any
// shape: out has shape idx.shape + x.shape[1:]. Ids are range-checked.
template <class T> TensorT<T> index_select(const TensorT<T>& x, const IntTensor& idx);

// Checks every id is in [0, n): "what: id 12 at [3] out of range [0,10)".
void check_ids(const IntTensor& ids, int64_t n, const char* what);

// Printing: "Tensor[2,3]" then the values, eliding the middle of long axes.
template <class T> std::string to_string(const TensorT<T>& x, int64_t edge = 3);
std::ostream& operator<<(std::ostream& os, const Tensor& x);
std::ostream& operator<<(std::ostream& os, const IntTensor& x);

extern template class TensorT<float>;
extern template class TensorT<int32_t>;

}  // namespace qkv

#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <type_traits>

#include "engine/kernels/transpose.h"
#include "engine/memory.h"
#include "engine/rng.h"
#include "engine/threads.h"

namespace qkv {

// ---- shapes -----------------------------------------------------------------

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    check(d >= 0, "tensor: negative dimension in shape ", s);
    n *= d;
  }
  return n;
}

AxisSplit split_axis(const Shape& s, int axis) {
  AxisSplit r;
  for (int i = 0; i < axis; ++i) r.outer *= s[i];
  r.mid = s[axis];
  for (size_t i = axis + 1; i < s.size(); ++i) r.inner *= s[i];
  return r;
}

int normalize_axis(int64_t axis, int64_t dim, const char* op) {
  check(axis >= -dim && axis < dim, op, ": axis ", axis, " out of range for rank ", dim);
  return int(axis < 0 ? axis + dim : axis);
}

namespace {

// 64-byte aligned, padded to whole 64-byte lines, padding zeroed.
template <class T>
std::shared_ptr<T[]> alloc_storage(int64_t n) {
  size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64 * 64;
  T* p = static_cast<T*>(alloc_aligned(bytes));
  std::memset(reinterpret_cast<char*>(p) + n * sizeof(T), 0, bytes - n * sizeof(T));
  return std::shared_ptr<T[]>(p, [](T* q) { free_aligned(q); });
}

}  // namespace

// ---- TensorT ------------------------------------------------------------------

template <class T>
TensorT<T>::TensorT(Shape shape) : numel_(numel_of(shape)), shape_(std::move(shape)) {
  data_ = alloc_storage<T>(numel_);
}

template <class T>
TensorT<T> TensorT<T>::zeros(Shape shape) {
  TensorT t(std::move(shape));
  std::memset(t.data(), 0, t.numel() * sizeof(T));
  return t;
}

template <class T>
TensorT<T> TensorT<T>::full(Shape shape, T value) {
  TensorT t(std::move(shape));
  t.fill(value);
  return t;
}

template <class T>
TensorT<T> TensorT<T>::from(Shape shape, const std::vector<T>& values) {
  TensorT t(std::move(shape));
  check(int64_t(values.size()) == t.numel(), "tensor: ", values.size(),
        " values given for shape ", t.shape(), " (", t.numel(), " elements)");
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

template <class T>
int64_t TensorT<T>::size(int64_t axis) const {
  return shape_[normalize_axis(axis, dim(), "size")];
}

template <class T>
int64_t TensorT<T>::flat_index(std::initializer_list<int64_t> idx) const {
  check(defined(), "at: undefined tensor");
  check(int64_t(idx.size()) == dim(), "at: ", idx.size(), " indices for a tensor of shape ",
        shape_);
  int64_t flat = 0, i = 0;
  for (int64_t v : idx) {
    check(v >= 0 && v < shape_[i], "at: index ", v, " out of range for axis ", i, " of shape ",
          shape_);
    flat = flat * shape_[i] + v;
    ++i;
  }
  return flat;
}

template <class T>
T& TensorT<T>::at(std::initializer_list<int64_t> idx) { return data()[flat_index(idx)]; }

template <class T>
T TensorT<T>::at(std::initializer_list<int64_t> idx) const { return data()[flat_index(idx)]; }

template <class T>
T TensorT<T>::item() const {
  check(defined() && numel_ == 1, "item: expected one element, got shape ", shape_);
  return data()[0];
}

template <class T>
TensorT<T> TensorT<T>::view(Shape shape) const {
  check(defined(), "view: undefined tensor");
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check(infer < 0, "view: more than one -1 in ", shape);
      infer = int(i);
    } else {
      check(shape[i] >= 0, "view: negative dimension in ", shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && numel_ % known == 0, "view: cannot infer -1 in ", shape, " from ",
          shape_);
    shape[infer] = numel_ / known;
    known *= shape[infer];
  }
  check(known == numel_, "view: shape ", shape, " has ", known, " elements, tensor ", shape_,
        " has ", numel_);
  TensorT r = *this;
  r.shape_ = std::move(shape);
  return r;
}

template <class T>
TensorT<T> TensorT<T>::narrow_rows(int64_t start, int64_t end) const {
  check(dim() >= 1, "narrow_rows: expected rank >= 1, got ", shape_);
  check(0 <= start && start <= end && end <= shape_[0], "narrow_rows: rows [", start, ",", end,
        ") out of range for shape ", shape_);
  TensorT r = *this;
  int64_t row = numel_of(Shape(shape_.begin() + 1, shape_.end()));
  r.offset_ += start * row;
  r.shape_[0] = end - start;
  r.numel_ = (end - start) * row;
  return r;
}

template <class T>
TensorT<T> TensorT<T>::clone() const {
  TensorT r(shape_);
  std::memcpy(r.data(), data(), numel_ * sizeof(T));
  return r;
}

template <class T>
void TensorT<T>::fill(T value) {
  std::fill(data(), data() + numel_, value);
}

template <class T>
void TensorT<T>::copy_from(const TensorT& src) {
  check(src.numel() == numel_, "copy_from: ", src.shape(), " into ", shape_);
  std::memmove(data(), src.data(), numel_ * sizeof(T));
}

template class TensorT<float>;
template class TensorT<int32_t>;

// ---- creation -----------------------------------------------------------------

Tensor zeros(Shape shape) { return Tensor::zeros(std::move(shape)); }
Tensor ones(Shape shape) { return Tensor::full(std::move(shape), 1.f); }
Tensor full(Shape shape, float value) { return Tensor::full(std::move(shape), value); }

Tensor arange(int64_t n) { return arange(0.f, float(n), 1.f); }

Tensor arange(float start, float stop, float step) {
  check(step != 0.f, "arange: step must be non-zero");
  double count = std::ceil((double(stop) - start) / step);
  Tensor t({std::max<int64_t>(0, int64_t(count))});
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = float(start + double(step) * i);
  return t;
}

Tensor uniform(Shape shape, float lo, float hi, Generator& gen) {
  Tensor t(std::move(shape));
  gen.fill_uniform(t.data(), t.numel(), lo, hi);
  return t;
}

Tensor normal(Shape shape, float mean, float stddev, Generator& gen) {
  Tensor t(std::move(shape));
  gen.fill_normal(t.data(), t.numel(), mean, stddev);
  return t;
}

// ---- layout ops -----------------------------------------------------------------

template <class T>
TensorT<T> permute(const TensorT<T>& x, const std::vector<int>& dims) {
  const int n = int(x.dim());
  check(int(dims.size()) == n, "permute: ", dims.size(), " dims given for shape ", x.shape());
  std::vector<int> perm(n);
  std::vector<bool> seen(n, false);
  for (int i = 0; i < n; ++i) {
    int d = normalize_axis(dims[i], n, "permute");
    check(!seen[d], "permute: axis ", d, " repeated");
    seen[d] = true;
    perm[i] = d;
  }
  Shape out_shape(n);
  for (int i = 0; i < n; ++i) out_shape[i] = x.shape()[perm[i]];
  TensorT<T> out(out_shape);
  if (x.numel() == 0) return out;

  // The common case, a batch of matrix transposes ([..,R,C] -> [..,C,R]): in
  // bands of 16 rows through the tile kernels of engine/kernels/transpose.h.
  bool swap_last = n >= 2 && perm[n - 1] == n - 2 && perm[n - 2] == n - 1;
  for (int i = 0; swap_last && i < n - 2; ++i) swap_last = perm[i] == i;
  if (swap_last) {
    const int64_t R = x.shape()[n - 2], C = x.shape()[n - 1], mats = x.numel() / (R * C);
    const int64_t bands = (R + 15) / 16;
    const T* src = x.data();
    T* dst = out.data();
#pragma omp parallel for collapse(2) schedule(static) if (worth_threads(x.numel())) \
    num_threads(num_threads())
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t b = 0; b < bands; ++b) {
        const int64_t r0 = b * 16, nr = std::min<int64_t>(16, R - r0);
        const T* s = src + m * R * C + r0 * C;
        T* d = dst + m * R * C + r0;
        if constexpr (std::is_same_v<T, float>)
          transpose_block(s, C, nr, C, d, R);  // SIMD register tiles
        else
          transpose_tiles(s, C, nr, C, d, R);
      }
    return out;
  }

  // Input strides, reordered to the output's axis order.
  std::vector<int64_t> in_stride(n, 1), st(n);
  for (int i = n - 2; i >= 0; --i) in_stride[i] = in_stride[i + 1] * x.shape()[i + 1];
  for (int i = 0; i < n; ++i) st[i] = in_stride[perm[i]];

  // Walk the output contiguously; the innermost output axis is one strided run.
  const T* src = x.data();
  T* dst = out.data();
  const int64_t inner = n ? out_shape[n - 1] : 1, inner_st = n ? st[n - 1] : 1;
  const int64_t rows = out.numel() / inner;
#pragma omp parallel for schedule(static) if (worth_threads(out.numel())) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    for (int i = n - 2; i >= 0; --i) {
      off += (rem % out_shape[i]) * st[i];
      rem /= out_shape[i];
    }
    T* d = dst + r * inner;
    const T* s = src + off;
    for (int64_t j = 0; j < inner; ++j) d[j] = s[j * inner_st];
  }
  return out;
}

template <class T>
TensorT<T> transpose(const TensorT<T>& x, int64_t a, int64_t b) {
  const int n = int(x.dim());
  std::vector<int> dims(n);
  for (int i = 0; i < n; ++i) dims[i] = i;
  std::swap(dims[normalize_axis(a, n, "transpose")], dims[normalize_axis(b, n, "transpose")]);
  return permute(x, dims);
}

template <class T>
TensorT<T> slice(const TensorT<T>& x, int64_t axis, int64_t start, int64_t end) {
  const int ax = normalize_axis(axis, x.dim(), "slice");
  const int64_t len = x.shape()[ax];
  if (start < 0) start += len;
  if (end < 0) end += len;
  check(0 <= start && start <= end && end <= len, "slice: [", start, ",", end,
        ") out of range for axis ", ax, " of shape ", x.shape());
  Shape out_shape = x.shape();
  out_shape[ax] = end - start;
  TensorT<T> out(out_shape);
  AxisSplit s = split_axis(x.shape(), ax);
  const int64_t run = (end - start) * s.inner;
  for (int64_t o = 0; o < s.outer; ++o)
    std::memcpy(out.data() + o * run, x.data() + (o * s.mid + start) * s.inner, run * sizeof(T));
  return out;
}

template <class T>
TensorT<T> concat(const std::vector<TensorT<T>>& xs, int64_t axis) {
  check(!xs.empty(), "concat: no tensors given");
  const Shape& s0 = xs[0].shape();
  const int ax = normalize_axis(axis, int64_t(s0.size()), "concat");
  Shape out_shape = s0;
  out_shape[ax] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool same = s.size() == s0.size();
    for (size_t i = 0; same && i < s.size(); ++i) same = (int(i) == ax) || s[i] == s0[i];
    check(same, "concat: tensor ", k, " has shape ", s, ", expected ", s0,
          " except along axis ", ax);
    out_shape[ax] += s[ax];
  }
  TensorT<T> out(out_shape);
  AxisSplit so = split_axis(out_shape, ax);
  int64_t col = 0;  // running offset along ax, in elements of one outer row
  for (const auto& x : xs) {
    const int64_t run = x.shape()[ax] * so.inner;
    for (int64_t o = 0; o < so.outer; ++o)
      std::memcpy(out.data() + o * so.mid * so.inner + col, x.data() + o * run, run * sizeof(T));
    col += run;
  }
  return out;
}

template <class T>
TensorT<T> stack(const std::vector<TensorT<T>>& xs, int64_t axis) {
  check(!xs.empty(), "stack: no tensors given");
  const int64_t n = xs[0].dim();
  const int ax = normalize_axis(axis, n + 1, "stack");
  std::vector<TensorT<T>> us;
  us.reserve(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    check(xs[k].shape() == xs[0].shape(), "stack: tensor ", k, " has shape ", xs[k].shape(),
          ", expected ", xs[0].shape());
    Shape s = xs[k].shape();
    s.insert(s.begin() + ax, 1);
    us.push_back(xs[k].view(s));
  }
  return concat(us, ax);
}

void check_ids(const IntTensor& ids, int64_t n, const char* what) {
  const int32_t* p = ids.data();
  for (int64_t i = 0; i < ids.numel(); ++i)
    if (p[i] < 0 || p[i] >= n) fail(what, ": id ", p[i], " at flat index ", i, " out of range [0,", n, ")");
}

template <class T>
TensorT<T> index_select(const TensorT<T>& x, const IntTensor& idx) {
  check(x.dim() >= 1, "index_select: expected a tensor of rank >= 1, got ", x.shape());
  check_ids(idx, x.shape()[0], "index_select");
  Shape out_shape = idx.shape();
  out_shape.insert(out_shape.end(), x.shape().begin() + 1, x.shape().end());
  TensorT<T> out(out_shape);
  const int64_t row = x.dim() ? numel_of(Shape(x.shape().begin() + 1, x.shape().end())) : 1;
  const int32_t* id = idx.data();
#pragma omp parallel for schedule(static) if (worth_threads(out.numel())) num_threads(num_threads())
  for (int64_t i = 0; i < idx.numel(); ++i)
    std::memcpy(out.data() + i * row, x.data() + int64_t(id[i]) * row, row * sizeof(T));
  return out;
}

// ---- printing -----------------------------------------------------------------

template <class T>
std::string to_string(const TensorT<T>& x, int64_t edge) {
  std::ostringstream o;
  o << (std::is_same_v<T, float> ? "Tensor" : "IntTensor") << shape_str(x.shape());
  if (!x.defined()) return o.str() + " (undefined)";
  o << "\n";
  if (std::is_same_v<T, float>) o << std::setprecision(5);
  const Shape& s = x.shape();
  const int n = int(s.size());
  // Recursive print with '...' for the middle of axes longer than 2*edge.
  auto rec = [&](auto&& self, int d, int64_t off, int indent) -> void {
    if (d == n) {
      o << x.data()[off];
      return;
    }
    int64_t stride = 1;
    for (int i = d + 1; i < n; ++i) stride *= s[i];
    o << "[";
    for (int64_t i = 0; i < s[d]; ++i) {
      if (s[d] > 2 * edge && i == edge) {
        o << (d == n - 1 ? "..., " : "...,\n" + std::string(indent + 1, ' '));
        i = s[d] - edge - 1;
        continue;
      }
      self(self, d + 1, off + i * stride, indent + 1);
      if (i + 1 < s[d]) o << (d == n - 1 ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    o << "]";
  };
  rec(rec, 0, 0, 0);
  return o.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& x) { return os << to_string(x); }
std::ostream& operator<<(std::ostream& os, const IntTensor& x) { return os << to_string(x); }

#define QKV_INSTANTIATE_LAYOUT(T)                                                       \
  template TensorT<T> permute(const TensorT<T>&, const std::vector<int>&);              \
  template TensorT<T> transpose(const TensorT<T>&, int64_t, int64_t);                   \
  template TensorT<T> slice(const TensorT<T>&, int64_t, int64_t, int64_t);              \
  template TensorT<T> concat(const std::vector<TensorT<T>>&, int64_t);                  \
  template TensorT<T> stack(const std::vector<TensorT<T>>&, int64_t);                   \
  template TensorT<T> index_select(const TensorT<T>&, const IntTensor&);                \
  template std::string to_string(const TensorT<T>&, int64_t);
QKV_INSTANTIATE_LAYOUT(float)
QKV_INSTANTIATE_LAYOUT(int32_t)
#undef QKV_INSTANTIATE_LAYOUT

}  // namespace qkv

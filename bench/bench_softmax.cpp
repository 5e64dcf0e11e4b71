// `qkv bench softmax`: softmax and log-softmax over the rows of a [4096,1024]
// score matrix, next to a memcpy of the same bytes (the bandwidth yardstick:
// both read x once and write y once, so softmax can at best match the copy).
// Then the fused cross-entropy over a [B*T,V] batch of logits (4096 rows of a
// 1024-word vocabulary, label smoothing 0.1), forward and backward.
#include <cstring>
#include <functional>
#include <string>

#include "bench/bench.h"
#include "engine/kernels/softmax.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::bench {
namespace {

// x: [rows, V] logits. Forward reads x once (the loss per row is negligible);
// backward reads x and writes dx: 4 and 8 bytes per logit.
void cross_entropy_cases(const Options& opt, const Tensor& x, std::vector<Result>& out) {
  const int64_t rows = x.size(0), V = x.size(1);
  const std::string dims = std::to_string(rows) + "x" + std::to_string(V);
  const float ls = 0.1f;
  const int64_t ignore = -100;
  Generator g(43);
  IntTensor target({rows});
  for (int64_t r = 0; r < rows; ++r)
    target.data()[r] = r % 16 == 5 ? int32_t(ignore) : int32_t(g.next_below(uint64_t(V)));
  Tensor loss({rows}), mx({rows}), lsum({rows}), loss_ref({rows}), mx_ref({rows}), lsum_ref({rows});
  Tensor dx(x.shape()), dx_ref(x.shape());
  auto fwd = [&] {
    cross_entropy_forward(x.data(), target.data(), rows, V, ignore, ls, loss.data(), mx.data(),
                          lsum.data());
  };
  fwd();
  cross_entropy_forward_ref(x.data(), target.data(), rows, V, ignore, ls, loss_ref.data(),
                            mx_ref.data(), lsum_ref.data());
  verify("cross_entropy " + dims, loss.data(), loss_ref.data(), long(rows), 1e-5);
  time_bandwidth(opt, "softmax", "cross_entropy " + dims + " fwd", 4.0 * double(x.numel()), fwd,
                 out);
  const float scale = 1.f;  // (mean would be 1/rows: same work, but the check would be loose)
  auto bwd = [&] {
    cross_entropy_backward(x.data(), target.data(), mx.data(), lsum.data(), nullptr, scale, rows,
                           V, ignore, ls, dx.data());
  };
  bwd();
  cross_entropy_backward_ref(x.data(), target.data(), mx.data(), lsum.data(), nullptr, scale, rows,
                             V, ignore, ls, dx_ref.data());
  verify("cross_entropy backward " + dims, dx.data(), dx_ref.data(), long(x.numel()), 1e-5);
  time_bandwidth(opt, "softmax", "cross_entropy " + dims + " bwd", 8.0 * double(x.numel()), bwd,
                 out);
}

}  // namespace

std::vector<Result> suite_softmax(const Options& opt) {
  const int64_t rows = opt.quick ? 64 : 4096, n = opt.quick ? 100 : 1024;
  const std::string dims = std::to_string(rows) + "x" + std::to_string(n);
  // Napkin math: 2 * rows * n * 4 bytes moved (read x, write y) = 32 MiB at
  // 4096x1024, far beyond L2 (2 MiB), so DRAM bandwidth sets the floor;
  // exp costs ~0.15 ns/element = ~0.6 ms for 4M elements on one core.
  const double bytes = 2.0 * double(rows) * double(n) * sizeof(float);
  Generator g(42);
  Tensor x = uniform({rows, n}, -8.f, 8.f, g);
  Tensor want(Shape{rows, n});
  // One output buffer per case, allocated here (not in the timed call).
  Tensor y_soft(Shape{rows, n}), y_log(Shape{rows, n}), y_copy(Shape{rows, n});

  std::vector<Result> out;

  auto run_soft = [&] { softmax_forward(x.data(), y_soft.data(), rows, n); };
  run_soft();
  softmax_forward_ref(x.data(), want.data(), rows, n);
  verify("softmax " + dims, y_soft.data(), want.data(), long(x.numel()), 1e-5);
  time_bandwidth(opt, "softmax", "softmax " + dims, bytes, run_soft, out);

  auto run_log = [&] { log_softmax_forward(x.data(), y_log.data(), rows, n); };
  run_log();
  log_softmax_forward_ref(x.data(), want.data(), rows, n);
  verify("log_softmax " + dims, y_log.data(), want.data(), long(x.numel()), 1e-5);
  time_bandwidth(opt, "softmax", "log_softmax " + dims, bytes, run_log, out);

  time_copy(opt, "softmax", dims, x, y_copy, out);
  cross_entropy_cases(opt, x, out);
  return out;
}

}  // namespace qkv::bench

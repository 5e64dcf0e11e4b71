// `qkv bench softmax`: softmax and log-softmax over the rows of a [4096,1024]
// score matrix, next to a memcpy of the same bytes (the bandwidth yardstick:
// both read x once and write y once, so softmax can at best match the copy).
#include <cstring>
#include <functional>
#include <string>

#include "bench/bench.h"
#include "engine/kernels/softmax.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::bench {

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
  return out;
}

}  // namespace qkv::bench

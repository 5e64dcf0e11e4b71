// `qkv bench layernorm`: affine LayerNorm over the rows of [4096,1024]
// activations, next to a memcpy of the same bytes (the bandwidth yardstick:
// both read x once and write y once; gamma, beta, mean, rstd are < 0.2% more).
#include <cstring>
#include <functional>
#include <string>

#include "bench/bench.h"
#include "engine/kernels/layernorm.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace qkv::bench {

std::vector<Result> suite_layernorm(const Options& opt) {
  const int64_t rows = opt.quick ? 64 : 4096, n = opt.quick ? 100 : 1024;
  const std::string dims = std::to_string(rows) + "x" + std::to_string(n);
  // Napkin math: 2 * rows * n * 4 bytes = 32 MiB moved at 4096x1024, beyond
  // L2 (2 MiB): DRAM-bound. The statistics passes re-read a 4 KiB row from L1.
  const double bytes = 2.0 * double(rows) * double(n) * sizeof(float);
  const float eps = 1e-5f;
  Generator g(43);
  Tensor x = normal({rows, n}, 0.5f, 2.f, g);
  Tensor gamma = uniform({n}, 0.5f, 1.5f, g), beta = uniform({n}, -0.5f, 0.5f, g);
  Tensor want(Shape{rows, n}), want_mean(Shape{rows}), want_rstd(Shape{rows});
  // One output buffer per case, allocated here (not in the timed call).
  Tensor y(Shape{rows, n}), mean(Shape{rows}), rstd(Shape{rows}), y_copy(Shape{rows, n});

  std::vector<Result> out;

  auto run_ln = [&] {
    layernorm_forward(x.data(), gamma.data(), beta.data(), rows, n, eps, y.data(), mean.data(),
                      rstd.data());
  };
  run_ln();
  layernorm_forward_ref(x.data(), gamma.data(), beta.data(), rows, n, eps, want.data(),
                        want_mean.data(), want_rstd.data());
  verify("layernorm " + dims, y.data(), want.data(), long(x.numel()), 1e-5);
  verify("layernorm " + dims + " mean", mean.data(), want_mean.data(), long(rows), 1e-5);
  verify("layernorm " + dims + " rstd", rstd.data(), want_rstd.data(), long(rows), 1e-5);
  time_bandwidth(opt, "layernorm", "layernorm " + dims, bytes, run_ln, out);

  time_copy(opt, "layernorm", dims, x, y_copy, out);
  return out;
}

}  // namespace qkv::bench

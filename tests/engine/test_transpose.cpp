// transpose_block against transpose_block_ref: rows and columns below, at and
// past the 16-wide tile (with tails), leading dimensions wider than the
// block, and nothing written outside the block.
#include <cmath>
#include <string>
#include <vector>

#include "engine/kernels/transpose.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("engine/transpose") {
  TEST_CASE("matches the reference over sizes with tails and padded leading dimensions") {
    uint64_t seed = 1;
    for (int64_t rows : test::kSizes)
      for (int64_t cols : {int64_t(1), int64_t(5), int64_t(16), int64_t(32), int64_t(33),
                           int64_t(64), int64_t(100)})
        for (int64_t pad : {0, 3}) {
          const int64_t lds = cols + pad, ldd = rows + pad;
          const Tensor src = test::rand_tensor({rows, lds}, seed++);
          // dst pre-filled with NaN: entries outside the block must stay NaN
          std::vector<float> got(size_t(cols * ldd), std::nanf("")), want = got;
          transpose_block(src.data(), lds, rows, cols, got.data(), ldd);
          transpose_block_ref(src.data(), lds, rows, cols, want.data(), ldd);
          const std::string what = std::string("rows ") + std::to_string(rows) + " cols " +
                                   std::to_string(cols) + " pad " + std::to_string(pad);
          INFO(what);
          for (size_t i = 0; i < got.size(); ++i) {
            const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i];
            if (!same) FAIL_CHECK(what, ": element ", i, " is ", got[i], ", expected ", want[i]);
          }
          // the reference itself: a spot check of its definition
          CHECK(want[size_t((cols - 1) * ldd + rows - 1)] ==
                src.data()[(rows - 1) * lds + cols - 1]);
        }
  }
}

}  // namespace
}  // namespace qkv

// gradcheck itself: it passes a correct backward and catches a wrong one,
// naming the input and element.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "engine/kernels/binary.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

// y = x * x elementwise, with a backward that is right or off by a factor.
Var square(const Var& x, float factor) {
  Tensor out = qkv::mul(x.value(), x.value());
  return record("square", out, {x}, [xv = x.value(), factor](const Tensor& g, const std::vector<bool>&) {
    Tensor d = qkv::mul(g, xv);
    for (float& v : d) v *= factor;
    return std::vector<Tensor>{d};
  });
}

TEST_SUITE("autograd/gradcheck") {
  TEST_CASE("a correct backward passes") {
    Var x(test::rand_tensor({3, 4}, 1), true);
    auto r = gradcheck([](const std::vector<Var>& in) { return square(in[0], 2.f); }, {x});
    INFO(r.report);
    CHECK(r.ok);
  }

  TEST_CASE("a wrong backward fails, and the report names input and element") {
    Var x(test::rand_tensor({3, 4}, 1, 0.5f, 1.f), true);
    x.set_name("x");
    auto r = gradcheck([](const std::vector<Var>& in) { return square(in[0], 2.2f); }, {x});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("gradcheck: input 0 ('x') shape [3,4] element 0: analytic") == 0);
  }

  TEST_CASE("inputs that require no gradient are held fixed; large inputs are sampled") {
    Var a(test::rand_tensor({40, 30}, 1), true), b(test::rand_tensor({30, 5}, 2), false);
    GradcheckOptions opt;
    opt.max_per_input = 16;
    auto r = gradcheck([](const std::vector<Var>& in) { return matmul(in[0], in[1]); }, {a, b}, opt);
    INFO(r.report);
    CHECK(r.ok);
    CHECK_FALSE(b.has_grad());
  }
}

}  // namespace
}  // namespace qkv

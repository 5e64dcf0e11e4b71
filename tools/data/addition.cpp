// Addition problems: enumerated and shuffled when the request is a large part
// of the 10^(2 digits) distinct problems, drawn with rejection otherwise.
#include "tools/data/addition.h"

#include <string>

#include "tools/data/registry.h"

namespace qkv::data {

AdditionOptions addition_options(JsonReader& r) {
  AdditionOptions o;
  o.n = read_split_sizes(r, o.n);
  o.digits = r.get_int("digits", o.digits, 1, 9);
  o.reverse_source = r.get_bool("reverse_source", o.reverse_source);
  return o;
}

std::unique_ptr<Dataset> make_addition(const AdditionOptions& o, uint64_t seed) {
  int64_t top = 1;  // operands in [0, top)
  for (int64_t i = 0; i < o.digits; ++i) top *= 10;
  auto problem = [](int64_t a, int64_t b) {
    return Pair{std::to_string(a) + "+" + std::to_string(b), std::to_string(a + b)};
  };
  const std::string what = "data (addition, digits " + std::to_string(o.digits) + ")";
  Generator gen = data_generator(seed, "addition");
  Splits splits;
  if (top * top <= 4 * o.n.total() || top * top <= 10000) {
    std::vector<Pair> all;
    all.reserve(size_t(top * top));
    for (int64_t a = 0; a < top; ++a) {
      for (int64_t b = 0; b < top; ++b) all.push_back(problem(a, b));
    }
    splits = split_all(std::move(all), o.n, gen, what);
  } else {
    auto draw = [&](Generator& g) {
      const int64_t a = g.next_below(top);
      return problem(a, g.next_below(top));
    };
    splits = draw_distinct(o.n, gen, draw, what);
  }
  return std::make_unique<PairDataset>("addition", std::move(splits), "+0123456789", "0123456789",
                                       o.reverse_source);
}

namespace {
const DatasetRegistrar registered("addition", [](JsonReader& r, uint64_t seed) {
  const AdditionOptions o = addition_options(r);
  return DatasetRecipe{[o, seed] { return make_addition(o, seed); }};
});
}  // namespace

}  // namespace qkv::data

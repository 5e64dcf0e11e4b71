// The data-set registry: a data set registered from this file alone (no edit
// to tools/data) is listed by dataset_names() and built by make_dataset with
// its options resolved, unknown keys rejected before it is made, and gone
// again when its registrar's scope ends; taken names are refused.
#include <algorithm>

#include "tests/test_utils.h"
#include "tools/data/pairs.h"
#include "tools/data/registry.h"

namespace qkv::data {
namespace {

bool listed(const std::string& name) {
  const auto names = dataset_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// "echo": n distinct words of `letters` per split, each its own target.
DatasetRecipe read_echo(JsonReader& r, uint64_t seed, int* made) {
  const int64_t n = r.get_int("n", 3, 1, 8);
  const std::string letters = r.get_string("letters", "ab");
  auto make = [n, letters, seed, made]() -> std::unique_ptr<Dataset> {
    ++*made;
    Generator gen = data_generator(seed, "test-echo");
    auto draw = [&](Generator& g) {
      std::string w;
      for (int k = 0; k < 6; ++k) w += letters[size_t(g.next_below(int64_t(letters.size())))];
      return Pair{w, w};
    };
    Splits s = draw_distinct({n, n, n}, gen, draw, "data (test-echo)");
    return std::make_unique<PairDataset>("test-echo", std::move(s), letters, letters, false);
  };
  return {make, {{"words_per_split", n}}};
}

TEST_SUITE("tools/data") {
  TEST_CASE("registry: a data set registered from a test file builds through make_dataset") {
    int made = 0;
    {
      const DatasetRegistrar registered(
          "test-echo", [&made](JsonReader& r, uint64_t seed) { return read_echo(r, seed, &made); });
      CHECK(listed("test-echo"));
      CHECK(listed("dates"));  // the built-in ones stay

      const Made m = make_dataset(Json::parse(R"({"name": "test-echo", "n": 2})"), 4);
      REQUIRE(m.dataset != nullptr);
      CHECK(made == 1);
      CHECK(m.dataset->name() == "test-echo");
      CHECK(m.dataset->size(Split::train) == 2);
      CHECK(m.dataset->target_text(Split::test, 1) == m.dataset->source_text(Split::test, 1));
      CHECK(m.resolved == Json::parse(R"({"name": "test-echo", "n": 2, "letters": "ab",
                                          "words_per_split": 2})"));
      // The seed reaches the maker: another seed, other words.
      const Made other = make_dataset(Json::parse(R"({"name": "test-echo", "n": 2})"), 5);
      CHECK(other.dataset->source_text(Split::train, 0) != m.dataset->source_text(Split::train, 0));

      // An unknown key fails before the data set is made, naming the path.
      const std::string err = test::error_of(
          [] { make_dataset(Json::parse(R"({"name": "test-echo", "nn": 2})"), 4, "exp.data"); });
      CHECK(err.rfind("exp.data.nn: unknown key", 0) == 0);
      CHECK(made == 2);

      // Names are taken once.
      CHECK(test::error_of([] {
              register_dataset("dates", [](JsonReader&, uint64_t) { return DatasetRecipe{}; });
            }) == "register_dataset: data set 'dates' is already registered");
      CHECK(test::error_of([&] {
              DatasetRegistrar again("test-echo",
                                     [](JsonReader&, uint64_t) { return DatasetRecipe{}; });
            }) == "register_dataset: data set 'test-echo' is already registered");
      CHECK(listed("test-echo"));  // the failed second registration did not remove the first
    }
    CHECK(!listed("test-echo"));
    CHECK(test::error_of([] {
            make_dataset(Json::parse(R"({"name": "test-echo"})"), 4);
          }).rfind("data.name: expected one of addition, dates,", 0) == 0);
  }
}

}  // namespace
}  // namespace qkv::data

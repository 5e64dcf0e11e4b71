// JSON config reading: typed getters with ranges, defaults in the resolved
// config, unknown keys and bad values reported with their JSON path, and
// --set overrides.
#include "nn/json_config.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

TEST_SUITE("nn/json_config") {
  TEST_CASE("typed reads, defaults and the resolved config") {
    Json j = Json::parse(R"({"lr": 0.01, "steps": 100, "name": "adam", "nested": {"on": true}})");
    JsonReader r(j, "train");
    CHECK(r.get_number("lr", 1e-3, 0, 1, true) == 0.01);
    CHECK(r.get_int("steps", 10, 1) == 100);
    CHECK(r.get_int("warmup", 0, 0) == 0);  // default
    CHECK(r.get_string("name", "sgd", {"sgd", "adam"}) == "adam");
    JsonReader n = r.child("nested");
    CHECK(n.get_bool("on", false));
    CHECK(n.get_bool("off", false) == false);
    n.finish();
    r.set_child("nested", n);
    r.finish();
    CHECK(r.resolved().dump() ==
          R"({"lr":0.01,"steps":100,"warmup":0,"name":"adam","nested":{"on":true,"off":false}})");
  }

  TEST_CASE("bad values name the JSON path and the expectation") {
    Json j = Json::parse(R"({"optimizer": {"lr": -0.1, "beta": "x", "steps": 2.5, "kind": "sgdd"}})");
    JsonReader r(j, "train");
    JsonReader o = r.child("optimizer");
    CHECK(test::error_of([&] { o.get_number("lr", 1e-3, 0, std::numeric_limits<double>::infinity(), true); }) ==
          "train.optimizer.lr: expected a number > 0, got -0.1");
    CHECK(test::error_of([&] { o.get_number("beta", 0.9); }) ==
          "train.optimizer.beta: expected a number, got \"x\"");
    CHECK(test::error_of([&] { o.get_int("steps", 1); }) ==
          "train.optimizer.steps: expected an integer, got 2.5");
    CHECK(test::error_of([&] { o.get_string("kind", "sgd", {"sgd", "adam"}); }) ==
          "train.optimizer.kind: expected one of sgd, adam, got \"sgdd\"");
    CHECK(test::error_of([&] { o.get_int("layers", 0, 1, 8); }) ==
          "train.optimizer.layers: expected an integer in [1, 8], got 0");
    CHECK(test::error_of([&] { JsonReader(Json::parse("[1]"), "model"); }) ==
          "model: expected an object, got [1]");
    CHECK(test::error_of([&] { r.require_string("type"); }) == "train.type: missing (required)");
  }

  TEST_CASE("unknown keys are rejected with the keys that are known") {
    Json j = Json::parse(R"({"hidden": 8, "hiden": 9})");
    JsonReader r(j, "model.encoder");
    r.get_int("hidden", 4);
    r.get_int("layers", 1);
    CHECK(test::error_of([&] { r.finish(); }) ==
          "model.encoder.hiden: unknown key (known: hidden, layers)");
  }

  TEST_CASE("--set overrides any path, creating objects, parsing JSON values") {
    Json root = Json::parse(R"({"train": {"lr": 0.1}})");
    json_set_path(root, "train.lr=0.001");
    json_set_path(root, "train.optimizer.name=adamw");
    json_set_path(root, "model.layers=[1,2]");
    json_set_path(root, "seed=7");
    CHECK(root["train"]["lr"] == 0.001);
    CHECK(root["train"]["optimizer"]["name"] == "adamw");
    CHECK(root["model"]["layers"] == Json::parse("[1,2]"));
    CHECK(root["seed"] == 7);
    CHECK(test::error_of([&] { json_set_path(root, "seed.x=1"); }) ==
          "--set seed.x=1: seed is not an object");
    CHECK(test::error_of([&] { json_set_path(root, "noequals"); }).find("expected path=value") !=
          std::string::npos);
    // Invalid UTF-8 in a key or a value is refused at once (JSON would throw when written).
    for (const char* bad : {"train.opt\x86mizer=1", "train.optimizer.name=\xff"})
      CHECK(test::error_of([&] { json_set_path(root, bad); }) ==
            "--set: the assignment is not valid UTF-8");
  }
}

}  // namespace
}  // namespace qkv

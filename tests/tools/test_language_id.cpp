// Word-list classification (language-id) and the label<TAB>text layout of the
// text-classification data set: lists the test writes itself, words shared by
// two lists dropped, balanced classes, code points as characters, errors
// naming the file and line or the missing package; an export read back into the same examples.
#include <set>

#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/language_id.h"

namespace qkv::data {
namespace {

using Strings = std::vector<std::string>;
using test::write_text;

Made make(const Json& cfg, uint64_t seed = 1) { return make_dataset(cfg, seed); }

Strings all_examples(const Dataset& d) {
  Strings out;
  for (Split s : {Split::train, Split::valid, Split::test})
    for (int64_t i = 0; i < d.size(s); ++i)
      out.push_back(std::string(split_name(s)) + " " + d.target_text(s, i) + " " +
                    d.source_text(s, i));
  return out;
}

TEST_SUITE("tools/language_id") {
  TEST_CASE("word lists: lower-cased letters only; invalid UTF-8 names file and line") {
    CHECK(read_word_list("Abbaugerät\nÄrger\nStraße\naardvark's\nx-ray\n\nÉté\n", "l") ==
          Strings{"abbaugerät", "ärger", "straße", "été"});
    CHECK(test::error_of([] { read_word_list("gut\nSch\xf6n\n", "ngerman"); }) ==
          "ngerman:2: invalid UTF-8 at byte 3 of the line (0xF6)");
    // wswedish ships ISO-8859-1: converted before reading.
    CHECK(read_word_list(latin1_to_utf8("\xc5r\nsj\xf6\n"), "swedish") == Strings{"år", "sjö"});
  }

  TEST_CASE("language-id: balanced classes, shared words dropped, code points as tokens") {
    test::TempDir dir;
    std::string de = "Haus\nund\n", fr = "maison\nund\n";  // "und" is in both: dropped
    for (int i = 0; i < 30; ++i) {
      de += "wört" + std::string(size_t(1 + i % 5), 'a' + char(i / 5)) + "ung\n";
      fr += "été" + std::string(size_t(1 + i % 5), 'a' + char(i / 5)) + "tion\n";
    }
    write_text(dir / "ngerman", de);
    write_text(dir / "french", fr);
    const Json cfg = {
        {"name", "language-id"}, {"dir", dir.path}, {"languages", {"german", "french"}},
        {"per_class", 20},       {"valid", 0.2},    {"test", 0.2}};
    Made m = make(cfg);
    const Dataset& d = *m.dataset;
    CHECK(d.name() == "language-id");
    CHECK(d.class_names() == Strings{"french", "german"});
    std::map<std::string, int> per_class;
    for (const auto& e : all_examples(d)) {
      CHECK(e.find(" und") == std::string::npos);
      ++per_class[e.substr(e.find(' ') + 1, e.find(' ', e.find(' ') + 1) - e.find(' ') - 1)];
    }
    CHECK(per_class == std::map<std::string, int>{{"french", 20}, {"german", 20}});
    CHECK(d.size(Split::valid) == 8);
    CHECK(d.src_vocab()->id("ö") != Vocab::unk);
    CHECK(d.src_vocab()->id("é") != Vocab::unk);
    CHECK(all_examples(*make(cfg).dataset) == all_examples(d));
    CHECK(all_examples(*make(cfg, 2).dataset) != all_examples(d));
    Json big = cfg;
    big["per_class"] = 40;
    CHECK(test::error_of([&] { make(big); }) ==
          "language-id: french has 31 words of its own, fewer than per_class = 40");
    Json missing = cfg;
    missing["languages"] = {"german", "dutch"};
    CHECK(test::error_of([&] { make(missing); }) ==
          "language-id: missing word list '" + dir / "dutch" +
              "' (the Debian package wdutch provides it; tools/setup.sh installs it)");
    Json bad = cfg;
    bad["languages"] = {"german", "klingon"};
    CHECK(test::error_of([&] { make(bad); }).find("data.languages[1]: expected one of dutch,") ==
          0);
  }

  TEST_CASE("text-classification reads label<TAB>text; its export reads back the same examples") {
    test::TempDir dir;
    std::string t;
    for (int i = 0; i < 20; ++i)
      t += std::string(i % 2 ? "pos" : "neg") + "\t" + (i % 2 ? "gut " : "schlecht ") +
           std::to_string(i) + "\n";
    write_text(dir / "l.tsv", t);
    Made m = make({{"name", "text-classification"}, {"file", dir / "l.tsv"}});
    const Dataset& d = *m.dataset;
    CHECK(d.class_names() == Strings{"neg", "pos"});
    CHECK(d.size(Split::train) + d.size(Split::valid) + d.size(Split::test) == 20);
    std::string all;
    for (Split s : {Split::train, Split::valid, Split::test}) {
      export_tsv(d, s, dir / "x.tsv");
      all += test::read_text(dir / "x.tsv");
    }
    CHECK(all.find("pos\tgut ") != std::string::npos);
    write_text(dir / "back.tsv", all);
    Made back = make({{"name", "text-classification"}, {"file", dir / "back.tsv"}});
    // The same examples (one file is split again by the seed, so not the same splits).
    auto examples = [](const Dataset& x) {
      std::multiset<std::string> out;
      for (const auto& e : all_examples(x)) out.insert(e.substr(e.find(' ') + 1));
      return out;
    };
    CHECK(examples(*back.dataset) == examples(d));
    write_text(dir / "bad.tsv", "pos\tgood\nneg bad\n");
    CHECK(test::error_of([&] {
            make({{"name", "text-classification"}, {"file", dir / "bad.tsv"}});
          }) == dir / "bad.tsv" + ":2: expected label<TAB>text (2 fields), found 1");
  }
}

}  // namespace
}  // namespace qkv::data

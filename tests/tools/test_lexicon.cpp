// Data sets with several references per source (tools/data/lexicon.h) and the
// files they read: TSV pairs (malformed lines named by file and line, the
// export read back into the same examples, a tiny model trained from a file),
// CMUdict entries (stress on and off, malformed entries named), and the
// scoring hook's error rates against every reference.
#include <filesystem>
#include <set>

#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/g2p.h"
#include "tools/data/lexicon.h"
#include "tools/data/pairs_tsv.h"
#include "tools/data/tsv.h"
#include "tools/runner/config.h"
#include "tools/runner/experiment.h"
#include "tools/runner/train.h"

namespace qkv::data {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;
using test::write_text;

Made make(const Json& cfg, uint64_t seed = 1) { return make_dataset(cfg, seed); }

// Every example of every split as "source -> target", and the batch ids of each.
Strings all_examples(const Dataset& d) {
  Strings out;
  for (Split s : {Split::train, Split::valid, Split::test}) {
    for (int64_t i = 0; i < d.size(s); ++i) {
      std::string line = std::string(split_name(s)) + ": " + d.source_text(s, i) + " ->";
      for (const auto& t : d.target_texts(s, i)) line += " [" + t + "]";
      const Batch b = d.batch(s, {i});
      for (int32_t x : Ids(b.src.begin(), b.src.end())) line += " " + std::to_string(x);
      line += " |";
      for (int32_t x : Ids(b.tgt_out.begin(), b.tgt_out.end())) line += " " + std::to_string(x);
      out.push_back(line);
    }
  }
  return out;
}

// 60 words "w<k>ä" or "w<k>ß" -> "x<k mod 7>y"; word w7 has a second reference.
std::string pairs_text() {
  std::string t;
  for (int k = 0; k < 60; ++k) {
    const std::string w = "w" + std::to_string(k) + (k % 3 ? "ä" : "ß");
    t += w + "\tx" + std::to_string(k % 7) + "y\n";
    if (k == 7) t += w + "\tzz\n";
  }
  return t;
}

TEST_SUITE("tools/lexicon") {
  TEST_CASE("edit distance") {
    CHECK(edit_distance({}, {}) == 0);
    CHECK(edit_distance({1, 2, 3}, {}) == 3);
    CHECK(edit_distance({}, {4, 5}) == 2);
    CHECK(edit_distance({1, 2, 3}, {1, 2, 3}) == 0);
    CHECK(edit_distance({1, 2, 3}, {1, 3}) == 1);           // deletion
    CHECK(edit_distance({1, 3}, {1, 2, 3}) == 1);           // insertion
    CHECK(edit_distance({1, 2, 3}, {1, 4, 3}) == 1);        // substitution
    CHECK(edit_distance({1, 2, 3, 4}, {2, 1, 4, 3}) == 3);  // kitten/sitting-like
    CHECK(edit_distance({5, 6, 7, 8, 9, 6}, {5, 6, 7, 6}) == 2);
  }

  TEST_CASE("TSV: escapes round-trip, malformed lines name the file and line") {
    const std::string field = "a\tb\\c\nd";
    CHECK(tsv_unescape(tsv_escape(field), "x") == field);
    const auto rows = read_tsv("a\tb\n\n  \nc\\td\te\r\nf\tg", "p.tsv", {"source", "target"});
    REQUIRE(rows.size() == 3);
    CHECK(rows[1].line == 4);
    CHECK(rows[1].fields == Strings{"c\td", "e"});
    CHECK(rows[2].fields == Strings{"f", "g"});
    CHECK(test::error_of([] {
            read_tsv("a\tb\nno tab here\n", "p.tsv", {"source", "target"});
          }) == "p.tsv:2: expected source<TAB>target (2 fields), found 1");
    CHECK(test::error_of([] {
            read_tsv("a\tb\tc\n", "p.tsv", {"source", "target"});
          }) == "p.tsv:1: expected source<TAB>target (2 fields), found 3");
    CHECK(test::error_of([] {
            read_tsv("x\t\n", "p.tsv", {"source", "target"});
          }) == "p.tsv:1: the target is empty");
    CHECK(test::error_of([] {
            read_tsv("a\\x\tb\n", "p.tsv", {"source", "target"});
          }) ==
          "p.tsv:1: a backslash must start \\t, \\n or \\\\ (escapes of tab, newline, backslash)");
    CHECK(test::error_of([] {
            read_tsv("ok\tok\nM\xe4r\tb\n", "p.tsv", {"source", "target"});
          }) == "p.tsv:2: invalid UTF-8 at byte 1 of the line");
  }

  TEST_CASE("pairs: splits by source fixed by the seed, vocabulary from train, references merged") {
    test::TempDir dir;
    write_text(dir / "p.tsv", pairs_text());
    const Json cfg = {{"name", "pairs"}, {"file", dir / "p.tsv"}, {"valid", 0.2}, {"test", 0.2}};
    Made m = make(cfg);
    const Dataset& d = *m.dataset;
    CHECK(d.task() == Task::seq2seq);
    CHECK(d.size(Split::valid) == 12);
    CHECK(d.size(Split::test) == 12);
    // 36 training words, one of them (w7) twice if it landed in train.
    std::set<std::string> seen[3];
    for (Split s : {Split::train, Split::valid, Split::test})
      for (int64_t i = 0; i < d.size(s); ++i) seen[size_t(s)].insert(d.source_text(s, i));
    CHECK(seen[0].size() == 36);
    for (const auto& w : seen[1]) CHECK(!seen[0].count(w));
    for (const auto& w : seen[2]) CHECK((!seen[0].count(w) && !seen[1].count(w)));
    // "ä" and "ß" are one token each.
    CHECK(d.src_vocab()->id("ä") != Vocab::unk);
    CHECK(d.src_vocab()->split("w1ä").size() == 3);
    CHECK(all_examples(*make(cfg).dataset) == all_examples(d));
    CHECK(all_examples(*make(cfg, 2).dataset) != all_examples(d));
    // w7's two references.
    bool found = false;
    for (Split s : {Split::train, Split::valid, Split::test})
      for (int64_t i = 0; i < d.size(s); ++i)
        if (d.source_text(s, i) == "w7ä") {
          found = true;
          if (s == Split::train)
            CHECK(d.size(s) == 37);
          else
            CHECK(d.target_texts(s, i) == Strings{"x0y", "zz"});
        }
    CHECK(found);
    CHECK(m.resolved["tokens"] == "chars");
  }

  TEST_CASE("pairs: a token seen only outside the training split is unk") {
    test::TempDir dir;
    std::string train, valid, test;
    for (int k = 0; k < 5; ++k) train += "a b\tc d\n";
    write_text(dir / "train.tsv", train);
    write_text(dir / "valid.tsv", "a q\tc\n");
    write_text(dir / "test.tsv", "b\tc e\n");
    Made m = make({{"name", "pairs"},
                   {"tokens", "words"},
                   {"files",
                    {{"train", dir / "train.tsv"},
                     {"valid", dir / "valid.tsv"},
                     {"test", dir / "test.tsv"}}}});
    const Dataset& d = *m.dataset;
    CHECK(d.size(Split::train) == 1);  // five equal lines: one source, one reference
    CHECK(d.src_vocab()->size() == 4 + 2);
    const Batch v = d.batch(Split::valid, {0});
    CHECK(v.src.data()[1] == Vocab::unk);
    const Batch t = d.batch(Split::test, {0});
    CHECK(t.tgt_out.data()[1] == Vocab::unk);
  }

  TEST_CASE("pairs: bad files and options are named") {
    test::TempDir dir;
    write_text(dir / "bad.tsv", "a\tb\nc\td\te\n");
    CHECK(test::error_of([&] {
            make({{"name", "pairs"}, {"file", dir / "bad.tsv"}});
          }) == dir / "bad.tsv" + ":2: expected source<TAB>target (2 fields), found 3");
    CHECK(test::error_of([&] {
            make({{"name", "pairs"}, {"file", dir / "none.tsv"}});
          }) == "pairs: cannot read '" + dir / "none.tsv" + "'");
    CHECK(test::error_of([&] { make({{"name", "pairs"}}); }).find("data.file: give either") == 0);
    write_text(dir / "few.tsv", "a\tb\nc\td\n");
    CHECK(test::error_of([&] {
            make({{"name", "pairs"}, {"file", dir / "few.tsv"}});
          }).find("distinct sources are too few") != std::string::npos);
  }

  TEST_CASE("pairs: the export reads back into the same examples") {
    test::TempDir dir;
    write_text(dir / "p.tsv", pairs_text());
    Made m = make({{"name", "pairs"}, {"file", dir / "p.tsv"}, {"valid", 0.2}, {"test", 0.2}});
    for (Split s : {Split::train, Split::valid, Split::test})
      export_tsv(*m.dataset, s, dir / (std::string(split_name(s)) + ".tsv"));
    Made back = make({{"name", "pairs"},
                      {"files",
                       {{"train", dir / "train.tsv"},
                        {"valid", dir / "valid.tsv"},
                        {"test", dir / "test.tsv"}}}});
    CHECK(all_examples(*back.dataset) == all_examples(*m.dataset));
  }

  TEST_CASE("scoring: a prediction is right if it equals any reference; PER to the nearest") {
    test::TempDir dir;
    std::string t;
    for (int k = 0; k < 8; ++k) t += "s" + std::to_string(k) + "\ta b c d e\n";
    write_text(dir / "train.tsv", t);
    write_text(dir / "valid.tsv", "s1\ta b c\ns1\ta b d e\n");
    write_text(dir / "test.tsv", "s2\ta b c\n");
    Made m = make({{"name", "pairs"},
                   {"tokens", "words"},
                   {"files",
                    {{"train", dir / "train.tsv"},
                     {"valid", dir / "valid.tsv"},
                     {"test", dir / "test.tsv"}}}});
    const Dataset& d = *m.dataset;
    const Vocab& v = *d.tgt_vocab();
    const int32_t a = v.id("a"), b = v.id("b"), c = v.id("c"), dd = v.id("d"), e = v.id("e");
    EvalSums sums;
    d.score(Split::valid, {0}, {{a, b, dd, e, Vocab::eos}}, sums);  // the second reference
    CHECK(sums["sequence_errors"] == 0);
    d.score(Split::valid, {0}, {{a, b, dd}}, sums);  // 1 from both: the first counts
    d.score(Split::valid, {0}, {{c}}, sums);         // 2 from "a b c"
    CHECK(sums["scored_sequences"] == 3);
    CHECK(sums["sequence_errors"] == 2);
    CHECK(sums["token_edits"] == 0 + 1 + 2);
    CHECK(sums["scored_ref_tokens"] == 4 + 3 + 3);
    const Metrics ms = d.metrics(sums);
    REQUIRE(ms.size() == 2);
    CHECK(ms[0].first == "ser");
    CHECK(ms[0].second == doctest::Approx(2.0 / 3));
    CHECK(ms[1].second == doctest::Approx(3.0 / 10));
  }

  TEST_CASE("a tiny model trains from a TSV file it reads, and scores ser / ter") {
    test::TempDir dir;
    std::string t;
    Generator g(5);
    std::set<std::string> seen;
    while (seen.size() < 300) {
      std::string w;
      for (int64_t k = 0, n = 2 + g.next_below(3); k < n; ++k) w += "abcd"[g.next_below(4)];
      if (g.next_below(4) == 0) w += "ä";
      if (!seen.insert(w).second) continue;
      t += w + "\t" + w + "\n";  // copy
    }
    write_text(dir / "copy.tsv", t);
    Json root = {{"name", "tsv"},
                 {"seed", 1},
                 {"output", dir / "run"},
                 {"data", {{"name", "pairs"}, {"file", dir / "copy.tsv"}}},
                 {"model",
                  {{"type", "seq2seq"},
                   {"embed", 8},
                   {"hidden", 24},
                   {"bidirectional", true},
                   {"attention", {{"type", "luong"}}}}},
                 {"train",
                  {{"optimizer", {{"type", "adam"}, {"lr", 0.02}}},
                   {"batch_size", 16},
                   {"steps", 300},
                   {"eval_every", 50},
                   {"log_every", 50}}}};
    runner::Experiment ex = runner::make_experiment(runner::parse_config(root, "x"));
    CHECK(ex.task->metric_names() ==
          Strings{"loss", "token_accuracy", "exact_match", "ser", "ter"});
    runner::RunOptions quiet;
    quiet.quiet = true;
    const runner::TrainResult r = runner::train(ex, quiet);
    INFO(r.summary.dump());
    CHECK(runner::metric_value(r.test, "ser") < 0.2);
    CHECK(runner::metric_value(r.test, "ter") < 0.1);
    // Greedy decoding is right exactly when the teacher-forced argmax is.
    CHECK(runner::metric_value(r.test, "ser") ==
          doctest::Approx(1 - runner::metric_value(r.test, "exact_match")));
  }

  // ---- CMUdict ------------------------------------------------------------------
  constexpr CmudictPhones kCmu = CmudictPhones::cmudict;

  TEST_CASE("CMUdict: entries with stress on and off, several pronunciations kept") {
    const std::string text =
        "MNCL\n"
        "(\"a\" dt (((ax) 0)))\n"
        "(\"a\" n (((ey) 1)))\n"
        "(\"Aardvark\" nil (((aa r d) 1) ((v aa r k) 2)))\n";
    const auto plain = parse_cmudict(text, "c.out", false, kCmu);
    REQUIRE(plain.size() == 3);
    CHECK(plain[0].src == "a");
    CHECK(plain[0].refs == Strings{"ah"});  // Festival's "ax" is CMUdict's unstressed ah
    CHECK(plain[2].src == "aardvark");
    CHECK(plain[2].refs == Strings{"aa r d v aa r k"});
    const auto stressed = parse_cmudict(text, "c.out", true, kCmu);
    CHECK(stressed[2].refs == Strings{"aa1 r d v aa2 r k"});
    CHECK(stressed[0].refs == Strings{"ah0"});
    const auto festival = parse_cmudict(text, "c.out", false, CmudictPhones::festival);
    CHECK(festival[0].refs == Strings{"ax"});
    CHECK(parse_cmudict(text, "c.out", true, CmudictPhones::festival)[0].refs ==
          Strings{"ax0"});
    const auto merged = merge_entries(plain);
    REQUIRE(merged.size() == 2);
    CHECK(merged[0].refs == Strings{"ah", "ey"});
  }

  TEST_CASE("CMUdict: pronunciations that differ only in ax / ah are one without stress") {
    const std::string text =
        "(\"the\" dt (((dh ax) 0)))\n"
        "(\"the\" dt (((dh ah) 1)))\n";
    CHECK(merge_entries(parse_cmudict(text, "c.out", false, kCmu))[0].refs == Strings{"dh ah"});
    CHECK(merge_entries(parse_cmudict(text, "c.out", false, CmudictPhones::festival))[0].refs ==
          Strings{"dh ax", "dh ah"});
    CHECK(merge_entries(parse_cmudict(text, "c.out", true, kCmu))[0].refs ==
          Strings{"dh ah0", "dh ah1"});
  }

  TEST_CASE("CMUdict: a malformed entry names the file and line") {
    auto err = [](const std::string& line) {
      return test::error_of(
          [&] { parse_cmudict("MNCL\n(\"ok\" nil (((ow k) 1)))\n" + line, "c.out", false, kCmu); });
    };
    CHECK(err("(\"bad\" nil (((b ae d) x)))") ==
          "c.out:3: the stress of syllable 1 is \"x\" (expected 0, 1 or 2)");
    CHECK(err("(\"bad\" nil (((b ae d) 1))") ==
          "c.out:3: expected ')' closing the entry at column 26, found the end of the line");
    CHECK(err("(bad nil (((b ae d) 1)))") ==
          "c.out:3: expected '\"' the quoted word at column 2, found 'b'");
    CHECK(err("(\"b d\" nil (((b) 1)))") ==
          "c.out:3: the word \"b d\" holds ' ' (expected letters, apostrophes, hyphens, periods)");
    CHECK(err("(\"bad\" nil ((() 1)))") == "c.out:3: syllable 1 has no phonemes");
    CHECK(err("(\"bad\" nil (((B) 1)))") == "c.out:3: phoneme \"B\" is not lower-case letters");
    CHECK(err("(\"bad\" nil ())") == "c.out:3: the entry has no syllables");
    CHECK(err("(\"bad\" nil (((b) 1))) x") ==
          "c.out:3: unexpected text after the entry at column 23");
    CHECK(err("(\"b\xe4\" nil (((b) 1)))") ==
          "c.out:3: invalid UTF-8 at byte 3 of the line (0xE4)");
  }

  TEST_CASE("g2p: a file it writes, splits disjoint by word, WER and PER named") {
    test::TempDir dir;
    std::string text = "MNCL\n";
    for (int k = 0; k < 40; ++k) {
      const std::string w = std::string(1, char('a' + k % 26)) + std::string(1, char('a' + k / 26));
      text += "(\"" + w + "\" nil (((" + std::string(1, w[0]) + " aa) 1) ((" + w[1] + ") 0)))\n";
      if (k % 10 == 0) text += "(\"" + w + "\" n (((ey) 1)))\n";
    }
    write_text(dir / "c.out", text);
    Made m = make({{"name", "g2p"}, {"file", dir / "c.out"}, {"valid", 0.1}, {"test", 0.1}});
    const Dataset& d = *m.dataset;
    CHECK(d.name() == "g2p");
    CHECK(d.size(Split::valid) == 4);
    CHECK(d.size(Split::test) == 4);
    CHECK(d.size(Split::train) == 32 + 4 - [&] {
      int n = 0;  // the words with two pronunciations outside train
      for (Split s : {Split::valid, Split::test})
        for (int64_t i = 0; i < d.size(s); ++i) n += d.target_texts(s, i).size() == 2;
      return n;
    }());
    CHECK(d.tgt_vocab()->level() == Vocab::Level::words);
    CHECK(d.tgt_vocab()->id("aa") != Vocab::unk);
    CHECK(d.metrics({})[0].first == "wer");
    CHECK(d.metrics({})[1].first == "per");
    CHECK(test::error_of([&] {
            make({{"name", "g2p"}, {"file", dir / "missing.out"}});
          }) == "g2p: missing file '" + dir / "missing.out" +
                    "' (the Debian package festlex-cmu provides it; tools/setup.sh installs it)");
  }
}

}  // namespace
}  // namespace qkv::data

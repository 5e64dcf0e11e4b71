// The generated and text data sets: vocabularies, determinism and seed
// dependence, disjoint splits, correct targets (dates parsed back by an
// independent parser, weekdays by Zeller's congruence), exact batch padding,
// config errors with JSON paths, text files on disk, and the TSV export.
#include <cctype>
#include <map>
#include <set>

#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/dataset.h"
#include "tools/data/dates.h"

namespace qkv::data {
namespace {

Made make(const std::string& json, uint64_t seed = 1) {
  return make_dataset(Json::parse(json), seed);
}

std::vector<std::string> sources(const Dataset& d, Split s) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < d.size(s); ++i) out.push_back(d.source_text(s, i));
  return out;
}

// Every split's sources and targets, for comparing two builds.
std::vector<std::string> all_text(const Dataset& d) {
  std::vector<std::string> out;
  for (Split s : {Split::train, Split::valid, Split::test}) {
    for (int64_t i = 0; i < d.size(s); ++i)
      out.push_back(d.source_text(s, i) + "\t" + d.target_text(s, i));
  }
  return out;
}

void check_disjoint(const Dataset& d) {
  std::set<std::string> seen;
  int64_t n = 0;
  for (Split s : {Split::train, Split::valid, Split::test}) {
    for (const auto& x : sources(d, s)) seen.insert(x), ++n;
  }
  CHECK(int64_t(seen.size()) == n);
}

// ---- an independent date parser -----------------------------------------------

const char* const kMonthNames[] = {"january",   "february", "march",    "april",
                                   "may",       "june",     "july",     "august",
                                   "september", "october",  "november", "december"};
const char* const kDayNames[] = {"sunday",   "monday", "tuesday", "wednesday",
                                 "thursday", "friday", "saturday"};

// Zeller's congruence, 0 = Sunday.
int zeller(int y, int m, int d) {
  if (m < 3) m += 12, y -= 1;
  const int h = (d + 13 * (m + 1) / 5 + y + y / 4 - y / 100 + y / 400) % 7;  // 0 = Saturday
  return (h + 6) % 7;
}

// alnum: the letter runs and digit runs of s; else its other characters, one by one.
std::vector<std::string> runs(const std::string& s, bool alnum) {
  auto kind = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isdigit(c) ? 1 : std::isalpha(c) ? 2 : 0;
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t j = i + 1;
    if (kind(s[i]) != 0) {
      while (j < s.size() && kind(s[j]) == kind(s[i])) ++j;
    }
    if ((kind(s[i]) != 0) == alnum) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int name_index(const char* const* names, int n, const std::string& word, bool abbrev) {
  for (int i = 0; i < n; ++i) {
    if (lower(word) == (abbrev ? std::string(names[i]).substr(0, 3) : std::string(names[i])))
      return i;
  }
  return -1;
}

// Parses `src` as format `fmt` (a name like "weekday, month d, yyyy"); returns
// the ISO date, or a description of what does not fit.
std::string parse_date(const std::string& fmt, const std::string& src) {
  if (runs(fmt, false) != runs(src, false)) return "punctuation differs";
  const auto fields = runs(fmt, true);
  const auto toks = runs(src, true);
  int y = -1, m = -1, d = -1, wd = -1;
  size_t k = 0;
  auto next = [&]() -> std::string { return k < toks.size() ? toks[k++] : std::string(); };
  auto number = [](const std::string& t, size_t min_w, size_t max_w) {
    if (t.empty() || t.size() < min_w || t.size() > max_w) return -1;
    for (char c : t) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    }
    return std::stoi(t);
  };
  for (const auto& f : fields) {
    if (f == "month" || f == "mon")
      m = name_index(kMonthNames, 12, next(), f == "mon") + 1;
    else if (f == "weekday" || f == "wkd")
      wd = name_index(kDayNames, 7, next(), f == "wkd");
    else if (f == "d")
      d = number(next(), 1, 2);
    else if (f == "dd")
      d = number(next(), 2, 2);
    else if (f == "m")
      m = number(next(), 1, 2);
    else if (f == "mm")
      m = number(next(), 2, 2);
    else if (f == "yyyy")
      y = number(next(), 4, 4);
    else if (f == "yy") {
      y = number(next(), 2, 2);
      y = y < 0 ? -1 : y >= 50 ? 1900 + y : 2000 + y;
    } else if (f == "dth") {
      d = number(next(), 1, 2);
      const std::string suffix = lower(next());
      const char* want = (d % 10 == 1 && d != 11)   ? "st"
                         : (d % 10 == 2 && d != 12) ? "nd"
                         : (d % 10 == 3 && d != 13) ? "rd"
                                                    : "th";
      if (suffix != want) return "wrong ordinal suffix " + suffix;
    } else if (f == "yyyymmdd") {
      const std::string t = next();
      if (number(t, 8, 8) < 0) return "not 8 digits";
      y = std::stoi(t.substr(0, 4)), m = std::stoi(t.substr(4, 2)), d = std::stoi(t.substr(6, 2));
    } else {
      return "unknown field " + f;
    }
  }
  if (k != toks.size()) return "extra tokens";
  if (y < 1950 || y > 2049 || m < 1 || m > 12 || d < 1 || d > 31) return "field out of range";
  if (wd >= 0 && wd != zeller(y, m, d)) return "wrong weekday";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

TEST_SUITE("tools/data") {
  // ---- vocab --------------------------------------------------------------------

  TEST_CASE("vocab: specials first, sorted tokens, encode and decode") {
    Vocab v({"b", "a", "c", "a", "<s>", ""}, Vocab::Level::chars);
    CHECK(v.size() == 7);  // 4 specials + a, b, c (the duplicate, "<s>" and "" dropped)
    CHECK(v.token(Vocab::pad) == "<pad>");
    CHECK(v.token(Vocab::bos) == "<s>");
    CHECK(v.token(Vocab::eos) == "</s>");
    CHECK(v.token(Vocab::unk) == "<unk>");
    CHECK(v.id("a") == 4);
    CHECK(v.id("c") == 6);
    CHECK(v.id("z") == Vocab::unk);
    CHECK(v.encode("cab") == std::vector<int32_t>{6, 4, 5});
    CHECK(v.encode("xa") == std::vector<int32_t>{Vocab::unk, 4});
    CHECK(v.decode({Vocab::bos, 6, Vocab::pad, 4, Vocab::eos, 5}) == "ca");
    CHECK(test::error_of([&] { v.token(7); }) == "Vocab::token: id 7 out of range [0,7)");

    Vocab w({"the", "cat", "sat"}, Vocab::Level::words);
    CHECK(w.split("  the\tcat \n sat ") == std::vector<std::string>{"the", "cat", "sat"});
    CHECK(w.decode(w.encode("the cat  sat")) == "the cat sat");
    CHECK(w.decode(w.encode("the dog")) == "the <unk>");
    CHECK(Vocab({"x", "y"}, Vocab::Level::chars).id("x") ==
          Vocab({"y", "x"}, Vocab::Level::chars).id("x"));
  }

  // ---- dates --------------------------------------------------------------------

  TEST_CASE("dates: calendar and weekdays against known dates and Zeller") {
    struct Known {
      CivilDate d;
      int weekday;  // 0 = Monday
    };
    for (const Known& k : {Known{{1994, 9, 27}, 1}, Known{{2000, 1, 1}, 5}, Known{{1969, 7, 20}, 6},
                           Known{{2024, 2, 29}, 3}, Known{{1950, 1, 1}, 6},
                           Known{{2049, 12, 31}, 4}, Known{{1970, 1, 1}, 3}}) {
      INFO(iso_date(k.d));
      CHECK(weekday_of(days_from_civil(k.d)) == k.weekday);
    }
    CHECK(days_from_civil({1970, 1, 1}) == 0);
    CHECK(days_from_civil({2000, 3, 1}) - days_from_civil({2000, 2, 28}) ==
          2);  // 2000 is a leap year
    CHECK(days_from_civil({1900, 3, 1}) - days_from_civil({1900, 2, 28}) == 1);  // 1900 is not
    // Every day of the range: civil <-> days round trip, and Zeller agrees.
    for (int64_t z = days_from_civil({1950, 1, 1}); z <= days_from_civil({2049, 12, 31}); ++z) {
      const CivilDate c = civil_from_days(z);
      REQUIRE(days_from_civil(c) == z);
      REQUIRE((weekday_of(z) + 1) % 7 == zeller(c.year, c.month, c.day));
    }
  }

  TEST_CASE("dates: the formats of the issue, written for 1994-09-27") {
    const int64_t z = days_from_civil({1994, 9, 27});
    std::map<std::string, std::string> got;
    const auto& names = date_format_names();
    for (size_t f = 0; f < names.size(); ++f)
      got[names[f]] = render_date(z, f, LetterCase::as_written);
    CHECK(got["month d, yyyy"] == "September 27, 1994");
    CHECK(got["d month yyyy"] == "27 September 1994");
    CHECK(got["mon d, yyyy"] == "Sep 27, 1994");
    CHECK(got["dd/mm/yy"] == "27/09/94");
    CHECK(got["mm/dd/yyyy"] == "09/27/1994");
    CHECK(got["yyyy-mm-dd"] == "1994-09-27");
    CHECK(got["wkd d mon yyyy"] == "Tue 27 Sep 1994");
    CHECK(got["m.d.yy"] == "9.27.94");
    CHECK(got["d.m.yyyy"] == "27.9.1994");
    CHECK(got["dth month yyyy"] == "27th September 1994");
    const auto idx = [&](const std::string& n) {
      return size_t(std::find(names.begin(), names.end(), n) - names.begin());
    };
    CHECK(render_date(z, idx("weekday, month d, yyyy"), LetterCase::lower) ==
          "tuesday, september 27, 1994");
    CHECK(render_date(z, idx("d mon yy"), LetterCase::lower) == "27 sep 94");
    CHECK(render_date(z, idx("d mon yy"), LetterCase::upper) == "27 SEP 94");
    CHECK(render_date(days_from_civil({2011, 3, 2}), idx("month dth, yyyy"),
                      LetterCase::as_written) == "March 2nd, 2011");
  }

  TEST_CASE("dates: every source has one reading across all formats and cases") {
    std::map<std::string, std::string> reading;
    int64_t conflicts = 0, n = 0;
    for (int year : {1950, 1994, 2005, 2049}) {
      for (int64_t z = days_from_civil({year, 1, 1}); z <= days_from_civil({year, 12, 31}); ++z) {
        const std::string iso = iso_date(civil_from_days(z));
        for (size_t f = 0; f < date_format_names().size(); ++f) {
          for (auto c : {LetterCase::as_written, LetterCase::lower, LetterCase::upper}) {
            auto [it, fresh] = reading.emplace(render_date(z, f, c), iso);
            conflicts += !fresh && it->second != iso;
            ++n;
          }
        }
      }
    }
    CHECK(n > 50000);
    CHECK(conflicts == 0);
  }

  TEST_CASE("dates: each format parses back to its target") {
    for (const auto& f : date_format_names()) {
      INFO("format ", f);
      Made m = make(
          R"({"name": "dates", "train": 60, "valid": 5, "test": 5, "formats": [")" + f + "\"]}", 3);
      for (Split s : {Split::train, Split::valid, Split::test}) {
        for (int64_t i = 0; i < m.dataset->size(s); ++i) {
          INFO("source ", m.dataset->source_text(s, i));
          CHECK(parse_date(f, m.dataset->source_text(s, i)) == m.dataset->target_text(s, i));
        }
      }
    }
  }

  TEST_CASE("dates: defaults, determinism, seed dependence, disjoint splits") {
    Made a = make(R"({"name": "dates"})", 7);
    const Dataset& d = *a.dataset;
    CHECK(d.name() == "dates");
    CHECK(d.task() == Task::seq2seq);
    CHECK(d.size(Split::train) == 20000);
    CHECK(d.size(Split::valid) == 1000);
    CHECK(d.size(Split::test) == 1000);
    CHECK(a.resolved["train"] == 20000);
    CHECK(a.resolved["formats"].size() == date_format_names().size());
    CHECK(d.max_target_len() == 11);  // "YYYY-MM-DD" + eos
    check_disjoint(d);
    CHECK(all_text(d) == all_text(*make(R"({"name": "dates"})", 7).dataset));
    CHECK(all_text(d) != all_text(*make(R"({"name": "dates"})", 8).dataset));
    // Test and valid do not move when only train grows.
    Made small = make(R"({"name": "dates", "train": 100})", 7);
    CHECK(sources(*small.dataset, Split::test) == sources(d, Split::test));
    CHECK(sources(*small.dataset, Split::valid) == sources(d, Split::valid));
    // Every format appears (as its punctuation pattern tells), in all cases.
    int upper = 0, lower_case = 0;
    for (const auto& s : sources(d, Split::train)) {
      upper += s.find("SEP") != std::string::npos;
      lower_case += s.find("sep") != std::string::npos;
    }
    CHECK(upper > 50);
    CHECK(lower_case > 50);
  }

  // ---- addition -------------------------------------------------------------------

  TEST_CASE("addition: answers, reversal and the distinct-problem cap") {
    Made m = make(R"({"name": "addition", "train": 500, "valid": 50, "test": 50, "digits": 3})");
    const Dataset& d = *m.dataset;
    check_disjoint(d);
    for (int64_t i = 0; i < d.size(Split::train); ++i) {
      const std::string s = d.source_text(Split::train, i);
      const auto plus = s.find('+');
      REQUIRE(plus != std::string::npos);
      const long a = std::stol(s.substr(0, plus)), b = std::stol(s.substr(plus + 1));
      CHECK(a < 1000);
      CHECK(b < 1000);
      CHECK(d.target_text(Split::train, i) == std::to_string(a + b));
    }
    CHECK(m.resolved["reverse_source"] == false);

    Made r = make(R"({"name": "addition", "train": 500, "valid": 50, "test": 50, "digits": 3,)"
                  R"( "reverse_source": true})");
    CHECK(all_text(*r.dataset) == all_text(d));  // same problems; only the encoding differs
    const std::string s = d.source_text(Split::train, 0);
    Batch b = r.dataset->batch(Split::train, {0});
    std::vector<int32_t> ids(b.src.begin(), b.src.begin() + b.src_len.data()[0]);
    CHECK(r.dataset->src_vocab()->decode(ids) == std::string(s.rbegin(), s.rend()));
    Batch in = r.dataset->encode_input("12+345");
    CHECK(r.dataset->src_vocab()->decode(in.src.to_vector()) == "543+21");
    CHECK(test::error_of([&] { r.dataset->encode_input("1x2"); }) ==
          "addition input: character 'x' at 1 is not in the source vocabulary");

    // 2 digits: 10^4 distinct problems, every one of them usable.
    Made all = make(R"({"name": "addition", "train": 9000, "valid": 500, "test": 500})");
    check_disjoint(*all.dataset);
    CHECK(test::error_of([] {
            make(R"({"name": "addition", "train": 9000, "valid": 1000, "test": 1000})");
          }) ==
          "data (addition, digits 2): train + valid + test = 11000 exceeds the 10000 distinct "
          "examples "
          "this configuration has");
  }

  // ---- sequence -------------------------------------------------------------------

  TEST_CASE("sequence: copy, reverse and sort targets; lengths and symbols") {
    for (const char* task : {"copy", "reverse", "sort"}) {
      INFO(task);
      Made m = make(
          std::string(R"({"name": "sequence", "train": 300, "valid": 20, "test": 20, "task": ")") +
          task + R"(", "min_len": 30, "max_len": 60, "symbols": 10})");
      const Dataset& d = *m.dataset;
      check_disjoint(d);
      CHECK(d.src_vocab()->size() == 14);
      int64_t longest = 0;
      for (int64_t i = 0; i < d.size(Split::train); ++i) {
        const std::string s = d.source_text(Split::train, i), t = d.target_text(Split::train, i);
        CHECK(s.size() >= 30);
        CHECK(s.size() <= 60);
        longest = std::max<int64_t>(longest, int64_t(t.size()));
        for (char c : s) CHECK((c >= 'a' && c <= 'j'));
        std::string want = s;
        if (std::string(task) == "reverse") std::reverse(want.begin(), want.end());
        if (std::string(task) == "sort") std::sort(want.begin(), want.end());
        CHECK(t == want);
      }
      CHECK(d.max_target_len() >= longest + 1);
      CHECK(d.max_target_len() <= 61);
    }
    // A space of 2 + 4 + 8 = 14 strings: enumerated, all used, then too few.
    Made tiny = make(R"({"name": "sequence", "train": 10, "valid": 2, "test": 2,)"
                     R"( "min_len": 1, "max_len": 3, "symbols": 2})");
    check_disjoint(*tiny.dataset);
    CHECK(test::error_of([] {
            make(R"({"name": "sequence", "train": 11, "valid": 2, "test": 2,)"
                 R"( "min_len": 1, "max_len": 3, "symbols": 2})");
          }).find("exceeds the 14 distinct examples") != std::string::npos);
  }

  // ---- batches --------------------------------------------------------------------

  TEST_CASE("batches: padding, lengths, bos and eos exactly") {
    Made m = make(R"({"name": "sequence", "task": "reverse", "train": 50, "valid": 5, "test": 5,)"
                  R"( "min_len": 2, "max_len": 6})");
    const Dataset& d = *m.dataset;
    const Vocab& sv = *d.src_vocab();
    const Vocab& tv = *d.tgt_vocab();
    std::vector<int64_t> idx = {3, 0, 7, 7};
    Batch b = d.batch(Split::train, idx);
    const int64_t B = 4;
    int64_t S = 0, T = 0;
    for (int64_t i : idx) {
      S = std::max<int64_t>(S, int64_t(d.source_text(Split::train, i).size()));
      T = std::max<int64_t>(T, int64_t(d.target_text(Split::train, i).size()) + 1);
    }
    CHECK(b.size == B);
    REQUIRE(b.src.shape() == Shape{B, S});
    REQUIRE(b.src_len.shape() == Shape{B});
    REQUIRE(b.tgt_in.shape() == Shape{B, T});
    REQUIRE(b.tgt_out.shape() == Shape{B, T});
    for (int64_t r = 0; r < B; ++r) {
      const std::string src = d.source_text(Split::train, idx[size_t(r)]);
      const std::string tgt = d.target_text(Split::train, idx[size_t(r)]);
      CHECK(b.src_len.data()[r] == int32_t(src.size()));
      for (int64_t s = 0; s < S; ++s) {
        const int32_t want = s < int64_t(src.size()) ? sv.id(src.substr(size_t(s), 1)) : Vocab::pad;
        CHECK(b.src.data()[r * S + s] == want);
      }
      const int64_t n = int64_t(tgt.size());
      for (int64_t t = 0; t < T; ++t) {
        const int32_t in = t == 0   ? Vocab::bos
                           : t <= n ? tv.id(tgt.substr(size_t(t - 1), 1))
                                    : Vocab::pad;
        const int32_t out = t < n    ? tv.id(tgt.substr(size_t(t), 1))
                            : t == n ? Vocab::eos
                                     : Vocab::pad;
        CHECK(b.tgt_in.data()[r * T + t] == in);
        CHECK(b.tgt_out.data()[r * T + t] == out);
      }
    }
    CHECK(test::error_of([&] { d.batch(Split::valid, {5}); }) ==
          "sequence: valid example 5 out of range [0,5)");
    Batch one = d.encode_input("abc");
    CHECK(one.src.shape() == Shape{1, 3});
    CHECK(one.src_len.data()[0] == 3);
  }

  // ---- config errors --------------------------------------------------------------

  TEST_CASE("config errors name the JSON path") {
    CHECK(test::error_of([] { make(R"({"name": "dates", "train": 0})"); }) ==
          "data.train: expected an integer >= 1, got 0");
    CHECK(test::error_of([] {
            make(R"({"name": "dates", "trian": 10})");
          }).rfind("data.trian: unknown key", 0) == 0);
    CHECK(test::error_of([] { make(R"({"name": "datez"})"); }) ==
          "data.name: expected one of addition, dates, fashion-mnist, g2p, language-id, pairs, "
          "sequence, "
          "text-classification, text-lm, "
          "got \"datez\"");
    CHECK(test::error_of([] { make(R"({"train": 5})"); }) == "data.name: missing (required)");
    CHECK(test::error_of([] {
            make(R"({"name": "dates", "formats": ["yyyy-mm-dd", "dd.mm.yy"]})");
          }).rfind("data.formats[1]: expected one of", 0) == 0);
    CHECK(test::error_of([] { make(R"({"name": "dates", "formats": []})"); }) ==
          "data.formats: expected a non-empty list of format names, got []");
    CHECK(test::error_of([] { make(R"({"name": "addition", "digits": 12})"); }) ==
          "data.digits: expected an integer in [1, 9], got 12");
    CHECK(test::error_of([] { make(R"({"name": "sequence", "min_len": 8, "max_len": 4})"); }) ==
          "data.max_len: expected an integer >= min_len (8), got 4");
    CHECK(test::error_of([] { make(R"({"name": "sequence", "task": "shuffle"})"); }) ==
          "data.task: expected one of copy, reverse, sort, got \"shuffle\"");
    CHECK(test::error_of([] { make(R"({"name": "text-classification"})"); }) ==
          "data.dir: give either \"dir\" (a file or folder per class) or \"file\" (label<TAB>text "
          "lines)");
    CHECK(test::error_of([] { make(R"({"name": "fashion-mnist", "valid": 2.5})"); }) ==
          "data.valid: expected a fraction in (0,1) or a whole count >= 1, got 2.5");
    CHECK(test::error_of([] { make(R"({"name": "text-lm"})"); }) ==
          "data.files: give either \"files\" (a list of text files) or \"dir\" (a folder of them)");
    CHECK(test::error_of([] {
            make_dataset(Json::parse(R"({"name": "dates", "test": -1})"), 1, "experiment.data");
          }) == "experiment.data.test: expected an integer >= 1, got -1");
  }

  // ---- text classification ----------------------------------------------------------

  TEST_CASE("text-classification: one file per class") {
    test::TempDir dir;
    std::string pos, neg;
    for (int i = 0; i < 20; ++i) {
      pos += "Good  Film number " + std::to_string(i) + " GREAT\n\n";
      neg += "bad film " + std::to_string(i + 100) + " awful\n";
    }
    test::write_text(dir / "pos.txt", pos);
    test::write_text(dir / "neg.txt", neg);
    const std::string cfg = R"({"name": "text-classification", "dir": ")" + dir.path +
                            R"(", "valid": 0.1, "test": 0.2, "max_len": 4, "min_freq": 2})";
    Made m = make(cfg, 5);
    const Dataset& d = *m.dataset;
    CHECK(d.task() == Task::text_classification);
    CHECK(d.class_names() == std::vector<std::string>{"neg", "pos"});
    CHECK(d.size(Split::valid) == 4);  // 2 per class
    CHECK(d.size(Split::test) == 8);
    CHECK(d.size(Split::train) == 28);
    check_disjoint(d);
    CHECK(all_text(d) == all_text(*make(cfg, 5).dataset));
    CHECK(all_text(d) != all_text(*make(cfg, 6).dataset));
    for (Split s : {Split::train, Split::valid, Split::test}) {
      for (int64_t i = 0; i < d.size(s); ++i) {
        const std::string t = d.source_text(s, i);
        CHECK(t.rfind(d.target_text(s, i) == "pos" ? "good film number " : "bad film ", 0) == 0);
        CHECK(std::count(t.begin(), t.end(), ' ') <= 3);  // max_len 4 words
        Batch b = d.batch(s, {i});
        CHECK(b.labels.data()[0] == (d.target_text(s, i) == "pos" ? 1 : 0));
      }
    }
    // min_freq 2: each example's number occurs once, so it is unknown.
    const Vocab& v = *d.src_vocab();
    CHECK(v.id("film") != Vocab::unk);
    CHECK(v.id("7") == Vocab::unk);
    Batch in = d.encode_input("GOOD film zebra");
    CHECK(v.decode(in.src.to_vector()) == "good film <unk>");
  }

  TEST_CASE("text-classification: one folder per class, chars, and bad layouts") {
    test::TempDir dir;
    for (int i = 0; i < 5; ++i) {
      test::write_text(dir / ("spam/m" + std::to_string(i)), "WIN money\nnow " + std::to_string(i));
      test::write_text(dir / ("ham/m" + std::to_string(i)), "lunch at " + std::to_string(i));
    }
    Made m = make(R"({"name": "text-classification", "tokens": "chars", "valid": 0.2, "test": 0.2,)"
                  R"( "dir": ")" +
                  dir.path + "\"}");
    const Dataset& d = *m.dataset;
    CHECK(d.class_names() == std::vector<std::string>{"ham", "spam"});
    CHECK(d.size(Split::train) == 6);
    CHECK(d.src_vocab()->level() == Vocab::Level::chars);
    for (int64_t i = 0; i < d.size(Split::train); ++i) {
      const std::string t = d.source_text(Split::train, i);
      CHECK((t.rfind("WIN money now ", 0) == 0 ||
             t.rfind("lunch at ", 0) == 0));  // case kept, whitespace folded
    }
    test::write_text(dir / "stray.txt", "x\n");
    CHECK(test::error_of([&] {
            make(R"({"name": "text-classification", "dir": ")" + dir.path + "\"}");
          }) == "text-classification: '" + dir.path +
                    "' mixes files and folders ('stray.txt'): use one file per class or "
                    "one folder per class");
    CHECK(test::error_of([&] {
            make(R"({"name": "text-classification", "dir": ")" + dir.path + "/nope\"}");
          }) == "text-classification: '" + dir.path + "/nope' is not a directory");
  }

  // ---- language model -------------------------------------------------------------

  TEST_CASE("text-lm: contiguous chunks and shifted windows") {
    test::TempDir dir;
    std::string text;
    for (int i = 0; i < 100; ++i) text += "line " + std::to_string(i) + " of the text.\n";
    test::write_text(dir / "a.txt", text.substr(0, 700));
    test::write_text(dir / "b.txt", text.substr(700));
    Made m = make(R"({"name": "text-lm", "seq_len": 16, "valid": 0.1, "test": 0.1, "dir": ")" +
                  dir.path + "\"}");
    const Dataset& d = *m.dataset;
    CHECK(d.task() == Task::language_model);
    const int64_t N = int64_t(text.size());  // both parts end with a newline: nothing added
    const int64_t n_test = std::llround(0.1 * double(N)), n_valid = n_test;
    CHECK(d.size(Split::train) == (N - n_test - n_valid - 1) / 16);
    CHECK(d.size(Split::valid) == (n_valid - 1) / 16);
    CHECK(d.size(Split::test) == (n_test - 1) / 16);
    CHECK(d.source_text(Split::train, 0) == text.substr(0, 16));
    CHECK(d.source_text(Split::train, 2) == text.substr(32, 16));
    CHECK(d.target_text(Split::train, 2) == text.substr(33, 16));
    CHECK(d.source_text(Split::test, 0) == text.substr(size_t(N - n_test), 16));
    Batch b = d.batch(Split::valid, {1, 0});
    REQUIRE(b.src.shape() == Shape{2, 16});
    REQUIRE(b.tgt_out.shape() == Shape{2, 16});
    const Vocab& v = *d.src_vocab();
    CHECK(v.decode(std::vector<int32_t>(b.src.begin(), b.src.begin() + 16)) ==
          d.source_text(Split::valid, 1));
    CHECK(v.decode(std::vector<int32_t>(b.tgt_out.begin(), b.tgt_out.begin() + 16)) ==
          d.target_text(Split::valid, 1));
    CHECK(b.src_len.to_vector() == std::vector<int32_t>{16, 16});
    CHECK(m.resolved["dir"] == dir.path);

    CHECK(test::error_of([&] {
            make(R"({"name": "text-lm", "seq_len": 200, "files": [")" + dir.path + "/a.txt\"]}");
          }) ==
          "text-lm: the valid split has 35 characters, fewer than seq_len + 1 = 201 (701 "
          "characters in all): "
          "use more text, a smaller seq_len or a larger fraction");
    CHECK(test::error_of([&] {
            make(R"({"name": "text-lm", "files": [")" + dir.path + "/zz.txt\"]}");
          }) == "text-lm: cannot read '" + dir.path + "/zz.txt'");
  }

  // ---- export -----------------------------------------------------------------------

  TEST_CASE("export_tsv writes what the model reads") {
    test::TempDir dir;
    Made m =
        make(R"({"name": "addition", "train": 30, "valid": 3, "test": 4, "reverse_source": true})");
    export_tsv(*m.dataset, Split::test, dir / "test.tsv");
    std::istringstream in(test::read_text(dir / "test.tsv"));
    int64_t n = 0;
    for (std::string line; std::getline(in, line); ++n) {
      const std::string s = m.dataset->source_text(Split::test, n);
      CHECK(line ==
            std::string(s.rbegin(), s.rend()) + "\t" + m.dataset->target_text(Split::test, n));
    }
    CHECK(n == 4);
  }
}

}  // namespace
}  // namespace qkv::data

// Dates: calendar arithmetic (Howard Hinnant's days <-> civil algorithms), the
// table of formats, and the generator that draws (date, format, case) triples.
#include "tools/data/dates.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "engine/error.h"
#include "tools/data/registry.h"

namespace qkv::data {

// ---- calendar ---------------------------------------------------------------

int64_t days_from_civil(const CivilDate& d) {
  const int64_t y = d.year - (d.month <= 2);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                                   // [0, 399]
  const int64_t doy = (153 * (d.month + (d.month > 2 ? -3 : 9)) + 2) / 5 + d.day - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  // [0, 146096]
  return era * 146097 + doe - 719468;
}

CivilDate civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  CivilDate c;
  c.day = int(doy - (153 * mp + 2) / 5 + 1);
  c.month = int(mp < 10 ? mp + 3 : mp - 9);
  c.year = int(yoe + era * 400 + (c.month <= 2));
  return c;
}

int weekday_of(int64_t days) {
  // 1970-01-01 was a Thursday (3 when Monday is 0).
  return int(((days + 3) % 7 + 7) % 7);
}

std::string iso_date(const CivilDate& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

// ---- formats ----------------------------------------------------------------

namespace {

const char* const kMonths[] = {"January",   "February", "March",    "April",
                               "May",       "June",     "July",     "August",
                               "September", "October",  "November", "December"};
const char* const kWeekdays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                 "Friday", "Saturday", "Sunday"};

std::string num(int x, int width) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%0*d", width, x);
  return buf;
}
std::string ordinal(int d) {
  const char* suffix = (d % 10 == 1 && d != 11)   ? "st"
                       : (d % 10 == 2 && d != 12) ? "nd"
                       : (d % 10 == 3 && d != 13) ? "rd"
                                                  : "th";
  return std::to_string(d) + suffix;
}

struct Fields {
  CivilDate c;
  std::string month, mon, weekday, wkd, d, dd, m, mm, yy, yyyy, dth;
};

Fields fields_of(int64_t days) {
  Fields f;
  f.c = civil_from_days(days);
  f.month = kMonths[f.c.month - 1];
  f.mon = f.month.substr(0, 3);
  f.weekday = kWeekdays[weekday_of(days)];
  f.wkd = f.weekday.substr(0, 3);
  f.d = std::to_string(f.c.day);
  f.dd = num(f.c.day, 2);
  f.m = std::to_string(f.c.month);
  f.mm = num(f.c.month, 2);
  f.yy = num(f.c.year % 100, 2);
  f.yyyy = num(f.c.year, 4);
  f.dth = ordinal(f.c.day);
  return f;
}

struct Format {
  const char* name;
  std::string (*render)(const Fields&);
};

// The formats: a name spelling the pattern, and how to write it (the comment
// shows 1994-09-27, a Tuesday).
const Format kFormats[] = {
    // September 27, 1994
    {"month d, yyyy", [](const Fields& f) { return f.month + " " + f.d + ", " + f.yyyy; }},
    // 27 September 1994
    {"d month yyyy", [](const Fields& f) { return f.d + " " + f.month + " " + f.yyyy; }},
    // Sep 27, 1994
    {"mon d, yyyy", [](const Fields& f) { return f.mon + " " + f.d + ", " + f.yyyy; }},
    // 27 Sep 1994
    {"d mon yyyy", [](const Fields& f) { return f.d + " " + f.mon + " " + f.yyyy; }},
    // 27 Sep 94
    {"d mon yy", [](const Fields& f) { return f.d + " " + f.mon + " " + f.yy; }},
    // Tue 27 Sep 1994
    {"wkd d mon yyyy",
     [](const Fields& f) { return f.wkd + " " + f.d + " " + f.mon + " " + f.yyyy; }},
    // Tuesday, September 27, 1994
    {"weekday, month d, yyyy",
     [](const Fields& f) { return f.weekday + ", " + f.month + " " + f.d + ", " + f.yyyy; }},
    // Tuesday 27 September 1994
    {"weekday d month yyyy",
     [](const Fields& f) { return f.weekday + " " + f.d + " " + f.month + " " + f.yyyy; }},
    // 27th September 1994
    {"dth month yyyy", [](const Fields& f) { return f.dth + " " + f.month + " " + f.yyyy; }},
    // September 27th, 1994
    {"month dth, yyyy", [](const Fields& f) { return f.month + " " + f.dth + ", " + f.yyyy; }},
    // 27/09/94
    {"dd/mm/yy", [](const Fields& f) { return f.dd + "/" + f.mm + "/" + f.yy; }},
    // 09/27/1994
    {"mm/dd/yyyy", [](const Fields& f) { return f.mm + "/" + f.dd + "/" + f.yyyy; }},
    // 27-09-1994
    {"dd-mm-yyyy", [](const Fields& f) { return f.dd + "-" + f.mm + "-" + f.yyyy; }},
    // 1994-09-27
    {"yyyy-mm-dd", [](const Fields& f) { return f.yyyy + "-" + f.mm + "-" + f.dd; }},
    // 9.27.94
    {"m.d.yy", [](const Fields& f) { return f.m + "." + f.d + "." + f.yy; }},
    // 27.9.1994
    {"d.m.yyyy", [](const Fields& f) { return f.d + "." + f.m + "." + f.yyyy; }},
    // 19940927
    {"yyyymmdd", [](const Fields& f) { return f.yyyy + f.mm + f.dd; }},
};
constexpr size_t kFormatCount = sizeof(kFormats) / sizeof(kFormats[0]);

const int64_t kFirstDay = days_from_civil({1950, 1, 1});
const int64_t kLastDay = days_from_civil({2049, 12, 31});

bool has_letters(size_t format) {
  std::string s = render_date(0, format, LetterCase::as_written);
  return std::any_of(s.begin(), s.end(), [](unsigned char ch) { return std::isalpha(ch); });
}

// Every character any selected format can write: all of year 2000's dates
// (every month, weekday and ordinal suffix) in every case, and all digits.
std::string source_alphabet(const std::vector<size_t>& formats) {
  bool seen[256] = {};
  for (const char* p = "0123456789"; *p; ++p) seen[static_cast<unsigned char>(*p)] = true;
  const int64_t first = days_from_civil({2000, 1, 1});
  for (size_t f : formats) {
    for (int64_t d = first; d < first + 366; ++d) {
      for (LetterCase c : {LetterCase::as_written, LetterCase::lower, LetterCase::upper}) {
        for (unsigned char ch : render_date(d, f, c)) seen[ch] = true;
      }
    }
  }
  std::string out;
  for (int ch = 0; ch < 256; ++ch) {
    if (seen[ch]) out += char(ch);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& date_format_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Format& f : kFormats) n.push_back(f.name);
    return n;
  }();
  return names;
}

std::string render_date(int64_t days, size_t format, LetterCase c) {
  check(format < kFormatCount, "render_date: format ", format, " out of range [0,", kFormatCount,
        ")");
  std::string s = kFormats[format].render(fields_of(days));
  if (c == LetterCase::lower) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  } else if (c == LetterCase::upper) {
    for (char& ch : s) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  }
  return s;
}

// ---- the data set -----------------------------------------------------------

DatesOptions dates_options(JsonReader& r) {
  DatesOptions o;
  o.n = read_split_sizes(r, o.n);
  const Json formats = r.get_raw("formats");
  const std::string path = r.path_of("formats");
  if (!formats.is_null()) {
    check(formats.is_array() && !formats.empty(), path,
          ": expected a non-empty list of format names, got ", formats.dump());
    for (size_t i = 0; i < formats.size(); ++i) {
      const Json& f = formats[i];
      const auto& names = date_format_names();
      const bool ok = f.is_string() &&
                      std::find(names.begin(), names.end(), f.get<std::string>()) != names.end();
      if (!ok) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
        fail(path, "[", i, "]: expected one of ", list, ", got ", f.dump());
      }
      o.formats.push_back(f.get<std::string>());
    }
  }
  Json resolved = Json::array();
  for (const auto& f : o.formats.empty() ? date_format_names() : o.formats) resolved.push_back(f);
  o.extra["formats"] = resolved;  // get_raw records no resolved value
  return o;
}

std::unique_ptr<Dataset> make_dates(const DatesOptions& o, uint64_t seed) {
  std::vector<size_t> formats;
  for (const auto& name : o.formats.empty() ? date_format_names() : o.formats) {
    const auto& names = date_format_names();
    formats.push_back(size_t(std::find(names.begin(), names.end(), name) - names.begin()));
  }
  std::sort(formats.begin(), formats.end());
  formats.erase(std::unique(formats.begin(), formats.end()), formats.end());
  std::vector<bool> letters;
  for (size_t f : formats) letters.push_back(has_letters(f));

  Generator gen = data_generator(seed, "dates");
  auto draw = [&](Generator& g) {
    const int64_t days = kFirstDay + g.next_below(kLastDay - kFirstDay + 1);
    const size_t k = size_t(g.next_below(int64_t(formats.size())));
    const auto c = letters[k] ? LetterCase(g.next_below(3)) : LetterCase::as_written;
    return Pair{render_date(days, formats[k], c), iso_date(civil_from_days(days))};
  };
  Splits splits = draw_distinct(o.n, gen, draw, "data (dates)");
  return std::make_unique<PairDataset>("dates", std::move(splits), source_alphabet(formats),
                                       "-0123456789", /*reverse_source=*/false);
}

namespace {
const DatasetRegistrar registered("dates", [](JsonReader& r, uint64_t seed) {
  const DatesOptions o = dates_options(r);
  return DatasetRecipe{[o, seed] { return make_dates(o, seed); }, o.extra};
});
}  // namespace

}  // namespace qkv::data

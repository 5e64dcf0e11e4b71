// The dates data set: human-written dates ("September 27, 1994", "27/09/94",
// "Tue 27 Sep 1994", ...) to ISO "1994-09-27", character level, dates uniform
// over 1950-01-01..2049-12-31, weekdays computed from the date.
//
// Every format has one fixed field order, and no two formats produce the same
// shape of string, so a source always has exactly one reading:
//   "/" separator: dd/mm/yy (day first, 2-digit year), mm/dd/yyyy (month first, 4-digit year)
//   "-" separator: dd-mm-yyyy, and yyyy-mm-dd (year first: the identity)
//   "." separator: m.d.yy (month first), d.m.yyyy (day first)
// (so there is no dd/mm/yyyy: it would collide with mm/dd/yyyy). Two-digit years
// read 50..99 as 19xx and 00..49 as 20xx, which covers the range exactly.
// Formats with words come as written (Title case), lower case or upper case.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tools/data/pairs.h"

namespace qkv::data {

struct DatesOptions {
  SplitSizes n{20000, 1000, 1000};   // train / valid / test examples
  std::vector<std::string> formats;  // names from date_format_names(); empty: all
  Json extra = Json::object();       // resolved values JsonReader does not record ("formats")
};
// Reads "train", "valid", "test", "formats" (the caller reads "name" and finishes).
DatesOptions dates_options(JsonReader& r);
std::unique_ptr<Dataset> make_dates(const DatesOptions& o, uint64_t seed);

// ---- calendar (exposed for tests) -------------------------------------------
struct CivilDate {
  int year = 1970, month = 1, day = 1;  // month 1..12, day 1..31
};
int64_t days_from_civil(const CivilDate& d);  // days since 1970-01-01 (proleptic Gregorian)
CivilDate civil_from_days(int64_t days);
int weekday_of(int64_t days);              // 0 = Monday .. 6 = Sunday
std::string iso_date(const CivilDate& d);  // "1994-09-27"

enum class LetterCase { as_written, lower, upper };
// Format names, in a fixed order ("month d, yyyy", "dd/mm/yy", ...).
const std::vector<std::string>& date_format_names();
// Date `days` written in format number `format` (an index into date_format_names()).
std::string render_date(int64_t days, size_t format, LetterCase c);

}  // namespace qkv::data

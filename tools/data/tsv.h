// Tab-separated text, the format users bring their own data in and `qkv data`
// exports to: one example per line, fields separated by one tab, with tab,
// newline and backslash inside a field escaped as \t, \n, \\. Errors name the
// file and line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qkv::data {

std::string tsv_escape(std::string_view field);
// The inverse of tsv_escape; Error "WHERE: ..." for a backslash before
// anything but t, n or backslash.
std::string tsv_unescape(std::string_view field, std::string_view where);

struct TsvRow {
  int64_t line = 0;                 // 1-based line number in the file
  std::vector<std::string> fields;  // unescaped
};
// The rows of text (the contents of file): blank lines are skipped, a last
// line may lack its newline, a "\r\n" ending is accepted. Every other line
// must be valid UTF-8 and hold exactly columns.size() non-empty fields;
// otherwise Error "FILE:LINE: expected label<TAB>text (2 fields), found 1"
// (columns names the fields for that message).
std::vector<TsvRow> read_tsv(std::string_view text, const std::string& file,
                             const std::vector<std::string>& columns);

// The whole file; Error naming the file (and `what` reads it) if it cannot be read.
std::string read_file_bytes(const std::string& path, std::string_view what);

}  // namespace qkv::data

// TSV reading and writing with escapes, line by line, with file:line errors.
#include "tools/data/tsv.h"

#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "tools/data/utf8.h"

namespace qkv::data {

std::string tsv_escape(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (char c : field) {
    if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\\')
      out += "\\\\";
    else
      out += c;
  }
  return out;
}

std::string tsv_unescape(std::string_view field, std::string_view where) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out += field[i];
      continue;
    }
    const char e = i + 1 < field.size() ? field[i + 1] : '\0';
    check(e == 't' || e == 'n' || e == '\\', where, ": a backslash must start \\t, \\n or \\\\ ",
          "(escapes of tab, newline, backslash)");
    out += e == 't' ? '\t' : e == 'n' ? '\n' : '\\';
    ++i;
  }
  return out;
}

std::vector<TsvRow> read_tsv(std::string_view text, const std::string& file,
                             const std::vector<std::string>& columns) {
  std::string layout;
  for (const auto& c : columns) layout += (layout.empty() ? "" : "<TAB>") + c;
  std::vector<TsvRow> rows;
  int64_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
    const std::string where = file + ":" + std::to_string(line);
    const size_t bad = utf8_invalid_at(l);
    check(bad == std::string_view::npos, where, ": invalid UTF-8 at byte ", bad, " of the line");
    TsvRow row{line, {}};
    for (size_t a = 0;;) {
      const size_t b = l.find('\t', a);
      row.fields.push_back(tsv_unescape(l.substr(a, b == l.npos ? l.npos : b - a), where));
      if (b == l.npos) break;
      a = b + 1;
    }
    check(row.fields.size() == columns.size(), where, ": expected ", layout, " (", columns.size(),
          " fields), found ", row.fields.size());
    for (size_t k = 0; k < columns.size(); ++k)
      check(!row.fields[k].empty(), where, ": the ", columns[k], " is empty");
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string read_file_bytes(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), what, ": cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  check(!in.bad(), what, ": error reading '", path, "'");
  return s.str();
}

}  // namespace qkv::data

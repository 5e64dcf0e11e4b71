// Strict UTF-8 decoding (RFC 3629): the byte ranges of each lead byte's
// second byte exclude overlong forms, surrogates and code points > U+10FFFF.
#include "tools/data/utf8.h"

#include <cstdio>

#include "engine/error.h"

namespace qkv::data {
namespace {

bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", unsigned(c));
  return buf;
}

}  // namespace

size_t utf8_sequence_length(std::string_view text, size_t i) {
  if (i >= text.size()) return 0;
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (in(c, 0xC2, 0xDF))
    n = 2;
  else if (c == 0xE0)
    n = 3, lo = 0xA0;  // not overlong
  else if (c == 0xED)
    n = 3, hi = 0x9F;  // no surrogates
  else if (in(c, 0xE1, 0xEF))
    n = 3;
  else if (c == 0xF0)
    n = 4, lo = 0x90;  // not overlong
  else if (c == 0xF4)
    n = 4, hi = 0x8F;  // <= U+10FFFF
  else if (in(c, 0xF1, 0xF3))
    n = 4;
  else
    return 0;  // 0x80..0xC1 (continuation, overlong lead), 0xF5..0xFF
  if (i + n > text.size()) return 0;
  if (!in(static_cast<unsigned char>(text[i + 1]), lo, hi)) return 0;
  for (size_t k = 2; k < n; ++k)
    if (!in(static_cast<unsigned char>(text[i + k]), 0x80, 0xBF)) return 0;
  return n;
}

size_t utf8_invalid_at(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence_length(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::vector<std::string> utf8_split(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence_length(text, i);
    if (n == 0)
      fail(what, ": invalid UTF-8 at byte ", i, " (", hex_byte(static_cast<unsigned char>(text[i])),
           ")");
    out.emplace_back(text.substr(i, n));
    i += n;
  }
  return out;
}

size_t utf8_length(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c >> 6) != 2;  // every byte but continuation bytes
  return n;
}

void utf8_check_lines(std::string_view text, std::string_view file) {
  const size_t bad = utf8_invalid_at(text);
  if (bad == std::string_view::npos) return;
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < bad; ++i) {
    if (text[i] == '\n') ++line, line_start = i + 1;
  }
  fail(file, ":", line, ": invalid UTF-8 at byte ", bad - line_start, " of the line (",
       hex_byte(static_cast<unsigned char>(text[bad])), ")");
}

}  // namespace qkv::data

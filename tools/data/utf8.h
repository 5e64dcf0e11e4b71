// UTF-8 for the data sets: text split into code points (so "ä", "ß", "é" are
// one token each), with a strict validity check (no overlong forms, no
// surrogates, nothing above U+10FFFF, no truncated sequence). Errors name what
// was read and where: the byte offset, or the file and line.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace qkv::data {

// Length of the valid UTF-8 sequence starting at text[i] (1..4), 0 if invalid.
size_t utf8_sequence_length(std::string_view text, size_t i);
// Byte offset of the first invalid sequence of text, or std::string_view::npos.
size_t utf8_invalid_at(std::string_view text);
// The code points of text, each as its own UTF-8 bytes. Throws qkv::Error
// "WHAT: invalid UTF-8 at byte N (0xC3)" when text is not valid UTF-8.
std::vector<std::string> utf8_split(std::string_view text, std::string_view what);
// The number of code points of valid UTF-8 text.
size_t utf8_length(std::string_view text);
// Throws qkv::Error "FILE:LINE: invalid UTF-8 at byte B of the line (0xNN)"
// at the first invalid line of text (the contents of file).
void utf8_check_lines(std::string_view text, std::string_view file);

}  // namespace qkv::data

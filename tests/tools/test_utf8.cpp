// UTF-8 decoding (tools/data/utf8.h) and the code-point vocabulary: accented
// letters are one token each, ASCII keeps its byte ids, and invalid bytes are
// errors naming the byte offset, or the file and line.
#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/data/dataset.h"
#include "tools/data/pairs.h"
#include "tools/data/utf8.h"

namespace qkv::data {
namespace {

using Strings = std::vector<std::string>;

TEST_SUITE("tools/utf8") {
  TEST_CASE("code points of 1 to 4 bytes are one piece each") {
    CHECK(utf8_split("Mär", "t") == Strings{"M", "ä", "r"});
    CHECK(utf8_split("ßé€😀", "t") == Strings{"ß", "é", "€", "😀"});
    CHECK(utf8_split("", "t").empty());
    CHECK(utf8_length("Abbaugerät") == 10);
    CHECK(utf8_invalid_at("abaissâmes") == std::string_view::npos);
    // The edges of the valid ranges.
    CHECK(utf8_sequence_length("\x7f", 0) == 1);
    CHECK(utf8_sequence_length("\xc2\x80", 0) == 2);
    CHECK(utf8_sequence_length("\xe0\xa0\x80", 0) == 3);
    CHECK(utf8_sequence_length("\xed\x9f\xbf", 0) == 3);      // U+D7FF
    CHECK(utf8_sequence_length("\xf4\x8f\xbf\xbf", 0) == 4);  // U+10FFFF
  }

  TEST_CASE("invalid sequences are found at their first byte") {
    CHECK(utf8_invalid_at("ab\xc3") == 2);            // truncated
    CHECK(utf8_invalid_at("a\x80") == 1);             // lone continuation byte
    CHECK(utf8_invalid_at("\xc0\xaf") == 0);          // overlong '/'
    CHECK(utf8_invalid_at("x\xe0\x80\xaf") == 1);     // overlong, 3 bytes
    CHECK(utf8_invalid_at("\xed\xa0\x80") == 0);      // surrogate U+D800
    CHECK(utf8_invalid_at("\xf4\x90\x80\x80") == 0);  // U+110000
    CHECK(utf8_invalid_at("\xff") == 0);
    CHECK(utf8_invalid_at("M\xc3r") == 1);  // latin-1 'ä' lead, then ASCII
    CHECK(test::error_of([] { utf8_split("Ma\xe4rz", "input"); }) ==
          "input: invalid UTF-8 at byte 2 (0xE4)");
  }

  TEST_CASE("utf8_check_lines names the file, the line and the byte in the line") {
    CHECK_NOTHROW(utf8_check_lines("ä\nß\n", "f.txt"));
    CHECK(test::error_of([] { utf8_check_lines("ok\nstill ok\nnä\xc3\n", "f.txt"); }) ==
          "f.txt:3: invalid UTF-8 at byte 3 of the line (0xC3)");
  }

  TEST_CASE("Vocab chars are code points; ASCII ids are the byte ids they were") {
    Vocab v(utf8_split("Märzß", "t"), Vocab::Level::chars);
    CHECK(v.size() == 4 + 5);
    CHECK(v.split("ßä") == Strings{"ß", "ä"});
    const std::vector<int32_t> ids = v.encode("März");
    REQUIRE(ids.size() == 4);
    for (int32_t id : ids) CHECK(id != Vocab::unk);
    CHECK(v.decode(ids) == "März");
    CHECK(v.token(v.id("ä")) == "ä");
    // ASCII sorted as bytes: the ids every existing data set had.
    Vocab a(Strings{"b", "A", "0", "z"}, Vocab::Level::chars);
    CHECK(a.encode("0Abz") == std::vector<int32_t>{4, 5, 6, 7});
    CHECK(test::error_of([] { Vocab(Strings{"ab"}, Vocab::Level::chars); }) ==
          "Vocab: a chars token must be one UTF-8 code point, got \"ab\"");
    CHECK(test::error_of([&] { v.encode("M\xc3"); }) == "text: invalid UTF-8 at byte 1 (0xC3)");
  }

  TEST_CASE("a character outside the vocabulary is named whole, at its code point index") {
    Vocab v(utf8_split("Mar 0123,", "t"), Vocab::Level::chars);
    CHECK(test::error_of([&] { encode_strict(v, "Mär 3, 2021", "dates input"); }) ==
          "dates input: character 'ä' at 1 is not in the source vocabulary");
  }
}

}  // namespace
}  // namespace qkv::data

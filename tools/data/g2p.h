// The g2p data set: grapheme-to-phoneme conversion on the CMU pronouncing
// dictionary as Festival ships it (Debian's festlex-cmu). Letters in (one
// token each, lower-cased), phonemes out (one token each, with the syllable's
// stress digit on vowels when "stress" is on). The phoneme set is CMUdict's
// own 39 by default: Festival writes the unstressed "ah" (CMUdict's AH0, the
// schwa) as "ax", which without stress digits would be a 40th phoneme that
// the published G2P figures do not have; "phones": "festival" keeps it. A
// word with several pronunciations keeps them all: each is a training example, and a predicted
// pronunciation is correct if it matches any of them (WER); PER is the edit
// distance to the nearest one. Splits are disjoint by word.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "nn/enum_names.h"
#include "tools/data/lexicon.h"

namespace qkv::data {

// cmudict: Festival's "ax" read as "ah" (39 phonemes, CMUdict's own set);
// festival: "ax" kept as written (40).
enum class CmudictPhones { cmudict, festival };
inline constexpr EnumName<CmudictPhones> kCmudictPhonesNames[] = {
    {CmudictPhones::cmudict, "cmudict"}, {CmudictPhones::festival, "festival"}};
constexpr std::span<const EnumName<CmudictPhones>> enum_names(CmudictPhones) {
  return kCmudictPhonesNames;
}

struct G2pOptions {
  std::string file = "/usr/share/festival/dicts/cmu/cmudict-0.4.out";
  bool stress = false;               // phonemes with stress digits (aa1) or without (aa)
  CmudictPhones phones = CmudictPhones::cmudict;
  double valid = 0.05, test = 0.05;  // fractions of the words
};
G2pOptions g2p_options(JsonReader& r);
std::unique_ptr<Dataset> make_g2p(const G2pOptions& o, uint64_t seed);

// Festival's CMUdict text: an optional "MNCL" header line, then one entry per
// line, ("word" pos (((ph ph) stress) ((ph) stress) ...)). One entry per line
// (not merged): the word lower-cased, the phonemes joined by spaces. Throws
// qkv::Error "FILE:LINE: ..." naming what is malformed.
std::vector<LexiconEntry> parse_cmudict(std::string_view text, const std::string& file,
                                        bool stress, CmudictPhones phones);

}  // namespace qkv::data

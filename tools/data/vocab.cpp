// Vocab: specials first (pad, bos, eos, unk), then the sorted tokens, so the
// same token set always gets the same ids whatever order it was seen in.
// Characters are Unicode code points (UTF-8 byte order is code point order,
// so ASCII text gets the ids it got when characters were bytes).
#include <algorithm>
#include <cctype>

#include "engine/error.h"
#include "tools/data/dataset.h"
#include "tools/data/utf8.h"

namespace qkv::data {
namespace {

const char* const kSpecials[] = {"<pad>", "<s>", "</s>", "<unk>"};

}  // namespace

Vocab::Vocab(std::vector<std::string> tokens, Level level) : level_(level) {
  // Empty strings and the specials' own spellings are not tokens.
  std::erase_if(tokens, [](const std::string& t) {
    return t.empty() ||
           std::find(std::begin(kSpecials), std::end(kSpecials), t) != std::end(kSpecials);
  });
  std::sort(tokens.begin(), tokens.end());
  tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
  if (level == Level::chars) {
    for (const auto& t : tokens)
      check(utf8_sequence_length(t, 0) == t.size(),
            "Vocab: a chars token must be one UTF-8 code point, got \"", t, "\"");
  }
  tokens_.assign(std::begin(kSpecials), std::end(kSpecials));
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], int32_t(i));
}

int32_t Vocab::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? unk : it->second;
}

const std::string& Vocab::token(int32_t id) const {
  check(id >= 0 && id < size(), "Vocab::token: id ", id, " out of range [0,", size(), ")");
  return tokens_[size_t(id)];
}

std::vector<std::string> Vocab::split(const std::string& text) const {
  std::vector<std::string> out;
  if (level_ == Level::chars) {
    return utf8_split(text, "text");
  }
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<int32_t> Vocab::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  for (const auto& t : split(text)) ids.push_back(id(t));
  return ids;
}

std::string Vocab::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t i : ids) {
    if (i == eos) break;
    if (i == pad || i == bos) continue;
    if (level_ == Level::words && !out.empty()) out += ' ';
    out += token(i);
  }
  return out;
}

}  // namespace qkv::data

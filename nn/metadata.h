// Checkpoint metadata: the string key/value pairs a safetensors header carries
// beside the tensors (optimizer hyper-parameters, the trainer's state). Numbers
// are written so that they read back exactly; the readers accept a whole string
// of the asked kind and nothing else, naming `who` and the key when it is not.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace qkv {

using Metadata = std::map<std::string, std::string>;

std::string meta_string(double x);  // the shortest of %.15g/%.16g/%.17g that reads back as x
std::string meta_string(bool b);    // "true" / "false"

double parse_meta_double(const std::string& s, const std::string& key, const std::string& who);
int64_t parse_meta_int(const std::string& s, const std::string& key, const std::string& who);
uint64_t parse_meta_uint(const std::string& s, const std::string& key, const std::string& who);
bool parse_meta_bool(const std::string& s, const std::string& key, const std::string& who);

}  // namespace qkv

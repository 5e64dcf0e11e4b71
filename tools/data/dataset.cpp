// Shared pieces of the data sets: split names and make_dataset's dispatch.
#include "tools/data/dataset.h"

namespace qkv::data {

const char* split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::valid: return "valid";
    case Split::test: return "test";
  }
  return "?";
}

}  // namespace qkv::data

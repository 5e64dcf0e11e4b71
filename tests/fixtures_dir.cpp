// The fixtures folder, passed by the build (meson.build) to this file only.
#include "tests/test_utils.h"

namespace qkv::test {

const char* fixtures_dir() { return QKV_FIXTURES_DIR; }

}  // namespace qkv::test

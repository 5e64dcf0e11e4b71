#include "tests/test_utils.h"

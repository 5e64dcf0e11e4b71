// placeholder: ops of this family are in progress
#include "autograd/ops.h"

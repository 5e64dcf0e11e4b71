// placeholder: implemented by the kernels work in progress
#include "engine/kernels/softmax.h"

// The engine in one include: tensors, RNG, threads and every kernel.
#pragma once
#include "engine/error.h"
#include "engine/kernels/binary.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/layernorm.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/reduce.h"
#include "engine/kernels/softmax.h"
#include "engine/kernels/unary.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "engine/threads.h"

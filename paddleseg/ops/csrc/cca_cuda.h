// Host entry points of the CUDA kernels (cca_cuda.cu), callable from a C++
// file compiled without CUDA headers: pointers are untyped, the stream is a
// cudaStream_t passed as void*. Inputs are contiguous NCHW on the device.
// The attention `att` (Shape::att_size() elements, layout in cca_shape.h)
// and `scratch` are float32 for float16/bfloat16/float32 inputs and float64
// for float64 inputs; every product accumulates in that type.
#pragma once

#include "cca_shape.h"

namespace cca {
namespace cuda {

enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };

// Each returns 0 on success, else a cudaError_t value (see error_string).
int forward(int dtype, const void* q, const void* k, const void* v, void* out,
            void* att, const Shape& d, void* stream);

int backward(int dtype, const void* q, const void* k, const void* v,
             const void* att, const void* dout, void* dq, void* dk, void* dv,
             void* scratch, const Shape& d, void* stream);

const char* error_string(int code);

}  // namespace cuda
}  // namespace cca

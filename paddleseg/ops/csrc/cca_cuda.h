// Host entry points of the CUDA kernels (cca_cuda.cu), callable from a C++
// file compiled without CUDA headers: pointers are untyped, the stream is a
// cudaStream_t passed as void*. Inputs are contiguous NCHW on the device.
// The attention `att` (Shape::att_size() elements; its layout depends on
// the design, see cca_cuda.cuh and cca_cuda_tiled.cuh) and `scratch` are
// float32 for float16/bfloat16/float32 inputs and float64 for float64
// inputs; every product accumulates in that type. `workspace` holds
// workspace_bytes(d, dtype, design, backward) bytes (none for kSimt). The
// same design must run a forward pass and the backward pass of its `att`.
// `device` (>= 0) is made the current device for the launches (the stream
// must belong to it) and restored after; -1 keeps the current one.
// dtype codes, designs and the launch arithmetic: cca_cuda_launch.h.
#pragma once

#include "cca_cuda_launch.h"
#include "cca_shape.h"

namespace cca {
namespace cuda {

// Each returns 0 on success, else a cudaError_t value (see error_string).
int forward(int dtype, const void* q, const void* k, const void* v, void* out,
            void* att, void* workspace, const Shape& d, void* stream,
            int design = kDefaultDesign, int device = -1);

int backward(int dtype, const void* q, const void* k, const void* v,
             const void* att, const void* dout, void* dq, void* dk, void* dv,
             void* scratch, void* workspace, const Shape& d, void* stream,
             int design = kDefaultDesign, int device = -1);

const char* error_string(int code);

}  // namespace cuda
}  // namespace cca

// Host-side arithmetic of the CUDA launchers, in plain C++ (no CUDA, no
// Paddle header), so it is unit-tested on any machine
// (tests/ops/cca_cuda_launch_test.cc): the dtype table the bindings
// dispatch on, the kernel designs, their workspace sizes, and the
// splitting of a logical grid into launches within CUDA's grid limits.
#pragma once

#include <cstdint>
#include <cstring>

#include "cca_shape.h"

namespace cca {
namespace cuda {

// ---- dtypes ---------------------------------------------------------------
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };
constexpr int kNumDTypes = 4;

struct DTypeInfo {
  const char* name;  // as phi::DataTypeToString and numpy spell it
  int size;          // bytes of one element
  int acc_size;      // bytes of the accumulator (float or double)
};

inline const DTypeInfo& dtype_info(int code) {
  static const DTypeInfo table[kNumDTypes] = {
      {"float32", 4, 4}, {"float16", 2, 4}, {"bfloat16", 2, 4},
      {"float64", 8, 8}};
  return table[code];
}

// The code of a dtype name, or -1 when the CUDA kernels do not take it (an
// int tensor must be refused, not reinterpreted as float).
inline int dtype_code(const char* name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (std::strcmp(name, dtype_info(i).name) == 0) return i;
  }
  return -1;
}

inline bool valid_dtype(int code) { return code >= 0 && code < kNumDTypes; }

// ---- designs --------------------------------------------------------------
// kSimt: cca_cuda.cuh (lane products along columns, 64 x 64 tiles along
//   rows, one pixel per thread in the softmax; no workspace).
// kTiled: cca_cuda_tiled.cuh (unit-stride tiled products on transposed
//   copies, tensor cores for float16/bfloat16, both halves of each
//   aggregation fused, warp softmax); float32/float64 on CUDA cores.
// kTiledTf32: kTiled with float32 products on TF32 tensor cores.
// kTiledScalar: kTiled with the scalar tile path for every dtype, the path
//   that the CPU emulation runs (a reference for the tensor-core path).
enum Design : int { kSimt = 0, kTiled = 1, kTiledTf32 = 2, kTiledScalar = 3 };
constexpr int kNumDesigns = 4;
// The Paddle operator's design until a GPU measurement picks another
// (benchmarks/gpu/README.md).
constexpr int kDefaultDesign = kSimt;

inline const char* design_name(int design) {
  static const char* names[kNumDesigns] = {"simt", "tiled", "tiled_tf32",
                                           "tiled_scalar"};
  return design >= 0 && design < kNumDesigns ? names[design] : "?";
}

inline int design_code(const char* name) {
  for (int i = 0; i < kNumDesigns; ++i) {
    if (std::strcmp(name, design_name(i)) == 0) return i;
  }
  return -1;
}

// ---- workspace ------------------------------------------------------------
constexpr int64_t kWorkspaceAlign = 256;  // bytes, per buffer

inline int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

// Row pitch of the transposed copies (B, W, C, Hp): H rounded up to 8
// elements, so every row starts 16-byte aligned for every dtype.
inline int64_t padded_h(const Shape& d) { return align_up(d.H, 8); }

// Bytes of one transposed copy with `ch` channels.
inline int64_t transposed_bytes(const Shape& d, int64_t ch, int dtype) {
  return align_up(d.B * d.W * ch * padded_h(d) * dtype_info(dtype).size,
                  kWorkspaceAlign);
}

// Workspace bytes a pass needs beyond its outputs, att and scratch: the
// tiled designs keep transposed copies of q, k, v (and dout backward).
inline int64_t workspace_bytes(const Shape& d, int dtype, int design,
                               bool backward) {
  if (design == kSimt || !valid_dtype(dtype)) return 0;
  return 2 * transposed_bytes(d, d.Cq, dtype) +
         (backward ? 2 : 1) * transposed_bytes(d, d.C, dtype);
}

// The tiled attention layout inside the Shape::att_size() buffer: the
// column half as (B, W, H, H) [b, w, h, i], then the row half as
// (B, H, W, W) [b, h, w, j]; it needs B * H * W * (H + W) elements.
inline int64_t tiled_row_offset(const Shape& d) { return d.B * d.W * d.H * d.H; }
inline bool tiled_att_fits(const Shape& d) {
  return d.B * d.H * d.W * d.P() <= d.att_size();
}

// ---- grids ----------------------------------------------------------------
// CUDA takes up to 2^31 - 1 blocks along x and 65535 along y and z. The
// tests lower the y/z limit (-DCCA_GRID_LIMIT_YZ=3) so that every launch of
// the emulated kernels is split and the offsets are checked against the
// oracle.
#ifndef CCA_GRID_LIMIT_YZ
#define CCA_GRID_LIMIT_YZ 65535
#endif
constexpr int64_t kGridLimitX = 2147483647;
constexpr int64_t kGridLimitYZ = CCA_GRID_LIMIT_YZ;

// One launch of a split grid: blocks (x, y, z) with y, z offset by y0, z0.
struct GridChunk {
  int64_t y0, z0;
  unsigned x, y, z;
};

// Calls fn(chunk) for launches covering the logical grid gx * gy * gz
// exactly once, in order; none when a dimension is 0 (an empty tensor: a
// zero grid dimension is a launch error). Returns kGridTooLarge, launching
// nothing, when gx exceeds the x limit; else the first non-zero code fn
// returns, or 0.
constexpr int kGridTooLarge = -1;

template <typename F>
int for_each_grid_chunk(int64_t gx, int64_t gy, int64_t gz, F&& fn,
                        int64_t limit_yz = kGridLimitYZ,
                        int64_t limit_x = kGridLimitX) {
  if (gx > limit_x) return kGridTooLarge;
  if (gx <= 0 || gy <= 0 || gz <= 0) return 0;
  for (int64_t z0 = 0; z0 < gz; z0 += limit_yz) {
    const int64_t nz = gz - z0 < limit_yz ? gz - z0 : limit_yz;
    for (int64_t y0 = 0; y0 < gy; y0 += limit_yz) {
      const int64_t ny = gy - y0 < limit_yz ? gy - y0 : limit_yz;
      const int rc = fn(GridChunk{y0, z0, static_cast<unsigned>(gx),
                                  static_cast<unsigned>(ny),
                                  static_cast<unsigned>(nz)});
      if (rc != 0) return rc;
    }
  }
  return 0;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace cuda
}  // namespace cca

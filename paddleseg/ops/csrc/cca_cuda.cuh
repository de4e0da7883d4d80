// CUDA kernels of criss-cross attention over raw pointers (no Paddle).
//
// Two product kernels cover the eight products of the forward and backward
// passes (host side: cca_cuda.cu), as on the CPU:
//   lane_gemm: C_w(m, n) = sum_k A_w(k, m) B_w(k, n) independently for every
//       image column w (the column branch). Threads run along w, so every
//       load is coalesced, and the K reduction (channels or positions) is
//       split across the block's rows of threads and summed in shared
//       memory: no thread walks all the channels alone.
//   gemm: an ordinary batched product with 64 x 64 shared-memory tiles (the
//       row branch); operand strides are free, so transposed operands need
//       no copy.
// Products accumulate in Acc (float, or double for double inputs); inputs
// and outputs may be float, __half, __nv_bfloat16 or double. Every output
// element has exactly one writer: no atomics. Every kernel takes the
// GridOffset of its launch first: the host splits grids past CUDA's 65535
// blocks along y and z into several launches (cca_cuda_launch.h).
// GPU attention layout: att[((b * H + h) * P + p) * W + w] (P = H + W), p as
// in cca_shape.h; it fits in the Shape::att_size() buffer.
#pragma once

#include <cstdint>

#ifndef CCA_CUDA_EMULATION  // tests/ops emulates the kernels on the CPU
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

namespace cca {
namespace cuda_kernels {

// Block (blockIdx.y + y0, blockIdx.z + z0) of the logical grid.
struct GridOffset {
  int64_t y0, z0;
};

__device__ __forceinline__ int64_t block_y(const GridOffset& o) {
  return int64_t(blockIdx.y) + o.y0;
}
__device__ __forceinline__ int64_t block_z(const GridOffset& o) {
  return int64_t(blockIdx.z) + o.z0;
}

__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }
#ifndef CCA_CUDA_EMULATION
__device__ __forceinline__ float to_acc(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
#endif

template <typename T>
__device__ __forceinline__ T from_acc(float x);
template <>
__device__ __forceinline__ float from_acc<float>(float x) { return x; }
#ifndef CCA_CUDA_EMULATION
template <>
__device__ __forceinline__ __half from_acc<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
#endif
template <typename T>
__device__ __forceinline__ T from_acc(double x) {
  return static_cast<T>(x);
}

// Operand strides in elements; batch item z of `batch` = outer * inner
// items is at offset (z / inner) * s_outer + (z % inner) * s_inner.
struct Operand {
  const void* p;
  int64_t s0, s1;  // strides of the two matrix indices, (k, m|n) or (m, k)
  int64_t s_outer, s_inner;
};

struct ProductArgs {
  Operand a, b;
  void* c;
  int64_t c_m, c_n, c_outer, c_inner;
  int64_t M, N, K, lanes, batch, inner;
  bool accumulate;
};

__device__ __forceinline__ int64_t batch_offset(int64_t z, int64_t inner,
                                                int64_t outer_s,
                                                int64_t inner_s) {
  return (z / inner) * outer_s + (z % inner) * inner_s;
}

constexpr int kLaneThreads = 16;  // columns per block (coalesced 64 B)
constexpr int kSplit = 8;         // threads sharing one K reduction
constexpr int kRM = 4, kRN = 4;   // outputs per thread

// lane_gemm: grid (ceil(lanes / 16), ceil(M / kRM), batch * ceil(N / kRN)),
// block (16, kSplit). A(k, m) = a[k * s0 + m * s1 + w], B(k, n) likewise.
template <typename TA, typename TB, typename TC, typename Acc>
__global__ void lane_gemm_kernel(GridOffset o, ProductArgs g) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t w = int64_t(blockIdx.x) * kLaneThreads + tx;
  const int64_t m0 = block_y(o) * kRM;
  const int64_t n_tiles = (g.N + kRN - 1) / kRN;
  const int64_t z = block_z(o) / n_tiles, n0 = (block_z(o) % n_tiles) * kRN;
  Acc acc[kRM][kRN];
#pragma unroll
  for (int i = 0; i < kRM * kRN; ++i) acc[i / kRN][i % kRN] = Acc(0);
  if (w < g.lanes) {
    const TA* a = static_cast<const TA*>(g.a.p) + w +
                  batch_offset(z, g.inner, g.a.s_outer, g.a.s_inner);
    const TB* b = static_cast<const TB*>(g.b.p) + w +
                  batch_offset(z, g.inner, g.b.s_outer, g.b.s_inner);
    for (int64_t k = ty; k < g.K; k += kSplit) {
      Acc av[kRM], bv[kRN];
#pragma unroll
      for (int r = 0; r < kRM; ++r) {
        av[r] = m0 + r < g.M ? Acc(to_acc(a[k * g.a.s0 + (m0 + r) * g.a.s1]))
                             : Acc(0);
      }
#pragma unroll
      for (int j = 0; j < kRN; ++j) {
        bv[j] = n0 + j < g.N ? Acc(to_acc(b[k * g.b.s0 + (n0 + j) * g.b.s1]))
                             : Acc(0);
      }
#pragma unroll
      for (int i = 0; i < kRM * kRN; ++i) {
        acc[i / kRN][i % kRN] += av[i / kRN] * bv[i % kRN];
      }
    }
  }
  __shared__ Acc part[kSplit][kRM * kRN][kLaneThreads];
#pragma unroll
  for (int i = 0; i < kRM * kRN; ++i) part[ty][i][tx] = acc[i / kRN][i % kRN];
  __syncthreads();
  if (w >= g.lanes) return;
  TC* c = static_cast<TC*>(g.c) + w +
          batch_offset(z, g.inner, g.c_outer, g.c_inner);
  for (int i = ty; i < kRM * kRN; i += kSplit) {
    const int64_t m = m0 + i / kRN, n = n0 + i % kRN;
    if (m >= g.M || n >= g.N) continue;
    Acc sum = Acc(0);
#pragma unroll
    for (int s = 0; s < kSplit; ++s) sum += part[s][i][tx];
    TC* out = c + m * g.c_m + n * g.c_n;
    if (g.accumulate) sum += Acc(to_acc(*out));
    *out = from_acc<TC>(sum);
  }
}

constexpr int kTile = 64, kTileK = 16;  // gemm: 64 x 64 tiles, 256 threads

// Loads a kTileK x kTile tile (index (k, x)) of operand `o` into shared
// memory, along whichever index has unit stride, so loads coalesce.
// Element (k, x) is at p[k * sk + x * sx]; out-of-range elements are 0.
template <typename TI, typename Acc>
__device__ __forceinline__ void load_tile(const TI* p, int64_t sk, int64_t sx,
                                          int64_t k0, int64_t x0, int64_t K,
                                          int64_t X, Acc (*tile)[kTile + 1]) {
  const bool x_fast = sx == 1;
  for (int idx = threadIdx.x; idx < kTile * kTileK; idx += blockDim.x) {
    const int kk = x_fast ? idx / kTile : idx % kTileK;
    const int xx = x_fast ? idx % kTile : idx / kTileK;
    const int64_t k = k0 + kk, x = x0 + xx;
    tile[kk][xx] = k < K && x < X ? Acc(to_acc(p[k * sk + x * sx])) : Acc(0);
  }
}

// gemm: C(m, n) = sum_k A(m, k) B(k, n); A(m, k) = a[m * s0 + k * s1],
// B(k, n) = b[k * s0 + n * s1]. Grid (ceil(N / 64), ceil(M / 64), batch),
// 256 threads, each a 4 x 4 block of outputs.
template <typename TA, typename TB, typename TC, typename Acc>
__global__ void gemm_kernel(GridOffset o, ProductArgs g) {
  __shared__ Acc as[kTileK][kTile + 1], bs[kTileK][kTile + 1];
  const int64_t z = block_z(o);
  const int64_t m0 = block_y(o) * kTile;
  const int64_t n0 = int64_t(blockIdx.x) * kTile;
  const TA* a = static_cast<const TA*>(g.a.p) +
                batch_offset(z, g.inner, g.a.s_outer, g.a.s_inner);
  const TB* b = static_cast<const TB*>(g.b.p) +
                batch_offset(z, g.inner, g.b.s_outer, g.b.s_inner);
  const int tm = threadIdx.x / 16 * 4, tn = threadIdx.x % 16 * 4;
  Acc acc[4][4];
#pragma unroll
  for (int i = 0; i < 16; ++i) acc[i / 4][i % 4] = Acc(0);
  for (int64_t k0 = 0; k0 < g.K; k0 += kTileK) {
    // A as (k, m): stride of k is s1, of m is s0.
    load_tile(a, g.a.s1, g.a.s0, k0, m0, g.K, g.M, as);
    load_tile(b, g.b.s0, g.b.s1, k0, n0, g.K, g.N, bs);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      Acc av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        av[i] = as[kk][tm + i];
        bv[i] = bs[kk][tn + i];
      }
#pragma unroll
      for (int i = 0; i < 16; ++i) acc[i / 4][i % 4] += av[i / 4] * bv[i % 4];
    }
    __syncthreads();
  }
  TC* c = static_cast<TC*>(g.c) +
          batch_offset(z, g.inner, g.c_outer, g.c_inner);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int64_t m = m0 + tm + i / 4, n = n0 + tn + i % 4;
    if (m >= g.M || n >= g.N) continue;
    TC* out = c + m * g.c_m + n * g.c_n;
    Acc sum = acc[i / 4][i % 4];
    if (g.accumulate) sum += Acc(to_acc(*out));
    *out = from_acc<TC>(sum);
  }
}

// Softmax over p of att[(b, h, p, w)] for one pixel per thread; the
// pixel's own column entry p == h gets weight 0. Grid (ceil(W/128), H, B).
template <typename Acc>
__global__ void softmax_kernel(GridOffset o, Acc* att, int64_t H, int64_t W) {
  const int64_t w = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w >= W) return;
  const int64_t h = block_y(o), P = H + W;
  Acc* x = att + (block_z(o) * H + h) * P * W + w;
  Acc m = -INFINITY, sum = 0;
  for (int64_t p = 0; p < P; ++p) {
    if (p != h) m = max(m, x[p * W]);
  }
  for (int64_t p = 0; p < P; ++p) {
    const Acc e = p == h ? Acc(0) : exp(x[p * W] - m);
    x[p * W] = e;
    sum += e;
  }
  const Acc inv = Acc(1) / sum;
  for (int64_t p = 0; p < P; ++p) x[p * W] *= inv;
}

// Softmax backward in place: g <- a * (g - sum_p a * g), one pixel a thread.
template <typename Acc>
__global__ void softmax_backward_kernel(GridOffset o, const Acc* att,
                                        Acc* grad, int64_t H, int64_t W) {
  const int64_t w = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w >= W) return;
  const int64_t P = H + W;
  const int64_t off = (block_z(o) * H + block_y(o)) * P * W + w;
  const Acc* a = att + off;
  Acc* g = grad + off;
  Acc dot = 0;
  for (int64_t p = 0; p < P; ++p) dot += a[p * W] * g[p * W];
  for (int64_t p = 0; p < P; ++p) g[p * W] = a[p * W] * (g[p * W] - dot);
}

}  // namespace cuda_kernels
}  // namespace cca

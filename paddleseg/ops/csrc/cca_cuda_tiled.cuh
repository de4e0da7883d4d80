// The tiled design of the criss-cross attention CUDA kernels (Design
// kTiled*, host side in cca_cuda.cu), kept beside the SIMT kernels of
// cca_cuda.cuh until a GPU measurement decides between them.
//
// Once per pass, q, k, v (and dout backward) are transposed to
// (B, W, C, Hp) copies (Hp = H rounded up to 8, zero-padded), so that
// along image columns the channel-by-position matrices are unit-stride;
// along rows the NCHW tensors already are. Then every product is a
// batched tiled matrix product over unit-stride tiles in shared memory:
//   energy_kernel     E[z](m, n) = sum_k A[z](k, m) B[z](k, n)  (m, n unit
//                     stride): the column energies per (b, w) from the
//                     copies, the row energies per (b, h) from NCHW, and
//                     dA = dout . v likewise backward;
//   softmax kernels   one warp per pixel, shuffle reductions;
//   aggregate_kernel  Y(c, h, w) = sum_i Acol(h, i) X(c, i, w)
//                                + sum_j Arow(w, j) X(c, h, j)
//                     (out, dq; with the attention transposed: dk, dv).
//                     Both halves accumulate in registers of one block and
//                     meet through warp shuffles: one rounding, one store,
//                     no read-modify-write of the output.
// Attention layout: the column half as [b, w, h, i] (B, W, H, H), the row
// half as [b, h, w, j] (B, H, W, W) after it (cca_cuda_launch.h); the
// pixel's own column entry i == h holds weight 0.
//
// Tiles live in shared memory as rows of 32 or 64 bytes along k, their
// 16-byte chunks XOR-swizzled by row so that the fragment loads of a warp
// hit 32 different banks; two stages each. In aggregate_kernel, X arrives
// by cp.async where its rows are 16-byte aligned (always for the copies),
// else by plain loads, and the attention through registers, converted to
// the operand type. energy_kernel's operands are m- or n-major (unit
// stride along the output index, not along k), so they go through
// registers too, transposed into the k-major tiles, the next stage's loads
// in flight during the current stage's products. Warp tile math:
//   Mma16Math  mma.sync m16n8k16, float16 or bfloat16 in, float32 out;
//   Tf32Math   mma.sync m16n8k8 on TF32 (float32 inputs, optional);
//   ScalarMath the same m16 x n8 fragment layout from scalar FMAs: the
//              path of float32/float64 and the one the CPU emulation
//              (tests/ops/cuda_emulation.h) runs. It shares everything but
//              the fragment loads and the multiply with the mma paths.
// Block shapes: energy_kernel 64 x 64 outputs, 4 warps of 32 x 32;
// aggregate_kernel 64 channels x 8 x 8 pixels, 4 warps of 16 channels.
#pragma once

#include <cstdint>

#include "cca_cuda.cuh"

namespace cca {
namespace tiled {

using cuda_kernels::block_y;
using cuda_kernels::block_z;
using cuda_kernels::from_acc;
using cuda_kernels::GridOffset;
using cuda_kernels::to_acc;

constexpr int kThreads = 128;  // energy and aggregate blocks: 4 warps
// Blocks per multiprocessor the register allocation must allow (at most
// 65536 / (128 * 3) = 170 registers a thread; more would leave one or two
// blocks of 4 warps a multiprocessor to hide the latency of the loads).
constexpr int kMinBlocks = 3;

template <typename T>
__device__ __forceinline__ T zero_value() {
  return from_acc<T>(0.0f);
}
template <>
__device__ __forceinline__ double zero_value<double>() {
  return 0.0;
}

// ---- asynchronous copies --------------------------------------------------
// 16 bytes from global to shared memory; bytes past `src_bytes` (0 or 16)
// are zero-filled and not read.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem,
                                           int src_bytes) {
#if defined(CCA_CUDA_EMULATION)
  emulated_cp_async16(smem, gmem, src_bytes);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s),
               "l"(gmem), "r"(src_bytes));
#else
  uint4 v = make_uint4(0, 0, 0, 0);
  if (src_bytes > 0) v = *static_cast<const uint4*>(gmem);
  *static_cast<uint4*>(smem) = v;
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(CCA_CUDA_EMULATION)
  emulated_cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most `kPending` of this thread's newest groups are in
// flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(CCA_CUDA_EMULATION)
  emulated_cp_async_wait(kPending);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

// ---- swizzled shared-memory tiles -----------------------------------------
// A tile of rows of kBK elements of S along k. The 16-byte chunk c of row r
// is stored at chunk c ^ ((r / (8 / n)) % n), n = chunks per row (2 or 4,
// rows of 32 or 64 bytes): the 8 rows a warp's fragment load touches then
// spread over all 32 banks.
template <typename S, int kBK>
struct Tile {
  static constexpr int kChunk = 16 / int(sizeof(S));  // elements per chunk
  static constexpr int kChunks = kBK / kChunk;        // chunks per row
  static_assert(kBK % kChunk == 0, "rows of whole 16-byte chunks");
  static_assert(kChunks == 1 || kChunks == 2 || kChunks == 4 ||
                    kChunks == 8, "1, 2, 4 or 8 chunks per row");
  S* p;

  __device__ __forceinline__ static int offset(int row, int k) {
    const int c = k / kChunk;
    const int sw = kChunks > 1 ? (row / (8 / kChunks)) % kChunks : 0;
    return row * kBK + (c ^ sw) * kChunk + k % kChunk;
  }
  __device__ __forceinline__ S& at(int row, int k) const {
    return p[offset(row, k)];
  }
  // Start of the 16-byte chunk holding (row, k), k a multiple of kChunk.
  __device__ __forceinline__ S* chunk(int row, int k) const {
    return p + offset(row, k);
  }
};

// ---- warp tile math -------------------------------------------------------
// Each computes acc[e] += sum_k A(row_a + r_e, k) B(row_b + c_e, k) over
// kK values of k for the m16 x n8 tile, in the C-fragment layout of
// mma.sync: lane = 4 g + t holds r_e = g + 8 (e / 2), c_e = 2 t + e % 2.
template <typename Acc>
struct ScalarMath {
  static constexpr int kK = 1;
  struct FragA { Acc v[2]; };
  struct FragB { Acc v[2]; };
  template <typename S, int kBK>
  __device__ __forceinline__ static void load_a(FragA& f, Tile<S, kBK> t,
                                                int row, int k, int lane) {
    f.v[0] = Acc(to_acc(t.at(row + lane / 4, k)));
    f.v[1] = Acc(to_acc(t.at(row + lane / 4 + 8, k)));
  }
  template <typename S, int kBK>
  __device__ __forceinline__ static void load_b(FragB& f, Tile<S, kBK> t,
                                                int row, int k, int lane) {
    f.v[0] = Acc(to_acc(t.at(row + 2 * (lane % 4), k)));
    f.v[1] = Acc(to_acc(t.at(row + 2 * (lane % 4) + 1, k)));
  }
  __device__ __forceinline__ static void mma(Acc acc[4], const FragA& a,
                                             const FragB& b) {
    acc[0] += a.v[0] * b.v[0];
    acc[1] += a.v[0] * b.v[1];
    acc[2] += a.v[1] * b.v[0];
    acc[3] += a.v[1] * b.v[1];
  }
};

#ifndef CCA_CUDA_EMULATION
// The tensor-core paths: sm_80 and later (the launcher checks the device).
// Elements (row, k) and (row, k + 1), k even: one 32-bit word.
template <typename S, int kBK>
__device__ __forceinline__ uint32_t load_u32(Tile<S, kBK> t, int row, int k) {
  return *reinterpret_cast<const uint32_t*>(&t.at(row, k));
}

// float16 / bfloat16 in, float32 accumulators: m16n8k16.
template <typename T>
struct Mma16Math {
  static constexpr int kK = 16;
  struct FragA { uint32_t r[4]; };
  struct FragB { uint32_t r[2]; };
  template <int kBK>
  __device__ __forceinline__ static void load_a(FragA& f, Tile<T, kBK> t,
                                                int row, int k, int lane) {
    const int g = lane / 4, c = 2 * (lane % 4);
    f.r[0] = load_u32(t, row + g, k + c);
    f.r[1] = load_u32(t, row + g + 8, k + c);
    f.r[2] = load_u32(t, row + g, k + c + 8);
    f.r[3] = load_u32(t, row + g + 8, k + c + 8);
  }
  template <int kBK>
  __device__ __forceinline__ static void load_b(FragB& f, Tile<T, kBK> t,
                                                int row, int k, int lane) {
    const int g = lane / 4, c = 2 * (lane % 4);
    f.r[0] = load_u32(t, row + g, k + c);
    f.r[1] = load_u32(t, row + g, k + c + 8);
  }
  __device__ __forceinline__ static void mma(float acc[4], const FragA& a,
                                             const FragB& b);
};

template <>
__device__ __forceinline__ void Mma16Math<__half>::mma(float acc[4],
                                                       const FragA& a,
                                                       const FragB& b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]),
        "r"(b.r[1]));
#else
  __trap();
#endif
}

template <>
__device__ __forceinline__ void Mma16Math<__nv_bfloat16>::mma(
    float acc[4], const FragA& a, const FragB& b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]),
        "r"(b.r[1]));
#else
  __trap();
#endif
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t u;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(u) : "f"(x));
  return u;
}

// float32 in, rounded to TF32 (10-bit mantissa), float32 accumulators:
// m16n8k8.
struct Tf32Math {
  static constexpr int kK = 8;
  struct FragA { uint32_t r[4]; };
  struct FragB { uint32_t r[2]; };
  template <int kBK>
  __device__ __forceinline__ static void load_a(FragA& f, Tile<float, kBK> t,
                                                int row, int k, int lane) {
    const int g = lane / 4, c = lane % 4;
    f.r[0] = to_tf32(t.at(row + g, k + c));
    f.r[1] = to_tf32(t.at(row + g + 8, k + c));
    f.r[2] = to_tf32(t.at(row + g, k + c + 4));
    f.r[3] = to_tf32(t.at(row + g + 8, k + c + 4));
  }
  template <int kBK>
  __device__ __forceinline__ static void load_b(FragB& f, Tile<float, kBK> t,
                                                int row, int k, int lane) {
    const int g = lane / 4, c = lane % 4;
    f.r[0] = to_tf32(t.at(row + g, k + c));
    f.r[1] = to_tf32(t.at(row + g, k + c + 4));
  }
  __device__ __forceinline__ static void mma(float acc[4], const FragA& a,
                                             const FragB& b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
        : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]),
          "r"(b.r[1]));
#else
    __trap();
#endif
  }
};
#endif  // CCA_CUDA_EMULATION

// ---- configurations -------------------------------------------------------
// kMath: 0 scalar, 1 mma (float16/bfloat16), 2 TF32 (float32).
// Acc: accumulator; AttS: shared-memory type of the attention operand;
// kBK: k per stage of aggregate_kernel (rows of 32 bytes of T), kBKE: of
// energy_kernel (rows of 64 bytes).
template <typename T, int kMath>
struct Config {
  using Acc = float;
  using AttS = float;
  using Math = ScalarMath<float>;
  static constexpr int kBK = 32 / int(sizeof(T));
  static constexpr int kBKE = 64 / int(sizeof(T));
};
template <int kMath>
struct Config<double, kMath> {
  using Acc = double;
  using AttS = double;
  using Math = ScalarMath<double>;
  static constexpr int kBK = 4;
  static constexpr int kBKE = 8;
};
#ifndef CCA_CUDA_EMULATION
template <>
struct Config<__half, 1> {
  using Acc = float;
  using AttS = __half;
  using Math = Mma16Math<__half>;
  static constexpr int kBK = 16;
  static constexpr int kBKE = 32;
};
template <>
struct Config<__nv_bfloat16, 1> {
  using Acc = float;
  using AttS = __nv_bfloat16;
  using Math = Mma16Math<__nv_bfloat16>;
  static constexpr int kBK = 16;
  static constexpr int kBKE = 32;
};
template <>
struct Config<float, 2> {
  using Acc = float;
  using AttS = float;
  using Math = Tf32Math;
  static constexpr int kBK = 8;
  static constexpr int kBKE = 16;
};
#endif

// ---- transpose ------------------------------------------------------------
// xt[b, w, c, h] = x[b, c, h, w] for h < H, 0 for H <= h < Hp.
// Grid (ceil(W / 32), ceil(Hp / 32), B * C), block (32, 8).
template <typename T>
__global__ void transpose_kernel(GridOffset o, const T* __restrict__ x,
                                 T* __restrict__ xt, int64_t C, int64_t H,
                                 int64_t W, int64_t Hp) {
  __shared__ T tile[32][33];
  const int64_t plane = block_z(o), b = plane / C, c = plane % C;
  const int64_t w0 = int64_t(blockIdx.x) * 32, h0 = block_y(o) * 32;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const T* src = x + plane * H * W;
  for (int r = ty; r < 32; r += 8) {
    const int64_t h = h0 + r, w = w0 + tx;
    tile[r][tx] = h < H && w < W ? src[h * W + w] : zero_value<T>();
  }
  __syncthreads();
  for (int r = ty; r < 32; r += 8) {
    const int64_t w = w0 + r, h = h0 + tx;
    if (w < W && h < Hp) xt[((b * W + w) * C + c) * Hp + h] = tile[tx][r];
  }
}

// ---- energies -------------------------------------------------------------
// A batch of matrices: item z starts at p + (z / inner) * s_outer +
// (z % inner) * s_inner; element (k, x) at + k * ld + x.
struct Batched {
  const void* p;
  int64_t ld, s_outer, s_inner;
  __device__ __forceinline__ int64_t start(int64_t z, int64_t inner) const {
    return (z / inner) * s_outer + (z % inner) * s_inner;
  }
};

struct EnergyArgs {
  Batched a, b;
  void* c;
  int64_t c_ld, c_outer, c_inner;
  int64_t M, N, K, inner;
};

// Two adjacent elements along k (k even: one chunk), stored at once.
template <typename T>
struct alignas(2 * sizeof(T)) Pair {
  T lo, hi;
};

template <typename T, typename S, int kBK, int kPerThread>
struct OperandStage {
  // (k, k + 1) pairs of one x (m or n) per load, x fastest across threads:
  // loads coalesce along the unit-stride x, stores go to row x of the
  // K-major tile.
  T lo[kPerThread], hi[kPerThread];

  __device__ __forceinline__ void fetch(const T* p, int64_t ld, int64_t x0,
                                        int64_t X, int64_t k0, int64_t K) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int idx = threadIdx.x + kThreads * i;
      const int64_t x = x0 + idx % 64, k = k0 + 2 * (idx / 64);
      const bool in_x = x < X;
      lo[i] = in_x && k < K ? p[k * ld + x] : zero_value<T>();
      hi[i] = in_x && k + 1 < K ? p[(k + 1) * ld + x] : zero_value<T>();
    }
  }
  __device__ __forceinline__ void store(Tile<S, kBK> t) const {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int idx = threadIdx.x + kThreads * i;
      const int x = idx % 64, k = 2 * (idx / 64);
      *reinterpret_cast<Pair<S>*>(&t.at(x, k)) = Pair<S>{lo[i], hi[i]};
    }
  }
};

// The products of one k step of a warp's 32 x 32 outputs.
template <typename Math, typename Acc, typename T, int kBK>
__device__ __forceinline__ void energy_step(Acc (&acc)[2][4][4],
                                            Tile<T, kBK> ta, Tile<T, kBK> tb,
                                            int k, int wm, int wn, int lane) {
  typename Math::FragA fa[2];
  typename Math::FragB fb[4];
#pragma unroll
  for (int i = 0; i < 2; ++i) Math::load_a(fa[i], ta, wm + 16 * i, k, lane);
#pragma unroll
  for (int j = 0; j < 4; ++j) Math::load_b(fb[j], tb, wn + 8 * j, k, lane);
#pragma unroll
  for (int i = 0; i < 8; ++i) Math::mma(acc[i / 4][i % 4], fa[i / 4], fb[i % 4]);
}

// C[z](m, n) = sum_k A[z](k, m) B[z](k, n) into Acc, 64 x 64 outputs a
// block. Grid (ceil(N / 64), ceil(M / 64), batch), 128 threads; warp
// (wm, wn) computes rows 32 wm.. and columns 32 wn.. of the block tile.
template <typename T, int kMath>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    energy_kernel(GridOffset o, EnergyArgs g) {
  using Cfg = Config<T, kMath>;
  using Acc = typename Cfg::Acc;
  using Math = typename Cfg::Math;
  constexpr int kBK = Cfg::kBKE;
  constexpr int kPer = kBK / 2 * 64 / kThreads;
  __shared__ __align__(16) T smem[2][2][64 * kBK];
  const int64_t z = block_z(o);
  const int64_t m0 = block_y(o) * 64, n0 = int64_t(blockIdx.x) * 64;
  const T* a = static_cast<const T*>(g.a.p) + g.a.start(z, g.inner);
  const T* b = static_cast<const T*>(g.b.p) + g.b.start(z, g.inner);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32;
  Acc acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 32; ++i) acc[i / 16][i / 4 % 4][i % 4] = Acc(0);
  OperandStage<T, T, kBK, kPer> sa, sb;
  const int64_t tiles = (g.K + kBK - 1) / kBK;
  sa.fetch(a, g.a.ld, m0, g.M, 0, g.K);
  sb.fetch(b, g.b.ld, n0, g.N, 0, g.K);
  sa.store(Tile<T, kBK>{smem[0][0]});
  sb.store(Tile<T, kBK>{smem[0][1]});
  __syncthreads();
  for (int64_t kt = 0; kt < tiles; ++kt) {
    const int cur = int(kt & 1);
    if (kt + 1 < tiles) {  // next stage's loads in flight during the math
      sa.fetch(a, g.a.ld, m0, g.M, (kt + 1) * kBK, g.K);
      sb.fetch(b, g.b.ld, n0, g.N, (kt + 1) * kBK, g.K);
    }
    const Tile<T, kBK> ta{smem[cur][0]}, tb{smem[cur][1]};
    if constexpr (Math::kK == 1) {
#pragma unroll 2
      for (int k = 0; k < kBK; ++k) energy_step<Math>(acc, ta, tb, k, wm, wn, lane);
    } else {
#pragma unroll
      for (int k = 0; k < kBK; k += Math::kK) {
        energy_step<Math>(acc, ta, tb, k, wm, wn, lane);
      }
    }
    if (kt + 1 < tiles) {
      sa.store(Tile<T, kBK>{smem[cur ^ 1][0]});
      sb.store(Tile<T, kBK>{smem[cur ^ 1][1]});
    }
    __syncthreads();
  }
  Acc* c = static_cast<Acc*>(g.c) + (z / g.inner) * g.c_outer +
           (z % g.inner) * g.c_inner;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    const int e = i % 4;
    const int64_t m = m0 + wm + 16 * (i / 16) + lane / 4 + 8 * (e / 2);
    const int64_t n = n0 + wn + 8 * (i / 4 % 4) + 2 * (lane % 4) + e % 2;
    if (m < g.M && n < g.N) c[m * g.c_ld + n] = acc[i / 16][i / 4 % 4][e];
  }
}

// ---- softmax, one warp per pixel ------------------------------------------
template <typename Acc>
__device__ __forceinline__ Acc warp_max(Acc v) {
#pragma unroll
  for (int s = 16; s > 0; s /= 2) v = max(v, __shfl_xor_sync(0xffffffffu, v, s));
  return v;
}

template <typename Acc>
__device__ __forceinline__ Acc warp_sum(Acc v) {
#pragma unroll
  for (int s = 16; s > 0; s /= 2) v += __shfl_xor_sync(0xffffffffu, v, s);
  return v;
}

struct PixelRows {
  int64_t col, row, h;  // offsets of the pixel's two halves, its row h
};

__device__ __forceinline__ PixelRows pixel_rows(int64_t pix, int64_t H,
                                                int64_t W) {
  const int64_t w = pix % W, h = pix / W % H, b = pix / (H * W);
  return PixelRows{((b * W + w) * H + h) * H, ((b * H + h) * W + w) * W, h};
}

constexpr int kSoftmaxWarps = 8;  // pixels per 256-thread block

// Grid (ceil(B H W / 8)), 256 threads.
template <typename Acc>
__global__ void softmax_kernel(GridOffset, Acc* __restrict__ col_att,
                               Acc* __restrict__ row_att, int64_t pixels,
                               int64_t H, int64_t W) {
  const int lane = threadIdx.x % 32;
  const int64_t pix = int64_t(blockIdx.x) * kSoftmaxWarps + threadIdx.x / 32;
  if (pix >= pixels) return;  // the whole warp: shuffles stay full
  const PixelRows r = pixel_rows(pix, H, W);
  Acc* col = col_att + r.col;
  Acc* row = row_att + r.row;
  Acc m = -INFINITY;
  for (int64_t i = lane; i < H; i += 32) {
    if (i != r.h) m = max(m, col[i]);
  }
  for (int64_t j = lane; j < W; j += 32) m = max(m, row[j]);
  m = warp_max(m);
  Acc sum = 0;
  for (int64_t i = lane; i < H; i += 32) {
    const Acc e = i == r.h ? Acc(0) : exp(col[i] - m);
    col[i] = e;
    sum += e;
  }
  for (int64_t j = lane; j < W; j += 32) {
    const Acc e = exp(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const Acc inv = Acc(1) / warp_sum(sum);
  for (int64_t i = lane; i < H; i += 32) col[i] *= inv;
  for (int64_t j = lane; j < W; j += 32) row[j] *= inv;
}

// grad <- att * (grad - sum_p att * grad), in place.
template <typename Acc>
__global__ void softmax_backward_kernel(GridOffset,
                                        const Acc* __restrict__ col_att,
                                        const Acc* __restrict__ row_att,
                                        Acc* __restrict__ col_grad,
                                        Acc* __restrict__ row_grad,
                                        int64_t pixels, int64_t H,
                                        int64_t W) {
  const int lane = threadIdx.x % 32;
  const int64_t pix = int64_t(blockIdx.x) * kSoftmaxWarps + threadIdx.x / 32;
  if (pix >= pixels) return;
  const PixelRows r = pixel_rows(pix, H, W);
  const Acc *ca = col_att + r.col, *ra = row_att + r.row;
  Acc *cg = col_grad + r.col, *rg = row_grad + r.row;
  Acc dot = 0;
  for (int64_t i = lane; i < H; i += 32) dot += ca[i] * cg[i];
  for (int64_t j = lane; j < W; j += 32) dot += ra[j] * rg[j];
  dot = warp_sum(dot);
  for (int64_t i = lane; i < H; i += 32) cg[i] = ca[i] * (cg[i] - dot);
  for (int64_t j = lane; j < W; j += 32) rg[j] = ra[j] * (rg[j] - dot);
}

// ---- fused aggregation ----------------------------------------------------
struct AggregateArgs {
  const void* x;     // (B, C, H, W)
  const void* xt;    // (B, W, C, Hp), the transposed copy of x
  const void* acol;  // Acc (B, W, H, H)
  const void* arow;  // Acc (B, H, W, W)
  void* y;           // (B, C, H, W)
  int64_t C, H, W, Hp;
  int64_t tiles_w;   // ceil(W / 8)
  bool row_async;    // x rows start 16-byte aligned: cp.async along rows
};

constexpr int kAggC = 64;  // channels per block (4 warps of 16)
constexpr int kAggP = 8;   // pixels per block along h and along w

// One stage of products of a warp: for every pixel p of the tile's column
// (or row), its 16 channels x 8 positions.
template <typename Math, typename Acc, typename T, typename AttS, int kBK>
__device__ __forceinline__ void aggregate_step(Acc (&acc)[kAggP][4],
                                               Tile<T, kBK> tx,
                                               Tile<AttS, kBK> ta, int k,
                                               int warp, int lane) {
#pragma unroll
  for (int p = 0; p < kAggP; ++p) {
    typename Math::FragA fa;
    typename Math::FragB fb;
    Math::load_a(fa, tx, p * kAggC + 16 * warp, k, lane);
    Math::load_b(fb, ta, p * kAggP, k, lane);
    Math::mma(acc[p], fa, fb);
  }
}

template <typename Math, typename Acc, typename T, typename AttS, int kBK>
__device__ __forceinline__ void aggregate_stage(Acc (&acc)[kAggP][4],
                                                Tile<T, kBK> tx,
                                                Tile<AttS, kBK> ta, int warp,
                                                int lane) {
  if constexpr (Math::kK == 1) {
    // Scalar: one k at a time (unrolled over k, the loads of all k would
    // be hoisted and spill).
#pragma unroll 1
    for (int k = 0; k < kBK; ++k) {
      aggregate_step<Math>(acc, tx, ta, k, warp, lane);
    }
  } else {
#pragma unroll
    for (int k = 0; k < kBK; k += Math::kK) {
      aggregate_step<Math>(acc, tx, ta, k, warp, lane);
    }
  }
}

// Y(c, h, w) = sum_i Acol(h, i) X(c, i, w) + sum_j Arow(w, j) X(c, h, j)
// with Acol(h, i) = acol[b, w, h, i] and Arow(w, j) = arow[b, h, w, j], or,
// kTrans, Acol(h, i) = acol[b, w, i, h] and Arow(w, j) = arow[b, h, j, w].
// Grid (ceil(H / 8) * ceil(W / 8), ceil(C / 64), B), 128 threads.
//
// The block walks k in stages: first the column half (k = i < H, one
// m16 x n8 x k product per w of the tile: 16 channels x 8 rows h), then the
// row half (k = j < W, one per h of the tile: 16 channels x 8 columns w).
// Lane (g, t) then holds the column half of rows h = 2t, 2t + 1 for every
// w and the row half of columns w = 2t, 2t + 1 for every h; three
// shuffles within each quad of lanes bring every pixel's two halves
// together, summed in Acc and rounded once.
template <typename T, int kMath, bool kTrans>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    aggregate_kernel(GridOffset o, AggregateArgs g) {
  using Cfg = Config<T, kMath>;
  using Acc = typename Cfg::Acc;
  using AttS = typename Cfg::AttS;
  using Math = typename Cfg::Math;
  constexpr int kBK = Cfg::kBK;
  constexpr int kChunk = 16 / int(sizeof(T));
  constexpr int kAttPer = kAggP * kAggP * kBK / kThreads;
  constexpr int kXElems = kAggP * kAggC * kBK;
  constexpr int kYPitch = sizeof(Acc) == 4 ? kAggC + 1 : kAggC;  // per h w
  static_assert(kAggP * kAggP * kYPitch * sizeof(Acc) <=
                    2 * kXElems * sizeof(T),
                "the output tile fits in the operand buffers");
  __shared__ __align__(16) T xs[2][kXElems];
  __shared__ __align__(16) AttS as[2][kAggP * kAggP * kBK];

  const int64_t b = block_z(o), c0 = block_y(o) * kAggC;
  const int64_t h0 = int64_t(blockIdx.x) / g.tiles_w * kAggP;
  const int64_t w0 = int64_t(blockIdx.x) % g.tiles_w * kAggP;
  const int64_t C = g.C, H = g.H, W = g.W;
  const T* x = static_cast<const T*>(g.x);
  const T* xt = static_cast<const T*>(g.xt);
  const Acc* acol = static_cast<const Acc*>(g.acol);
  const Acc* arow = static_cast<const Acc*>(g.arow);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t col_stages = (H + kBK - 1) / kBK;
  const int64_t stages = col_stages + (W + kBK - 1) / kBK;

  // Stage s: the operand rows p * 64 + c (p: the tile's w for the column
  // half, its h for the row half) and the attention rows p * 8 + n. Rows of
  // X are two 16-byte chunks, so one pass of the block loads the 64 channel
  // rows of one p: thread (c_t, ch_t) always loads channel c_t, chunk ch_t.
  static_assert(kBK / kChunk == 2 && kThreads == 2 * kAggC,
                "one pass of the block per pixel of the tile");
  const int c_t = threadIdx.x / 2, ch_t = threadIdx.x % 2;
  const bool c_ok = c0 + c_t < C;
  const int64_t xt_off = ((b * W + w0) * C + c0 + c_t) * g.Hp;  // + p C Hp
  const int64_t x_off = ((b * C + c0 + c_t) * H + h0) * W;      // + p W
  auto load_x = [&](int64_t s, Tile<T, kBK> t) {
    const bool col = s < col_stages;
    const int64_t k = (col ? s : s - col_stages) * kBK + ch_t * kChunk;
#pragma unroll
    for (int p = 0; p < kAggP; ++p) {
      T* dst = t.chunk(p * kAggC + c_t, ch_t * kChunk);
      if (col) {  // xt[b, w0 + p, c, k..]: rows padded to Hp, zeros past H
        const bool ok = c_ok && w0 + p < W && k < g.Hp;
        cp_async16(dst, xt + (ok ? xt_off + p * C * g.Hp + k : 0),
                   ok ? 16 : 0);
      } else if (g.row_async) {  // x[b, c, h0 + p, k..], W % kChunk == 0
        const bool ok = c_ok && h0 + p < H && k < W;
        cp_async16(dst, x + (ok ? x_off + p * W + k : 0), ok ? 16 : 0);
      } else {
        const bool ok = c_ok && h0 + p < H;
        const T* src = x + (ok ? x_off + p * W : 0);
#pragma unroll
        for (int e = 0; e < kChunk; ++e) {
          dst[e] = ok && k + e < W ? src[k + e] : zero_value<T>();
        }
      }
    }
    cp_async_commit();
  };
  // The attention: kPlane values (n, k) per pixel p of the tile, k fastest
  // (unit stride) or, transposed, n fastest; kPPer pixels per pass.
  constexpr int kPlane = kAggP * kBK, kPPer = kThreads / kPlane;
  static_assert(kThreads % kPlane == 0 && kAttPer * kPPer == kAggP,
                "whole pixels per pass");
  const int q_t = threadIdx.x % kPlane, p_t = threadIdx.x / kPlane;
  const int k_t = kTrans ? q_t / kAggP : q_t % kBK;
  const int n_t = kTrans ? q_t % kAggP : q_t / kBK;
  Acc att_regs[kAttPer];
  auto fetch_att = [&](int64_t s) {
    const bool col = s < col_stages;
    const int64_t K = col ? H : W, kk = (col ? s : s - col_stages) * kBK + k_t;
    // Column half: item (b, w0 + p), rows h0 + n; row half: item
    // (b, h0 + p), rows w0 + n.
    const int64_t p0 = col ? w0 : h0, np = col ? W : H, nn = (col ? h0 : w0) + n_t;
    const Acc* base = (col ? acol : arow) + (b * np + p0) * K * K +
                      (kTrans ? kk * K + nn : nn * K + kk);
    const bool ok_nk = nn < K && kk < K;
#pragma unroll
    for (int i = 0; i < kAttPer; ++i) {
      const int p = p_t + kPPer * i;
      const bool ok = ok_nk && p0 + p < np;
      att_regs[i] = ok ? base[p * K * K] : Acc(0);
    }
  };
  auto store_att = [&](Tile<AttS, kBK> t) {
#pragma unroll
    for (int i = 0; i < kAttPer; ++i) {
      t.at((p_t + kPPer * i) * kAggP + n_t, k_t) = from_acc<AttS>(att_regs[i]);
    }
  };

  Acc acc_c[kAggP][4], acc_r[kAggP][4];
#pragma unroll
  for (int i = 0; i < 4 * kAggP; ++i) {
    acc_c[i / 4][i % 4] = Acc(0);
    acc_r[i / 4][i % 4] = Acc(0);
  }
  load_x(0, Tile<T, kBK>{xs[0]});
  fetch_att(0);
  store_att(Tile<AttS, kBK>{as[0]});
  for (int64_t s = 0; s < stages; ++s) {
    const int cur = int(s & 1);
    if (s + 1 < stages) {
      load_x(s + 1, Tile<T, kBK>{xs[cur ^ 1]});
      fetch_att(s + 1);
    } else {
      cp_async_commit();  // an empty group keeps the count uniform
    }
    cp_async_wait<1>();  // this thread's copies of stage s have landed
    __syncthreads();     // and everyone's, and the attention stores
    const Tile<T, kBK> tx{xs[cur]};
    const Tile<AttS, kBK> ta{as[cur]};
    // A uniform branch, each side with its own array: choosing the array
    // per product would move both to local memory.
    if (s < col_stages) {
      aggregate_stage<Math>(acc_c, tx, ta, warp, lane);
    } else {
      aggregate_stage<Math>(acc_r, tx, ta, warp, lane);
    }
    __syncthreads();  // everyone is done with buffer `cur`
    if (s + 1 < stages) store_att(Tile<AttS, kBK>{as[cur ^ 1]});
  }

  // Bring the halves together: out(c, h = 2t + dh, w = 2t' + dw) needs
  // acc_r[h][2 ch + dw] of lane (g, t').
  const int t = lane % 4;
#pragma unroll
  for (int sh = 0; sh < 4; ++sh) {
    const int tp = t ^ sh;  // the partner lane's t
#pragma unroll
    for (int v = 0; v < 8; ++v) {
      const int dh = v / 4, e = v % 4;  // e = 2 ch + dw
      // acc_r[2 tp + dh][e], with compile-time indices only.
      Acc send = tp == 0   ? acc_r[dh][e]
                 : tp == 1 ? acc_r[2 + dh][e]
                 : tp == 2 ? acc_r[4 + dh][e]
                           : acc_r[6 + dh][e];
      const Acc got = sh == 0 ? send : __shfl_xor_sync(0xffffffffu, send, sh);
      // got: row half of (c half e / 2, h = 2t + dh, w = 2 tp + e % 2).
#pragma unroll
      for (int p = 0; p < kAggP; ++p) {
        if (p / 2 == tp && p % 2 == e % 2) acc_c[p][2 * (e / 2) + dh] += got;
      }
    }
  }
  // The output tile through shared memory (the operand buffers are free),
  // then stores along w.
  Acc* ys = reinterpret_cast<Acc*>(&xs[0][0]);
#pragma unroll
  for (int i = 0; i < 4 * kAggP; ++i) {
    const int p = i / 4, e = i % 4;
    const int c = 16 * warp + lane / 4 + 8 * (e / 2), h = 2 * t + e % 2;
    ys[(h * kAggP + p) * kYPitch + c] = acc_c[p][e];
  }
  __syncthreads();
  T* y = static_cast<T*>(g.y);
  for (int idx = threadIdx.x; idx < kAggC * kAggP * kAggP; idx += kThreads) {
    const int w = idx % kAggP, h = idx / kAggP % kAggP, c = idx / (kAggP * kAggP);
    if (c0 + c < C && h0 + h < H && w0 + w < W) {
      y[((b * C + c0 + c) * H + h0 + h) * W + w0 + w] =
          from_acc<T>(ys[(h * kAggP + w) * kYPitch + c]);
    }
  }
}

}  // namespace tiled
}  // namespace cca

// Register-tiled CPU building blocks of criss-cross attention.
//
// Everything works on "lane vectors": kLanes consecutive image columns w,
// the contiguous axis of NCHW, so no kernel needs a transpose of the value
// tensor. Two small GEMMs cover all eight products of the forward and
// backward passes:
//   lane_gemm:  C(m, n) = sum_k A(k, m) * B(k, n), every operand a lane
//               vector (the column branch: one product per column, 8 columns
//               at once);
//   bcast_gemm: C(m, n) = sum_k s(k, m) * V(k, n), s a broadcast scalar
//               (the row branch: an ordinary matrix product along the row).
// Operand addresses are `base + k * stride_k + m * stride_m` in elements, so
// one kernel serves every layout the passes need.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cca_shape.h"
#include "cca_simd.h"

namespace cca {

template <typename T>
using Lane = Simd<T, kLanes>;

template <typename T>
struct GemmArgs {
  const T* a;
  int64_t a_k, a_m;  // A(k, m), lane vector or scalar (bcast_gemm)
  const T* b;
  int64_t b_k, b_n;  // B(k, n), lane vector
  T* c;
  int64_t c_m, c_n;  // C(m, n), lane vector
  int64_t M, N, K;
};

// Keeps v in a register. Without it GCC folds the load of a tile operand
// into every FMA that uses it, doubling the loads per FMA; measured 1.5x
// slower on AVX2.
template <typename V>
inline void pin(V& v) {
#if defined(__AVX__) && (defined(__x86_64__) || defined(__i386__))
  if constexpr (sizeof(V) == 32) __asm__("" : "+x"(v));
#endif
}

template <typename T, int MR, int NR, bool kBroadcast>
inline void gemm_tile(const GemmArgs<T>& g, int64_t m0, int64_t n0,
                      int64_t k0, int64_t k1, bool accumulate) {
  using S = Lane<T>;
  typename S::V acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR * NR; ++i) {
    T* c = g.c + (m0 + i / NR) * g.c_m + (n0 + i % NR) * g.c_n;
    acc[i / NR][i % NR] = accumulate ? S::load(c) : S::zero();
  }
  const T* a = g.a + m0 * g.a_m;
  const T* b = g.b + n0 * g.b_n;
  // Keep the smaller side of the tile in registers and stream the other:
  // MR * NR accumulators + min(MR, NR) + 1 fit the 16 AVX2 registers.
  for (int64_t k = k0; k < k1; ++k) {
    if (MR <= NR) {
      typename S::V av[MR];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const T* ar = a + k * g.a_k + r * g.a_m;
        av[r] = kBroadcast ? S::set1(*ar) : S::load(ar);
        pin(av[r]);
      }
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) {
        typename S::V bv = S::load(b + k * g.b_k + j * g.b_n);
        pin(bv);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) acc[r][j] += av[r] * bv;
      }
    } else {
      typename S::V bv[NR];
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) {
        bv[j] = S::load(b + k * g.b_k + j * g.b_n);
        pin(bv[j]);
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const T* ar = a + k * g.a_k + r * g.a_m;
        typename S::V av = kBroadcast ? S::set1(*ar) : S::load(ar);
        pin(av);
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) acc[r][j] += av * bv[j];
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR * NR; ++i) {
    S::store(g.c + (m0 + i / NR) * g.c_m + (n0 + i % NR) * g.c_n,
             acc[i / NR][i % NR]);
  }
}

// A rows x cols corner tile (rows <= MR, cols <= NR) as one register tile,
// so edges keep several independent accumulators.
template <typename T, int MR, int NR, bool kBroadcast>
inline void edge_tile(const GemmArgs<T>& g, int64_t rows, int64_t cols,
                      int64_t m0, int64_t n0, int64_t k0, int64_t k1) {
  if constexpr (MR > 1) {
    if (rows < MR) {
      return edge_tile<T, MR - 1, NR, kBroadcast>(g, rows, cols, m0, n0, k0,
                                                  k1);
    }
  }
  if constexpr (NR > 1) {
    if (cols < NR) {
      return edge_tile<T, MR, NR - 1, kBroadcast>(g, rows, cols, m0, n0, k0,
                                                  k1);
    }
  }
  gemm_tile<T, MR, NR, kBroadcast>(g, m0, n0, k0, k1, k0 > 0);
}

// Full product with cache blocking: K in blocks of kc (partial sums kept in
// C), N in blocks of nc so a block of B stays in L2 while all of M sweeps it.
template <typename T, int MR, int NR, bool kBroadcast>
void gemm(const GemmArgs<T>& g, int64_t kc, int64_t nc) {
  for (int64_t k0 = 0; k0 < g.K; k0 += kc) {
    const int64_t k1 = std::min(g.K, k0 + kc);
    for (int64_t nb = 0; nb < g.N; nb += nc) {
      const int64_t ne = std::min(g.N, nb + nc);
      for (int64_t m0 = 0; m0 < g.M; m0 += MR) {
        const int64_t rows = std::min<int64_t>(MR, g.M - m0);
        for (int64_t n0 = nb; n0 < ne; n0 += NR) {
          const int64_t cols = std::min<int64_t>(NR, ne - n0);
          if (rows == MR && cols == NR) {
            gemm_tile<T, MR, NR, kBroadcast>(g, m0, n0, k0, k1, k0 > 0);
          } else {
            edge_tile<T, MR, NR, kBroadcast>(g, rows, cols, m0, n0, k0, k1);
          }
        }
      }
    }
  }
}

// 6 x 2 register tiles (12 accumulators + 3 operands of the 16 AVX2
// registers), the fastest measured on Zen 3 for both kinds of product;
// K in blocks of `kc`, N in blocks of 24. Double lane
// vectors take two registers and GCC lowers them poorly: float64 runs
// correct but slower than the pure-Paddle reference (so "auto" does not
// pick the native op for float64 on CPU).
template <typename T>
void lane_gemm(const GemmArgs<T>& g, int64_t kc = 128) {
  gemm<T, 6, 2, false>(g, kc, 24);
}

template <typename T>
void bcast_gemm(const GemmArgs<T>& g) {
  gemm<T, 6, 2, true>(g, 128, 1 << 30);
}

// Softmax over the P positions of one block of kLanes pixels stored as
// x[p * kLanes + lane], in place; position `masked` gets weight 0 (the
// pixel's own column entry: the pixel counts once, in its row).
template <typename T>
inline void softmax_block(T* x, int64_t P, int64_t masked) {
  using S = Lane<T>;
  typename S::V m = S::set1(-INFINITY);
  for (int64_t p = 0; p < P; ++p) {
    if (p != masked) m = S::max(m, S::load(x + p * kLanes));
  }
  typename S::V sum = S::zero();
  for (int64_t p = 0; p < P; ++p) {
    typename S::V e = S::zero();
    if (p != masked) e = vexp<kLanes>(S::load(x + p * kLanes) - m);
    S::store(x + p * kLanes, e);
    sum += e;
  }
  const typename S::V inv = T(1) / sum;
  for (int64_t p = 0; p < P; ++p) {
    S::store(x + p * kLanes, S::load(x + p * kLanes) * inv);
  }
}

// Softmax backward of one block, in place: g <- a * (g - sum_p a * g).
template <typename T>
inline void softmax_backward_block(const T* a, T* g, int64_t P) {
  using S = Lane<T>;
  typename S::V dot = S::zero();
  for (int64_t p = 0; p < P; ++p) {
    dot += S::load(a + p * kLanes) * S::load(g + p * kLanes);
  }
  for (int64_t p = 0; p < P; ++p) {
    const typename S::V av = S::load(a + p * kLanes);
    S::store(g + p * kLanes, av * (S::load(g + p * kLanes) - dot));
  }
}

}  // namespace cca

// Copies between NCHW tensors and the compact buffers the CPU kernels work
// on, and the OpenMP task loop (attention layout: cca_shape.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cca_cpu_kernels.h"
#include "cca_shape.h"

namespace cca {

// Columns [w0, w0 + kLanes) of channels [c0, c1) and rows [h0, h1) of one
// NCHW batch item x, as xs[((c - c0) * (h1 - h0) + h - h0) * kLanes + lane];
// lanes past W are zero.
template <typename T>
void gather_slab(const T* x, const Shape& d, int64_t c0, int64_t c1,
                 int64_t h0, int64_t h1, int64_t w0, T* xs) {
  const int64_t n = std::min<int64_t>(kLanes, d.W - w0), hw = d.hw();
  for (int64_t c = c0; c < c1; ++c) {
    const T* src = x + c * hw + h0 * d.W + w0;
    T* dst = xs + (c - c0) * (h1 - h0) * kLanes;
    if (n == kLanes) {  // constant size: one vector load and store
      for (int64_t h = 0; h < h1 - h0; ++h) {
        std::memcpy(dst + h * kLanes, src + h * d.W, kLanes * sizeof(T));
      }
      continue;
    }
    for (int64_t h = 0; h < h1 - h0; ++h) {
      std::memcpy(dst + h * kLanes, src + h * d.W, n * sizeof(T));
      std::fill(dst + h * kLanes + n, dst + (h + 1) * kLanes, T(0));
    }
  }
}

// x += the slab xs (same indexing as gather_slab), valid lanes only.
template <typename T>
void scatter_add_slab(const T* xs, const Shape& d, int64_t c0, int64_t c1,
                      int64_t h0, int64_t h1, int64_t w0, T* x) {
  using S = Lane<T>;
  const int64_t n = std::min<int64_t>(kLanes, d.W - w0), hw = d.hw();
  for (int64_t c = c0; c < c1; ++c) {
    const T* src = xs + (c - c0) * (h1 - h0) * kLanes;
    T* dst = x + c * hw + h0 * d.W + w0;
    for (int64_t h = 0; h < h1 - h0; ++h) {
      T* row = dst + h * d.W;
      if (n == kLanes) {
        S::store(row, S::load(row) + S::load(src + h * kLanes));
      } else {
        for (int64_t l = 0; l < n; ++l) row[l] += src[h * kLanes + l];
      }
    }
  }
}

// Row h of every channel of x as xr[c * padded_w + w], zero past W.
template <typename T>
void gather_row(const T* x, const Shape& d, int64_t channels, int64_t h,
                T* xr) {
  const int64_t wp = d.padded_w();
  for (int64_t c = 0; c < channels; ++c) {
    std::memcpy(xr + c * wp, x + c * d.hw() + h * d.W, d.W * sizeof(T));
    std::fill(xr + c * wp + d.W, xr + (c + 1) * wp, T(0));
  }
}

// Row h of every channel of x set from xr (layout of gather_row).
template <typename T>
void store_row(const T* xr, const Shape& d, int64_t channels, int64_t h,
               T* x) {
  for (int64_t c = 0; c < channels; ++c) {
    std::memcpy(x + c * d.hw() + h * d.W, xr + c * d.padded_w(),
                d.W * sizeof(T));
  }
}

// The row part of pixel row h of one batch item's attention-like tensor a,
// transposed so the output index j is the lane axis:
//   t[(kj * W + w) * kLanes + lj] = a(h, w; position H + kj * kLanes + lj).
template <typename T>
void transpose_row_part(const T* a, const Shape& d, int64_t b, int64_t h,
                        T* t) {
  for (int64_t kj = 0; kj < d.chunks(); ++kj) {
    for (int64_t w = 0; w < d.W; ++w) {
      const T* src = a + d.block(b, w / kLanes, h) + w % kLanes;
      T* dst = t + (kj * d.W + w) * kLanes;
      for (int64_t lj = 0; lj < kLanes; ++lj) {
        const int64_t j = kj * kLanes + lj;
        dst[lj] = j < d.W ? src[(d.H + j) * kLanes] : T(0);
      }
    }
  }
}

// Threads the kernels use: OpenMP's current setting (Paddle's
// paddle.base.core.set_num_threads sets it for the calling thread).
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs fn(task, scratch) for task in [0, n) on `threads` OpenMP threads;
// thread t uses workspace[t * per_thread, (t + 1) * per_thread). Tasks go
// out in pairs: the column phases number neighbouring chunks of columns
// consecutively, so one thread reads both halves of each cache line while
// the line is still in cache (8 floats are half a 64-byte line).
template <typename T, typename Fn>
void parallel_tasks(int64_t n, int threads, T* workspace, int64_t per_thread,
                    Fn fn) {
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    T* scratch = workspace + omp_get_thread_num() * per_thread;
#else
    T* scratch = workspace;
#endif
#pragma omp for schedule(dynamic, 2)
    for (int64_t i = 0; i < n; ++i) fn(i, scratch);
  }
}

}  // namespace cca

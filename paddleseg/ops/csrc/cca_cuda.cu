// Host launchers of the CUDA kernels behind the plain entry points of
// cca_cuda.h: the SIMT design (cca_cuda.cuh) and the tiled design
// (cca_cuda_tiled.cuh). No Paddle header: nvcc builds this file alone, for
// the Paddle operator, for benchmarks/gpu and for tests/ops.
#include <cstdint>

#include "cca_cuda.cuh"
#include "cca_cuda.h"
#include "cca_cuda_launch.h"
#include "cca_cuda_tiled.cuh"

namespace cca {
namespace cuda {
namespace {

using cuda_kernels::GridOffset;
using cuda_kernels::Operand;
using cuda_kernels::ProductArgs;

#define CCA_TRY(EXPR)                  \
  do {                                 \
    const int rc_ = (EXPR);            \
    if (rc_ != 0) return rc_;          \
  } while (0)

// Launches `kernel` over the logical grid gx * gy * gz, split into launches
// within CUDA's limits (each gets its GridOffset); nothing for an empty
// grid. Returns the first launch error.
template <typename... Params, typename... Args>
int launch(void (*kernel)(GridOffset, Params...), int64_t gx, int64_t gy,
           int64_t gz, dim3 block, cudaStream_t stream, Args... args) {
  const int rc = for_each_grid_chunk(gx, gy, gz, [&](const GridChunk& c) {
    const GridOffset offset{c.y0, c.z0};
#ifdef CCA_CUDA_EMULATION
    (void)stream;
    emulate_launch(kernel, dim3(c.x, c.y, c.z), block, offset,
                   static_cast<Params>(args)...);
#else
    kernel<<<dim3(c.x, c.y, c.z), block, 0, stream>>>(offset, args...);
#endif
    return static_cast<int>(cudaGetLastError());
  });
  return rc == kGridTooLarge ? static_cast<int>(cudaErrorInvalidConfiguration)
                             : rc;
}

template <typename T, typename A>
struct Kind {  // a compile-time pair for the dtype dispatch
  using Type = T;
  using Arg = A;
};
template <int kMath>
struct MathPath {
  static constexpr int value = kMath;
};

// Calls f(Kind<T, Acc>) for the dtype code.
template <typename F>
int with_simt_types(int dtype, F&& f) {
  switch (dtype) {
    case kFloat32: return f(Kind<float, float>{});
    case kFloat64: return f(Kind<double, double>{});
#ifndef CCA_CUDA_EMULATION
    case kFloat16: return f(Kind<__half, float>{});
    case kBFloat16: return f(Kind<__nv_bfloat16, float>{});
#endif
  }
  return cudaErrorInvalidValue;
}

// Calls f(Kind<T, MathPath<m>>) for the dtype code and a tiled design:
// tensor cores for float16/bfloat16 (kTiled, kTiledTf32) and for float32
// (kTiledTf32), the scalar tile path otherwise.
template <typename F>
int with_tiled_types(int dtype, int design, F&& f) {
  const bool scalar = design == kTiledScalar;
  switch (dtype) {
    case kFloat32:
#ifndef CCA_CUDA_EMULATION
      if (design == kTiledTf32) return f(Kind<float, MathPath<2>>{});
#endif
      return f(Kind<float, MathPath<0>>{});
    case kFloat64: return f(Kind<double, MathPath<0>>{});
#ifndef CCA_CUDA_EMULATION
    case kFloat16:
      return scalar ? f(Kind<__half, MathPath<0>>{})
                    : f(Kind<__half, MathPath<1>>{});
    case kBFloat16:
      return scalar ? f(Kind<__nv_bfloat16, MathPath<0>>{})
                    : f(Kind<__nv_bfloat16, MathPath<1>>{});
#endif
  }
  (void)scalar;
  return cudaErrorInvalidValue;
}

// ---- the SIMT design ------------------------------------------------------

template <typename TA, typename TB, typename TC, typename Acc>
int lane_gemm(ProductArgs g, cudaStream_t stream) {
  using namespace cuda_kernels;
  return launch(lane_gemm_kernel<TA, TB, TC, Acc>,
                ceil_div(g.lanes, kLaneThreads), ceil_div(g.M, kRM),
                g.batch * ceil_div(g.N, kRN), dim3(kLaneThreads, kSplit),
                stream, g);
}

template <typename TA, typename TB, typename TC, typename Acc>
int gemm(ProductArgs g, cudaStream_t stream) {
  using namespace cuda_kernels;
  return launch(gemm_kernel<TA, TB, TC, Acc>, ceil_div(g.N, kTile),
                ceil_div(g.M, kTile), g.batch, dim3(256), stream, g);
}

// Column product over every column w: C(m, n) = sum_k A(k, m) B(k, n).
ProductArgs column(const Shape& d, Operand a, Operand b, void* c,
                   int64_t c_m, int64_t c_n, int64_t c_item, int64_t M,
                   int64_t N, int64_t K, bool accumulate) {
  return ProductArgs{a, b, c, c_m, c_n, c_item, 0, M, N, K, d.W, d.B, 1,
                     accumulate};
}

// Row product for every pixel row (b, h): C(m, n) = sum_k A(m, k) B(k, n).
ProductArgs row(const Shape& d, Operand a, Operand b, void* c, int64_t c_m,
                int64_t c_n, int64_t c_item, int64_t c_row, int64_t M,
                int64_t N, int64_t K) {
  return ProductArgs{a, b, c, c_m, c_n, c_item, c_row, M, N, K, 0,
                     d.B * d.H, d.H, false};
}

template <typename Acc>
int simt_softmax(Acc* att, const Shape& d, cudaStream_t s) {
  return launch(cuda_kernels::softmax_kernel<Acc>, ceil_div(d.W, 128), d.H,
                d.B, dim3(128), s, att, d.H, d.W);
}

template <typename T, typename Acc>
int simt_forward(const T* q, const T* k, const T* v, T* out, Acc* att,
                 const Shape& d, cudaStream_t s) {
  const int64_t hw = d.hw(), W = d.W, H = d.H, qi = d.Cq * hw, vi = d.C * hw;
  const int64_t ai = d.H * d.P() * d.W, ar = d.P() * d.W;
  // Column energies E(h, i) = sum_c q(c, h) k(c, i), into att[b, h, i, w].
  CCA_TRY((lane_gemm<T, T, Acc, Acc>(
      column(d, {q, hw, W, qi, 0}, {k, hw, W, qi, 0}, att, ar, W, ai, H, H,
             d.Cq, false), s)));
  // Row energies E(j, w) = sum_c k(c, h, j) q(c, h, w), into p = H + j.
  CCA_TRY((gemm<T, T, Acc, Acc>(
      row(d, {k, 1, hw, qi, W}, {q, hw, 1, qi, W}, att + H * W, W, 1, ai, ar,
          W, W, d.Cq), s)));
  CCA_TRY(simt_softmax(att, d, s));
  // Row half: out(c, w) = sum_j v(c, h, j) A(h, H + j, w).
  CCA_TRY((gemm<T, Acc, T, Acc>(
      row(d, {v, hw, 1, vi, W}, {att + H * W, W, 1, ai, ar}, out, hw, 1, vi,
          W, d.C, W, W), s)));
  // Column half: out(c, h) += sum_i v(c, i) A(h, i).
  return lane_gemm<T, Acc, T, Acc>(
      column(d, {v, W, hw, vi, 0}, {att, W, ar, ai, 0}, out, hw, W, vi, d.C,
             H, H, true), s);
}

template <typename T, typename Acc>
int simt_backward(const T* q, const T* k, const T* v, const Acc* att,
                  const T* g, T* dq, T* dk, T* dv, Acc* de, const Shape& d,
                  cudaStream_t s) {
  const int64_t hw = d.hw(), W = d.W, H = d.H, qi = d.Cq * hw, vi = d.C * hw;
  const int64_t ai = d.H * d.P() * d.W, ar = d.P() * d.W;
  const Acc* att_row = att + H * W;
  Acc* de_row = de + H * W;
  // dA = dout . v along columns and rows, then dE = softmax'(dA) in place.
  CCA_TRY((lane_gemm<T, T, Acc, Acc>(
      column(d, {g, hw, W, vi, 0}, {v, hw, W, vi, 0}, de, ar, W, ai, H, H,
             d.C, false), s)));
  CCA_TRY((gemm<T, T, Acc, Acc>(
      row(d, {v, 1, hw, vi, W}, {g, hw, 1, vi, W}, de_row, W, 1, ai, ar, W,
          W, d.C), s)));
  CCA_TRY(launch(cuda_kernels::softmax_backward_kernel<Acc>,
                 ceil_div(d.W, 128), d.H, d.B, dim3(128), s, att, de, d.H,
                 d.W));
  // Row halves (set): dq(c, w) = sum_j k(c, h, j) dE(h, H + j, w);
  // dk(c, j) = sum_w q(c, h, w) dE(h, H + j, w); dv likewise with dout, A.
  CCA_TRY((gemm<T, Acc, T, Acc>(
      row(d, {k, hw, 1, qi, W}, {de_row, W, 1, ai, ar}, dq, hw, 1, qi, W,
          d.Cq, W, W), s)));
  CCA_TRY((gemm<T, Acc, T, Acc>(
      row(d, {q, hw, 1, qi, W}, {de_row, 1, W, ai, ar}, dk, hw, 1, qi, W,
          d.Cq, W, W), s)));
  CCA_TRY((gemm<T, Acc, T, Acc>(
      row(d, {g, hw, 1, vi, W}, {att_row, 1, W, ai, ar}, dv, hw, 1, vi, W,
          d.C, W, W), s)));
  // Column halves (added): dq(c, h) += sum_i k(c, i) dE(h, i);
  // dk(c, i) += sum_h q(c, h) dE(h, i); dv(c, i) += sum_h dout(c, h) A(h, i).
  CCA_TRY((lane_gemm<T, Acc, T, Acc>(
      column(d, {k, W, hw, qi, 0}, {de, W, ar, ai, 0}, dq, hw, W, qi, d.Cq,
             H, H, true), s)));
  CCA_TRY((lane_gemm<T, Acc, T, Acc>(
      column(d, {q, W, hw, qi, 0}, {de, ar, W, ai, 0}, dk, hw, W, qi, d.Cq,
             H, H, true), s)));
  return lane_gemm<T, Acc, T, Acc>(
      column(d, {g, W, hw, vi, 0}, {att, ar, W, ai, 0}, dv, hw, W, vi, d.C,
             H, H, true), s);
}

// ---- the tiled design -----------------------------------------------------

// The transposed copies in the workspace, in order.
template <typename T>
struct Copies {
  T* at[4];
  Copies(void* ws, const Shape& d, int dtype) {
    char* p = static_cast<char*>(ws);
    const int64_t sizes[4] = {transposed_bytes(d, d.Cq, dtype),
                              transposed_bytes(d, d.Cq, dtype),
                              transposed_bytes(d, d.C, dtype),
                              transposed_bytes(d, d.C, dtype)};
    for (int i = 0; i < 4; ++i) {
      at[i] = reinterpret_cast<T*>(p);
      p += sizes[i];
    }
  }
};

template <typename T>
int transpose(const T* x, T* xt, int64_t ch, const Shape& d, cudaStream_t s) {
  const int64_t Hp = padded_h(d);
  return launch(tiled::transpose_kernel<T>, ceil_div(d.W, 32),
                ceil_div(Hp, 32), d.B * ch, dim3(32, 8), s, x, xt, ch, d.H,
                d.W, Hp);
}

// Column energies per (b, w): E(h, i) = sum_c a[b, w, c, h] b[b, w, c, i]
// from the copies, into the column half of `e`.
template <typename T, int kMath, typename Acc>
int column_energies(const T* at, const T* bt, int64_t K, Acc* e,
                    const Shape& d, cudaStream_t s) {
  const int64_t Hp = padded_h(d), H = d.H;
  tiled::EnergyArgs g{{at, Hp, K * Hp, 0}, {bt, Hp, K * Hp, 0}, e, H, H * H,
                      0, H, H, K, 1};
  return launch(tiled::energy_kernel<T, kMath>, ceil_div(H, 64),
                ceil_div(H, 64), d.B * d.W, dim3(tiled::kThreads), s, g);
}

// Row energies per (b, h): E(w, j) = sum_c a[b, c, h, w] b[b, c, h, j] from
// NCHW, into the row half of `e`.
template <typename T, int kMath, typename Acc>
int row_energies(const T* a, const T* b, int64_t K, Acc* e, const Shape& d,
                 cudaStream_t s) {
  const int64_t hw = d.hw(), W = d.W;
  tiled::EnergyArgs g{{a, hw, K * hw, W}, {b, hw, K * hw, W},
                      e + tiled_row_offset(d), W, d.H * W * W, W * W, W, W,
                      K, d.H};
  return launch(tiled::energy_kernel<T, kMath>, ceil_div(W, 64),
                ceil_div(W, 64), d.B * d.H, dim3(tiled::kThreads), s, g);
}

template <typename T, int kMath, bool kTrans, typename Acc>
int aggregate(const T* x, const T* xt, const Acc* att, T* y, int64_t ch,
              const Shape& d, cudaStream_t s) {
  const bool row_async =
      (d.W * int64_t(sizeof(T))) % 16 == 0 &&
      reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const int64_t tiles_w = ceil_div(d.W, tiled::kAggP);
  tiled::AggregateArgs g{x, xt, att, att + tiled_row_offset(d), y, ch, d.H,
                         d.W, padded_h(d), tiles_w, row_async};
  return launch(tiled::aggregate_kernel<T, kMath, kTrans>,
                ceil_div(d.H, tiled::kAggP) * tiles_w,
                ceil_div(ch, tiled::kAggC), d.B, dim3(tiled::kThreads), s, g);
}

int check_tiled(const void* workspace, int math) {
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0) {
    return cudaErrorInvalidValue;  // the copies are read 16 bytes at a time
  }
#ifndef CCA_CUDA_EMULATION
  if (math != 0) {  // mma.sync and cp.async: sm_80 and later
    int device = 0, major = 0;
    CCA_TRY(cudaGetDevice(&device));
    CCA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                   device));
    if (major < 8) return cudaErrorNotSupported;
  }
#else
  (void)math;
#endif
  return 0;
}

template <typename T, int kMath, typename Acc>
int tiled_forward(const T* q, const T* k, const T* v, T* out, Acc* att,
                  void* ws, int dtype, const Shape& d, cudaStream_t s) {
  CCA_TRY(check_tiled(ws, kMath));
  const Copies<T> t(ws, d, dtype);
  T *qt = t.at[0], *kt = t.at[1], *vt = t.at[2];
  CCA_TRY(transpose(q, qt, d.Cq, d, s));
  CCA_TRY(transpose(k, kt, d.Cq, d, s));
  CCA_TRY(transpose(v, vt, d.C, d, s));
  CCA_TRY((column_energies<T, kMath>(qt, kt, d.Cq, att, d, s)));
  CCA_TRY((row_energies<T, kMath>(q, k, d.Cq, att, d, s)));
  const int64_t pixels = d.B * d.H * d.W;
  CCA_TRY(launch(tiled::softmax_kernel<Acc>,
                 ceil_div(pixels, tiled::kSoftmaxWarps), 1, 1, dim3(256), s,
                 att, att + tiled_row_offset(d), pixels, d.H, d.W));
  return aggregate<T, kMath, false>(v, vt, att, out, d.C, d, s);
}

template <typename T, int kMath, typename Acc>
int tiled_backward(const T* q, const T* k, const T* v, const Acc* att,
                   const T* g, T* dq, T* dk, T* dv, Acc* de, void* ws,
                   int dtype, const Shape& d, cudaStream_t s) {
  CCA_TRY(check_tiled(ws, kMath));
  const Copies<T> t(ws, d, dtype);
  T *qt = t.at[0], *kt = t.at[1], *vt = t.at[2], *gt = t.at[3];
  CCA_TRY(transpose(q, qt, d.Cq, d, s));
  CCA_TRY(transpose(k, kt, d.Cq, d, s));
  CCA_TRY(transpose(v, vt, d.C, d, s));
  CCA_TRY(transpose(g, gt, d.C, d, s));
  // dA(h, w, p) = sum_c dout(c, h, w) v(c, p), then dE in place.
  CCA_TRY((column_energies<T, kMath>(gt, vt, d.C, de, d, s)));
  CCA_TRY((row_energies<T, kMath>(g, v, d.C, de, d, s)));
  const int64_t pixels = d.B * d.H * d.W, ro = tiled_row_offset(d);
  CCA_TRY(launch(tiled::softmax_backward_kernel<Acc>,
                 ceil_div(pixels, tiled::kSoftmaxWarps), 1, 1, dim3(256), s,
                 att, att + ro, de, de + ro, pixels, d.H, d.W));
  // dq = sum_p dE k(p); dk(p) = sum over the pixels whose cross holds p of
  // dE q (the attention transposed); dv likewise with A and dout.
  CCA_TRY((aggregate<T, kMath, false>(k, kt, de, dq, d.Cq, d, s)));
  CCA_TRY((aggregate<T, kMath, true>(q, qt, de, dk, d.Cq, d, s)));
  return aggregate<T, kMath, true>(g, gt, att, dv, d.C, d, s);
}

// Makes `device` current for the lifetime of the guard (-1: no change).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
#ifndef CCA_CUDA_EMULATION
    if (device >= 0 && cudaGetDevice(&previous_) == cudaSuccess &&
        previous_ != device) {
      error_ = static_cast<int>(cudaSetDevice(device));
    } else {
      previous_ = -1;
    }
#else
    (void)device;
#endif
  }
  ~DeviceGuard() {
#ifndef CCA_CUDA_EMULATION
    if (previous_ >= 0) cudaSetDevice(previous_);
#endif
  }
  int error() const { return error_; }

 private:
  int previous_ = -1, error_ = 0;
};

}  // namespace

int forward(int dtype, const void* q, const void* k, const void* v, void* out,
            void* att, void* workspace, const Shape& d, void* stream,
            int design, int device) {
  const DeviceGuard guard(device);
  CCA_TRY(guard.error());
  auto s = static_cast<cudaStream_t>(stream);
  if (design == kSimt) {
    return with_simt_types(dtype, [&](auto kind) {
      using T = typename decltype(kind)::Type;
      using Acc = typename decltype(kind)::Arg;
      return simt_forward<T, Acc>(
          static_cast<const T*>(q), static_cast<const T*>(k),
          static_cast<const T*>(v), static_cast<T*>(out),
          static_cast<Acc*>(att), d, s);
    });
  }
  if (design < 0 || design >= kNumDesigns) return cudaErrorInvalidValue;
  return with_tiled_types(dtype, design, [&](auto kind) {
    using T = typename decltype(kind)::Type;
    constexpr int kMath = decltype(kind)::Arg::value;
    using Acc = typename tiled::Config<T, kMath>::Acc;
    return tiled_forward<T, kMath>(
        static_cast<const T*>(q), static_cast<const T*>(k),
        static_cast<const T*>(v), static_cast<T*>(out),
        static_cast<Acc*>(att), workspace, dtype, d, s);
  });
}

int backward(int dtype, const void* q, const void* k, const void* v,
             const void* att, const void* dout, void* dq, void* dk, void* dv,
             void* scratch, void* workspace, const Shape& d, void* stream,
             int design, int device) {
  const DeviceGuard guard(device);
  CCA_TRY(guard.error());
  auto s = static_cast<cudaStream_t>(stream);
  if (design == kSimt) {
    return with_simt_types(dtype, [&](auto kind) {
      using T = typename decltype(kind)::Type;
      using Acc = typename decltype(kind)::Arg;
      return simt_backward<T, Acc>(
          static_cast<const T*>(q), static_cast<const T*>(k),
          static_cast<const T*>(v), static_cast<const Acc*>(att),
          static_cast<const T*>(dout), static_cast<T*>(dq),
          static_cast<T*>(dk), static_cast<T*>(dv),
          static_cast<Acc*>(scratch), d, s);
    });
  }
  if (design < 0 || design >= kNumDesigns) return cudaErrorInvalidValue;
  return with_tiled_types(dtype, design, [&](auto kind) {
    using T = typename decltype(kind)::Type;
    constexpr int kMath = decltype(kind)::Arg::value;
    using Acc = typename tiled::Config<T, kMath>::Acc;
    return tiled_backward<T, kMath>(
        static_cast<const T*>(q), static_cast<const T*>(k),
        static_cast<const T*>(v), static_cast<const Acc*>(att),
        static_cast<const T*>(dout), static_cast<T*>(dq),
        static_cast<T*>(dk), static_cast<T*>(dv),
        static_cast<Acc*>(scratch), workspace, dtype, d, s);
  });
}

const char* error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace cuda
}  // namespace cca

// Host launchers of the CUDA kernels (cca_cuda.cuh) behind the plain entry
// points of cca_cuda.h. No Paddle header: nvcc builds this file alone, for
// the Paddle operator and for benchmarks/gpu (which also calls these).
#include "cca_cuda.cuh"
#include "cca_cuda.h"

namespace cca {
namespace cuda {
namespace {

using cuda_kernels::Operand;
using cuda_kernels::ProductArgs;

template <typename... Args>
void launch(void (*kernel)(Args...), dim3 grid, dim3 block,
            cudaStream_t stream, Args... args) {
#ifdef CCA_CUDA_EMULATION
  emulate_launch(kernel, grid, block, args...);
#else
  kernel<<<grid, block, 0, stream>>>(args...);
#endif
}

// Strides of one NCHW tensor with `ch` channels, read as (index0, index1)
// matrices batched over (b, h) or over b alone.
struct Planes {
  const Shape& d;
  int64_t hw() const { return d.H * d.W; }
  int64_t att_item() const { return d.H * d.P() * d.W; }  // per batch item
  int64_t att_row() const { return d.P() * d.W; }         // per pixel row
};

template <typename TA, typename TB, typename TC, typename Acc>
void lane_gemm(ProductArgs g, cudaStream_t stream) {
  using namespace cuda_kernels;
  const int64_t n_tiles = (g.N + kRN - 1) / kRN;
  dim3 grid((g.lanes + kLaneThreads - 1) / kLaneThreads,
            (g.M + kRM - 1) / kRM, g.batch * n_tiles);
  launch(lane_gemm_kernel<TA, TB, TC, Acc>, grid,
         dim3(kLaneThreads, kSplit), stream, g);
}

template <typename TA, typename TB, typename TC, typename Acc>
void gemm(ProductArgs g, cudaStream_t stream) {
  using namespace cuda_kernels;
  dim3 grid((g.N + kTile - 1) / kTile, (g.M + kTile - 1) / kTile, g.batch);
  launch(gemm_kernel<TA, TB, TC, Acc>, grid, dim3(256), stream, g);
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

template <typename T, typename Acc>
int forward_impl(const T* q, const T* k, const T* v, T* out, Acc* att,
                 const Shape& d, cudaStream_t s) {
  const Planes p{d};
  const int64_t hw = p.hw(), W = d.W, H = d.H, qi = d.Cq * hw, vi = d.C * hw;
  const int64_t ai = p.att_item(), ar = p.att_row();
  // Column energies E(h, i) = sum_c q(c, h) k(c, i), into att[b, h, i, w].
  lane_gemm<T, T, Acc, Acc>(column(d, {q, hw, W, qi, 0}, {k, hw, W, qi, 0},
                                   att, ar, W, ai, H, H, d.Cq, false), s);
  // Row energies E(j, w) = sum_c k(c, h, j) q(c, h, w), into p = H + j.
  gemm<T, T, Acc, Acc>(row(d, {k, 1, hw, qi, W}, {q, hw, 1, qi, W},
                           att + H * W, W, 1, ai, ar, W, W, d.Cq), s);
  launch(cuda_kernels::softmax_kernel<Acc>, dim3((W + 127) / 128, H, d.B),
         dim3(128), s, att, H, W);
  // Row half: out(c, w) = sum_j v(c, h, j) A(h, H + j, w).
  gemm<T, Acc, T, Acc>(row(d, {v, hw, 1, vi, W}, {att + H * W, W, 1, ai, ar},
                           out, hw, 1, vi, W, d.C, W, W), s);
  // Column half: out(c, h) += sum_i v(c, i) A(h, i).
  lane_gemm<T, Acc, T, Acc>(column(d, {v, W, hw, vi, 0}, {att, W, ar, ai, 0},
                                   out, hw, W, vi, d.C, H, H, true), s);
  return cudaGetLastError();
}

template <typename T, typename Acc>
int backward_impl(const T* q, const T* k, const T* v, const Acc* att,
                  const T* g, T* dq, T* dk, T* dv, Acc* de, const Shape& d,
                  cudaStream_t s) {
  const Planes p{d};
  const int64_t hw = p.hw(), W = d.W, H = d.H, qi = d.Cq * hw, vi = d.C * hw;
  const int64_t ai = p.att_item(), ar = p.att_row();
  const Acc* att_row = att + H * W;
  Acc* de_row = de + H * W;
  // dA = dout . v along columns and rows, then dE = softmax'(dA) in place.
  lane_gemm<T, T, Acc, Acc>(column(d, {g, hw, W, vi, 0}, {v, hw, W, vi, 0},
                                   de, ar, W, ai, H, H, d.C, false), s);
  gemm<T, T, Acc, Acc>(row(d, {v, 1, hw, vi, W}, {g, hw, 1, vi, W}, de_row,
                           W, 1, ai, ar, W, W, d.C), s);
  launch(cuda_kernels::softmax_backward_kernel<Acc>,
         dim3((W + 127) / 128, H, d.B), dim3(128), s, att, de, H, W);
  // Row halves (set): dq(c, w) = sum_j k(c, h, j) dE(h, H + j, w);
  // dk(c, j) = sum_w q(c, h, w) dE(h, H + j, w); dv likewise with dout, A.
  gemm<T, Acc, T, Acc>(row(d, {k, hw, 1, qi, W}, {de_row, W, 1, ai, ar}, dq,
                           hw, 1, qi, W, d.Cq, W, W), s);
  gemm<T, Acc, T, Acc>(row(d, {q, hw, 1, qi, W}, {de_row, 1, W, ai, ar}, dk,
                           hw, 1, qi, W, d.Cq, W, W), s);
  gemm<T, Acc, T, Acc>(row(d, {g, hw, 1, vi, W}, {att_row, 1, W, ai, ar}, dv,
                           hw, 1, vi, W, d.C, W, W), s);
  // Column halves (added): dq(c, h) += sum_i k(c, i) dE(h, i);
  // dk(c, i) += sum_h q(c, h) dE(h, i); dv(c, i) += sum_h dout(c, h) A(h, i).
  lane_gemm<T, Acc, T, Acc>(column(d, {k, W, hw, qi, 0}, {de, W, ar, ai, 0},
                                   dq, hw, W, qi, d.Cq, H, H, true), s);
  lane_gemm<T, Acc, T, Acc>(column(d, {q, W, hw, qi, 0}, {de, ar, W, ai, 0},
                                   dk, hw, W, qi, d.Cq, H, H, true), s);
  lane_gemm<T, Acc, T, Acc>(column(d, {g, W, hw, vi, 0}, {att, ar, W, ai, 0},
                                   dv, hw, W, vi, d.C, H, H, true), s);
  return cudaGetLastError();
}

}  // namespace

int forward(int dtype, const void* q, const void* k, const void* v, void* out,
            void* att, const Shape& d, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
#define CCA_FORWARD(CODE, T, ACC)                                     \
  case CODE:                                                          \
    return forward_impl<T, ACC>(                                      \
        static_cast<const T*>(q), static_cast<const T*>(k),           \
        static_cast<const T*>(v), static_cast<T*>(out),               \
        static_cast<ACC*>(att), d, s);
    CCA_FORWARD(kFloat32, float, float)
#ifndef CCA_CUDA_EMULATION
    CCA_FORWARD(kFloat16, __half, float)
    CCA_FORWARD(kBFloat16, __nv_bfloat16, float)
#endif
    CCA_FORWARD(kFloat64, double, double)
#undef CCA_FORWARD
  }
  return cudaErrorInvalidValue;
}

int backward(int dtype, const void* q, const void* k, const void* v,
             const void* att, const void* dout, void* dq, void* dk, void* dv,
             void* scratch, const Shape& d, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
#define CCA_BACKWARD(CODE, T, ACC)                                    \
  case CODE:                                                          \
    return backward_impl<T, ACC>(                                     \
        static_cast<const T*>(q), static_cast<const T*>(k),           \
        static_cast<const T*>(v), static_cast<const ACC*>(att),       \
        static_cast<const T*>(dout), static_cast<T*>(dq),             \
        static_cast<T*>(dk), static_cast<T*>(dv),                     \
        static_cast<ACC*>(scratch), d, s);
    CCA_BACKWARD(kFloat32, float, float)
#ifndef CCA_CUDA_EMULATION
    CCA_BACKWARD(kFloat16, __half, float)
    CCA_BACKWARD(kBFloat16, __nv_bfloat16, float)
#endif
    CCA_BACKWARD(kFloat64, double, double)
#undef CCA_BACKWARD
  }
  return cudaErrorInvalidValue;
}

const char* error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace cuda
}  // namespace cca

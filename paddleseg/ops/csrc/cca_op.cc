// Paddle binding of the criss-cross attention operator: input checks, output
// allocation, dispatch to the CPU (cca_cpu.h) or CUDA (cca_cuda.h) kernels.
//
//   paddleseg_cca(Query, Key, Value) -> (Out, Att)
//   paddleseg_cca_grad(Query, Key, Value, Att, Out@GRAD)
//       -> (Query@GRAD, Key@GRAD, Value@GRAD)
// Att is the attention kept for the backward pass (layout: cca_shape.h).
#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "paddle/extension.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "cca_cpu.h"
#ifdef PADDLE_WITH_CUDA
#include "cca_cuda.h"  // Paddle-free; its arithmetic in cca_cuda_launch.h
#include "paddle/phi/core/cuda_stream.h"  // phi::CUDAStream::raw_stream
#endif

// Like PD_CHECK, but the message also goes to stderr: Paddle's static
// executor and Paddle Inference rethrow a custom op's exception as a bare
// "std::exception", so the printed line is all the user would see.
#define CCA_CHECK(COND, ...)                                            \
  do {                                                                  \
    if (!(COND)) {                                                      \
      const std::string msg = ::common::ErrorMessage(__VA_ARGS__).to_string(); \
      std::cerr << msg << std::endl;                                    \
      PD_THROW(msg);                                                    \
    }                                                                   \
  } while (0)

namespace {

std::string dims_str(const std::vector<int64_t>& dims) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? ", " : "") << dims[i];
  return s.str() + "]";
}

void check_tensor(const paddle::Tensor& x, const char* name,
                  const paddle::Tensor& query) {
  CCA_CHECK(x.is_dense_tensor(), "criss_cross_attention: ", name,
            " must be a dense tensor.");
  CCA_CHECK(x.layout() != phi::DataLayout::ONEDNN, "criss_cross_attention: ",
            name, " arrived in oneDNN's blocked layout, which this operator ",
            "cannot read; run the model with oneDNN disabled ",
            "(paddle.inference.Config.disable_onednn()).");
  CCA_CHECK(x.shape().size() == 4, "criss_cross_attention: ", name,
            " must be 4-D (N, C, H, W), got shape ", dims_str(x.shape()), ".");
  CCA_CHECK(x.place() == query.place(), "criss_cross_attention: ", name,
            " is on ", x.place().DebugString(), " but query is on ",
            query.place().DebugString(), "; move them to one device.");
  CCA_CHECK(x.dtype() == query.dtype(), "criss_cross_attention: ", name,
            " has dtype ", phi::DataTypeToString(x.dtype()),
            " but query has ", phi::DataTypeToString(query.dtype()),
            "; cast them to one dtype.");
  CCA_CHECK(x.is_contiguous(), "criss_cross_attention: ", name,
            " must be contiguous NCHW; call .contiguous() first.");
}

cca::Shape check_inputs(const paddle::Tensor& q, const paddle::Tensor& k,
                        const paddle::Tensor& v) {
  check_tensor(q, "query", q);
  check_tensor(k, "key", q);
  check_tensor(v, "value", q);
  const auto &qs = q.shape(), &ks = k.shape(), &vs = v.shape();
  CCA_CHECK(qs == ks, "criss_cross_attention: key shape ", dims_str(ks),
            " must equal query shape ", dims_str(qs), ".");
  CCA_CHECK(vs[0] == qs[0] && vs[2] == qs[2] && vs[3] == qs[3],
            "criss_cross_attention: value shape ", dims_str(vs),
            " must match query shape ", dims_str(qs), " in N, H and W.");
  return cca::Shape{qs[0], qs[1], vs[1], qs[2], qs[3]};
}

bool is_half(paddle::DataType t) {
  return t == paddle::DataType::FLOAT16 || t == paddle::DataType::BFLOAT16;
}

paddle::DataType att_dtype(paddle::DataType t) {
  return is_half(t) ? paddle::DataType::FLOAT32 : t;
}

#ifdef PADDLE_WITH_CUDA
// The GPU side of the binding: the dtype by name through the Paddle-free
// table (anything but the four float types is refused, never reinterpreted),
// the stream and device of the tensor itself (Tensor::stream() is the
// current device's), the design's workspace. The kernels skip empty grids,
// so C = 0 or Cq = 0 needs no case here.
int cuda_dtype(const paddle::Tensor& q) {
  const std::string name = phi::DataTypeToString(q.dtype());
  const int code = cca::cuda::dtype_code(name.c_str());
  CCA_CHECK(code >= 0, "criss_cross_attention on GPU supports float16, ",
            "bfloat16, float32 and float64, got ", name, "; cast the inputs.");
  return code;
}

struct CudaCall {
  int dtype, device;
  void* stream;
  paddle::Tensor workspace;
};

CudaCall cuda_call(const paddle::Tensor& q, const cca::Shape& d,
                   bool backward) {
  const int code = cuda_dtype(q);
  const int64_t bytes = cca::cuda::workspace_bytes(
      d, code, cca::cuda::kDefaultDesign, backward);
  return CudaCall{code, q.place().GetDeviceId(),
                  paddle::GetCurrentCUDAStream(q.place())->raw_stream(),
                  paddle::empty({std::max<int64_t>(bytes, 1)},
                                paddle::DataType::UINT8, q.place())};
}

void check_cuda(int code) {
  CCA_CHECK(code == 0, "criss_cross_attention CUDA kernel failed: ",
            cca::cuda::error_string(code), ".");
}
#endif

// Asks Linux to back a fresh CPU output with 2 MiB pages before the kernel
// first writes it. Paddle's allocator returns large blocks to the system,
// so every call faults its outputs in again: measured here, 38 MiB take
// 27 ms in 4 KiB pages and 5 ms in 2 MiB pages, and one forward+backward
// at (2, 512, 97, 97) drops from 36k to 12k page faults. Advisory only: it
// changes no data and no ownership.
void prefer_huge_pages(void* data, int64_t bytes) {
#ifdef __linux__
  const uintptr_t huge = uintptr_t(2) << 20;
  if (bytes < int64_t(2 * huge)) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + huge - 1) & ~(huge - 1);
  const uintptr_t last = (begin + uintptr_t(bytes)) & ~(huge - 1);
  if (last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
}

template <typename T>
void prefer_huge_pages(paddle::Tensor& t) {
  prefer_huge_pages(t.data<T>(), t.numel() * int64_t(sizeof(T)));
}

void check_cpu_dtype(const paddle::Tensor& q) {
  CCA_CHECK(q.dtype() == paddle::DataType::FLOAT32 ||
            q.dtype() == paddle::DataType::FLOAT64,
            "criss_cross_attention on CPU supports float32 and float64, got ",
            phi::DataTypeToString(q.dtype()), "; cast the inputs.");
}

}  // namespace

std::vector<paddle::Tensor> CcaForward(const paddle::Tensor& q,
                                       const paddle::Tensor& k,
                                       const paddle::Tensor& v) {
  const cca::Shape d = check_inputs(q, k, v);
  if (!q.is_gpu()) check_cpu_dtype(q);
#ifdef PADDLE_WITH_CUDA
  if (q.is_gpu()) cuda_dtype(q);  // refuse before allocating
#endif
  auto out = paddle::empty({d.B, d.C, d.H, d.W}, v.dtype(), v.place());
  auto att = paddle::empty({d.B, d.chunks(), d.H, d.P(), cca::kLanes},
                           att_dtype(q.dtype()), q.place());
  if (d.B * d.H * d.W == 0) return {out, att};
#ifdef PADDLE_WITH_CUDA
  if (q.is_gpu()) {
    CudaCall c = cuda_call(q, d, false);
    check_cuda(cca::cuda::forward(c.dtype, q.data(), k.data(), v.data(),
                                  out.data(), att.data(), c.workspace.data(),
                                  d, c.stream, cca::cuda::kDefaultDesign,
                                  c.device));
    return {out, att};
  }
#endif
  const int threads = cca::max_threads();
  auto ws = paddle::empty({cca::workspace_size(d, threads)}, q.dtype(),
                          q.place());
  PD_DISPATCH_FLOATING_TYPES(q.type(), "criss_cross_attention", ([&] {
    for (auto* t : {&out, &att, &ws}) prefer_huge_pages<data_t>(*t);
    cca::forward<data_t>(q.data<data_t>(), k.data<data_t>(), v.data<data_t>(),
                         out.data<data_t>(), att.data<data_t>(), d,
                         ws.data<data_t>(), threads);
  }));
  return {out, att};
}

std::vector<paddle::Tensor> CcaBackward(const paddle::Tensor& q,
                                        const paddle::Tensor& k,
                                        const paddle::Tensor& v,
                                        const paddle::Tensor& att,
                                        const paddle::Tensor& dout) {
  const cca::Shape d = check_inputs(q, k, v);
  CCA_CHECK(dout.shape() == v.shape() && dout.dtype() == v.dtype() &&
            dout.is_contiguous(),
            "criss_cross_attention: the output gradient must be a contiguous ",
            "tensor shaped and typed like value.");
  if (!q.is_gpu()) check_cpu_dtype(q);
#ifdef PADDLE_WITH_CUDA
  if (q.is_gpu()) cuda_dtype(q);
#endif
  auto dq = paddle::empty(q.shape(), q.dtype(), q.place());
  auto dk = paddle::empty(k.shape(), k.dtype(), k.place());
  auto dv = paddle::empty(v.shape(), v.dtype(), v.place());
  auto scratch = paddle::empty({d.att_size()}, att.dtype(), q.place());
  if (d.B * d.H * d.W == 0) return {dq, dk, dv};
#ifdef PADDLE_WITH_CUDA
  if (q.is_gpu()) {
    CudaCall c = cuda_call(q, d, true);
    check_cuda(cca::cuda::backward(
        c.dtype, q.data(), k.data(), v.data(), att.data(), dout.data(),
        dq.data(), dk.data(), dv.data(), scratch.data(), c.workspace.data(),
        d, c.stream, cca::cuda::kDefaultDesign, c.device));
    return {dq, dk, dv};
  }
#endif
  const int threads = cca::max_threads();
  auto ws = paddle::empty({cca::workspace_size(d, threads)}, q.dtype(),
                          q.place());
  PD_DISPATCH_FLOATING_TYPES(q.type(), "criss_cross_attention_grad", ([&] {
    for (auto* t : {&dq, &dk, &dv, &scratch, &ws}) {
      prefer_huge_pages<data_t>(*t);
    }
    cca::backward<data_t>(q.data<data_t>(), k.data<data_t>(),
                          v.data<data_t>(), att.data<data_t>(),
                          dout.data<data_t>(), dq.data<data_t>(),
                          dk.data<data_t>(), dv.data<data_t>(),
                          scratch.data<data_t>(), d, ws.data<data_t>(),
                          threads);
  }));
  return {dq, dk, dv};
}

std::vector<std::vector<int64_t>> CcaInferShape(
    const std::vector<int64_t>& q, const std::vector<int64_t>& k,
    const std::vector<int64_t>& v) {
  CCA_CHECK(q.size() == 4 && k.size() == 4 && v.size() == 4,
            "criss_cross_attention: query, key and value must be 4-D (N, C, ",
            "H, W), got ", dims_str(q), ", ", dims_str(k), ", ", dims_str(v),
            ".");
  const int64_t H = q[2], W = q[3];
  const bool known = H >= 0 && W >= 0;
  return {{q[0], v[1], H, W},
          {q[0], W >= 0 ? (W + cca::kLanes - 1) / cca::kLanes : -1, H,
           known ? H + W : -1, cca::kLanes}};
}

std::vector<paddle::DataType> CcaInferDtype(paddle::DataType q,
                                            paddle::DataType k,
                                            paddle::DataType v) {
  return {v, att_dtype(q)};
}

PD_BUILD_OP(paddleseg_cca)
    .Inputs({"Query", "Key", "Value"})
    .Outputs({"Out", "Att"})
    .SetKernelFn(PD_KERNEL(CcaForward))
    .SetInferShapeFn(PD_INFER_SHAPE(CcaInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(CcaInferDtype));

PD_BUILD_GRAD_OP(paddleseg_cca)
    .Inputs({"Query", "Key", "Value", "Att", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Query"), paddle::Grad("Key"),
              paddle::Grad("Value")})
    .SetKernelFn(PD_KERNEL(CcaBackward));

// PyTorch binding of the CUDA kernels in paddleseg/ops/csrc (cca_cuda.cu),
// so a machine with a GPU but no Paddle GPU build can check and time them.
// Thin on purpose: checks, allocation and the call; no math here.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "cca_cuda.h"

namespace {

int dtype_code(const torch::Tensor& x) {
  switch (x.scalar_type()) {
    case torch::kFloat: return cca::cuda::kFloat32;
    case torch::kHalf: return cca::cuda::kFloat16;
    case torch::kBFloat16: return cca::cuda::kBFloat16;
    case torch::kDouble: return cca::cuda::kFloat64;
    default: TORCH_CHECK(false, "cca: unsupported dtype ", x.scalar_type());
  }
  return -1;
}

cca::Shape check(const torch::Tensor& q, const torch::Tensor& k,
                 const torch::Tensor& v) {
  for (const auto* x : {&q, &k, &v}) {
    TORCH_CHECK(x->is_cuda() && x->is_contiguous() && x->dim() == 4,
                "cca: inputs must be contiguous 4-D CUDA tensors");
    TORCH_CHECK(x->scalar_type() == q.scalar_type(), "cca: dtypes differ");
  }
  TORCH_CHECK(q.sizes() == k.sizes(), "cca: key shape must equal query's");
  TORCH_CHECK(v.size(0) == q.size(0) && v.size(2) == q.size(2) &&
                  v.size(3) == q.size(3),
              "cca: value must match query in N, H and W");
  return cca::Shape{q.size(0), q.size(1), v.size(1), q.size(2), q.size(3)};
}

torch::ScalarType acc_type(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

void* stream() { return at::cuda::getCurrentCUDAStream().stream(); }

}  // namespace

std::vector<torch::Tensor> forward(torch::Tensor q, torch::Tensor k,
                                   torch::Tensor v) {
  const cca::Shape d = check(q, k, v);
  auto out = torch::empty_like(v);
  auto att = torch::empty({d.att_size()}, q.options().dtype(acc_type(q)));
  const int code = cca::cuda::forward(dtype_code(q), q.data_ptr(),
                                      k.data_ptr(), v.data_ptr(),
                                      out.data_ptr(), att.data_ptr(), d,
                                      stream());
  TORCH_CHECK(code == 0, "cca forward: ", cca::cuda::error_string(code));
  return {out, att};
}

std::vector<torch::Tensor> backward(torch::Tensor q, torch::Tensor k,
                                    torch::Tensor v, torch::Tensor att,
                                    torch::Tensor dout) {
  const cca::Shape d = check(q, k, v);
  dout = dout.contiguous();
  auto dq = torch::empty_like(q), dk = torch::empty_like(k);
  auto dv = torch::empty_like(v), scratch = torch::empty_like(att);
  const int code = cca::cuda::backward(
      dtype_code(q), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      att.data_ptr(), dout.data_ptr(), dq.data_ptr(), dk.data_ptr(),
      dv.data_ptr(), scratch.data_ptr(), d, stream());
  TORCH_CHECK(code == 0, "cca backward: ", cca::cuda::error_string(code));
  return {dq, dk, dv};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "criss-cross attention forward");
  m.def("backward", &backward, "criss-cross attention backward");
}

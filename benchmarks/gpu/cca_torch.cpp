// PyTorch binding of the CUDA kernels in paddleseg/ops/csrc (cca_cuda.cu),
// so a machine with a GPU but no Paddle GPU build can check and time them.
// Thin on purpose: checks, allocation and the call; no math here. The
// dtype goes through the kernels' own name table (cca_cuda_launch.h), the
// launches go to the current stream of the inputs' own device.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cca_cuda.h"

namespace {

const char* dtype_name(const torch::Tensor& x) {
  switch (x.scalar_type()) {
    case torch::kFloat: return "float32";
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kDouble: return "float64";
    default: return "unsupported";
  }
}

int dtype_code(const torch::Tensor& x) {
  const int code = cca::cuda::dtype_code(dtype_name(x));
  TORCH_CHECK(code >= 0, "cca: unsupported dtype ", x.scalar_type());
  return code;
}

cca::Shape check(const torch::Tensor& q, const torch::Tensor& k,
                 const torch::Tensor& v, int design) {
  for (const auto* x : {&q, &k, &v}) {
    TORCH_CHECK(x->is_cuda() && x->is_contiguous() && x->dim() == 4,
                "cca: inputs must be contiguous 4-D CUDA tensors");
    TORCH_CHECK(x->scalar_type() == q.scalar_type(), "cca: dtypes differ");
    TORCH_CHECK(x->device() == q.device(), "cca: devices differ");
  }
  TORCH_CHECK(q.sizes() == k.sizes(), "cca: key shape must equal query's");
  TORCH_CHECK(v.size(0) == q.size(0) && v.size(2) == q.size(2) &&
                  v.size(3) == q.size(3),
              "cca: value must match query in N, H and W");
  TORCH_CHECK(design >= 0 && design < cca::cuda::kNumDesigns,
              "cca: unknown design ", design);
  return cca::Shape{q.size(0), q.size(1), v.size(1), q.size(2), q.size(3)};
}

torch::ScalarType acc_type(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

void* stream_of(const torch::Tensor& x) {
  return at::cuda::getCurrentCUDAStream(x.get_device()).stream();
}

torch::Tensor workspace(const torch::Tensor& q, const cca::Shape& d,
                        int design, bool backward, bool poison) {
  const int64_t bytes = cca::cuda::workspace_bytes(d, dtype_code(q), design,
                                                   backward);
  auto ws = torch::empty({std::max<int64_t>(bytes, 16)},
                         q.options().dtype(torch::kUInt8));
  if (poison) ws.fill_(255);  // all-ones bytes: NaN in every float type
  return ws;
}

}  // namespace

// Returns (out, att). With poison, every output starts as NaN.
std::vector<torch::Tensor> forward(torch::Tensor q, torch::Tensor k,
                                   torch::Tensor v, int64_t design,
                                   bool poison) {
  const cca::Shape d = check(q, k, v, int(design));
  auto out = torch::empty_like(v);
  auto att = torch::empty({d.att_size()}, q.options().dtype(acc_type(q)));
  auto ws = workspace(q, d, int(design), false, poison);
  if (poison) {
    out.fill_(NAN);
    att.fill_(NAN);
  }
  const int code = cca::cuda::forward(
      dtype_code(q), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      out.data_ptr(), att.data_ptr(), ws.data_ptr(), d, stream_of(q),
      int(design), q.get_device());
  TORCH_CHECK(code == 0, "cca forward: ", cca::cuda::error_string(code));
  return {out, att};
}

std::vector<torch::Tensor> backward(torch::Tensor q, torch::Tensor k,
                                    torch::Tensor v, torch::Tensor att,
                                    torch::Tensor dout, int64_t design,
                                    bool poison) {
  const cca::Shape d = check(q, k, v, int(design));
  dout = dout.contiguous();
  auto dq = torch::empty_like(q), dk = torch::empty_like(k);
  auto dv = torch::empty_like(v), scratch = torch::empty_like(att);
  auto ws = workspace(q, d, int(design), true, poison);
  if (poison) {
    for (auto* t : {&dq, &dk, &dv, &scratch}) t->fill_(NAN);
  }
  const int code = cca::cuda::backward(
      dtype_code(q), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      att.data_ptr(), dout.data_ptr(), dq.data_ptr(), dk.data_ptr(),
      dv.data_ptr(), scratch.data_ptr(), ws.data_ptr(), d, stream_of(q),
      int(design), q.get_device());
  TORCH_CHECK(code == 0, "cca backward: ", cca::cuda::error_string(code));
  return {dq, dk, dv};
}

int64_t design_code(const std::string& name) {
  return cca::cuda::design_code(name.c_str());
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "criss-cross attention forward");
  m.def("backward", &backward, "criss-cross attention backward");
  m.def("design_code", &design_code, "code of a kernel design name");
}

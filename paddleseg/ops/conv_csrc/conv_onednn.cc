// Training-time 2-D convolution on the CPU through oneDNN, the library the
// Paddle CPU wheel ships (paddle/libs/libdnnl.so.3) and uses for inference.
// In eager mode Paddle 3.3 computes conv2d and its gradients by im2col and
// MKL GEMM instead, at a third to a half of the GEMM rate on the small
// feature maps of a segmentation backbone (benchmarks/conv_onednn.py).
//
//   paddleseg_conv2d(X, W) -> (Out)              attrs strides, paddings,
//   paddleseg_conv2d_grad(X, W, Out@GRAD)         dilations (2 ints each)
//       -> (X@GRAD, W@GRAD)
//
// float32, NCHW, groups 1, no bias (the caller adds it). Reference: Paddle's
// own paddle.nn.functional.conv2d, which tests/ops/test_conv_onednn.py
// compares forward and backward against. Tensors stay plain NCHW / OIHW
// outside; inside, oneDNN picks its blocked formats (format_tag::any) and
// the data is reordered in and out, which costs far less than the im2col it
// replaces. The primitive descriptors of each shape are kept in a cache
// (creating one JIT-compiles kernels).
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "paddle/extension.h"

namespace {

using dnnl::memory;
using Dims = memory::dims;

struct Geometry {
  Dims src, wei, dst, strides, dilations, padding;
};

std::string dims_str(const std::vector<int64_t>& dims) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? ", " : "") << dims[i];
  return s.str() + "]";
}

int64_t out_size(int64_t in, int64_t k, int stride, int pad, int dil) {
  return (in + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
}

Geometry geometry(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                  const std::vector<int>& strides,
                  const std::vector<int>& paddings,
                  const std::vector<int>& dilations) {
  PD_CHECK(x.size() == 4 && w.size() == 4, "paddleseg_conv2d: input ",
           dims_str(x), " and weight ", dims_str(w), " must be 4-D.");
  PD_CHECK(strides.size() == 2 && paddings.size() == 2 &&
               dilations.size() == 2,
           "paddleseg_conv2d: strides, paddings and dilations take 2 values.");
  PD_CHECK(x[1] == w[1], "paddleseg_conv2d: input ", dims_str(x),
           " has ", x[1], " channels but the weight ", dims_str(w),
           " expects ", w[1], " (groups must be 1).");
  Geometry g;
  g.src = {x[0], x[1], x[2], x[3]};
  g.wei = {w[0], w[1], w[2], w[3]};
  g.dst = {x[0], w[0],
           out_size(x[2], w[2], strides[0], paddings[0], dilations[0]),
           out_size(x[3], w[3], strides[1], paddings[1], dilations[1])};
  PD_CHECK(g.dst[2] > 0 && g.dst[3] > 0, "paddleseg_conv2d: input ",
           dims_str(x), " is smaller than the kernel ", dims_str(w), ".");
  g.strides = {strides[0], strides[1]};
  // oneDNN counts dilation from 0 (no gaps), Paddle from 1.
  g.dilations = {dilations[0] - 1, dilations[1] - 1};
  g.padding = {paddings[0], paddings[1]};
  return g;
}

struct Primitives {
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights;
  dnnl::convolution_forward fwd_prim;
  dnnl::convolution_backward_data bwd_data_prim;
  dnnl::convolution_backward_weights bwd_weights_prim;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The primitives of one geometry, built on first use.
const Primitives& primitives(const Geometry& g) {
  static std::mutex mutex;
  static std::map<std::vector<int64_t>, std::unique_ptr<Primitives>> cache;
  std::vector<int64_t> key;
  for (const Dims* d : {&g.src, &g.wei, &g.strides, &g.dilations, &g.padding})
    key.insert(key.end(), d->begin(), d->end());
  std::lock_guard<std::mutex> lock(mutex);
  auto& entry = cache[key];
  if (!entry) {
    auto& eng = cpu_engine();
    const auto any = memory::format_tag::any;
    const auto f32 = memory::data_type::f32;
    memory::desc src(g.src, f32, any), wei(g.wei, f32, any),
        dst(g.dst, f32, any);
    auto algo = dnnl::algorithm::convolution_direct;
    auto p = std::make_unique<Primitives>();
    p->fwd = dnnl::convolution_forward::primitive_desc(
        eng, dnnl::prop_kind::forward_training, algo, src, wei, dst,
        g.strides, g.dilations, g.padding, g.padding);
    p->bwd_data = dnnl::convolution_backward_data::primitive_desc(
        eng, algo, src, wei, dst, g.strides, g.dilations, g.padding,
        g.padding, p->fwd);
    p->bwd_weights = dnnl::convolution_backward_weights::primitive_desc(
        eng, algo, src, wei, dst, g.strides, g.dilations, g.padding,
        g.padding, p->fwd);
    p->fwd_prim = dnnl::convolution_forward(p->fwd);
    p->bwd_data_prim = dnnl::convolution_backward_data(p->bwd_data);
    p->bwd_weights_prim = dnnl::convolution_backward_weights(p->bwd_weights);
    entry = std::move(p);
  }
  return *entry;
}

// A plain NCHW (or OIHW) view of a tensor's data.
memory plain(const Dims& dims, const float* data) {
  memory::desc d(dims, memory::data_type::f32, memory::format_tag::abcd);
  return memory(d, cpu_engine(), const_cast<float*>(data));
}

// ``user`` in the format ``want``: itself when it already is, else a copy.
memory to_format(const memory& user, const memory::desc& want,
                 dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  memory out(want, cpu_engine());
  dnnl::reorder(user, out).execute(s, const_cast<memory&>(user), out);
  return out;
}

// Where a primitive writes a result of format ``want``: the plain ``user``
// itself when the formats agree, else a scratch buffer for from_format.
memory result_in(const memory::desc& want, const memory& user) {
  return want == user.get_desc() ? user : memory(want, cpu_engine());
}

// Writes ``result`` into ``user`` (plain) unless it is ``user`` already.
void from_format(memory& result, memory& user, dnnl::stream& s) {
  if (result.get_data_handle() == user.get_data_handle()) return;
  dnnl::reorder(result, user).execute(s, result, user);
}

void check_input(const paddle::Tensor& t, const char* name) {
  PD_CHECK(t.is_cpu(), "paddleseg_conv2d: ", name, " must be on the CPU.");
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, "paddleseg_conv2d: ",
           name, " must be float32.");
  PD_CHECK(t.shape().size() == 4, "paddleseg_conv2d: ", name,
           " must be 4-D, got ", dims_str(t.shape()), ".");
}

paddle::Tensor dense(const paddle::Tensor& t) {
  return t.is_contiguous() ? t : t.contiguous();
}

}  // namespace

std::vector<paddle::Tensor> ConvForward(const paddle::Tensor& x_in,
                                        const paddle::Tensor& w_in,
                                        const std::vector<int>& strides,
                                        const std::vector<int>& paddings,
                                        const std::vector<int>& dilations) {
  check_input(x_in, "input");
  check_input(w_in, "weight");
  auto x = dense(x_in), w = dense(w_in);
  Geometry g = geometry(x.shape(), w.shape(), strides, paddings, dilations);
  const Primitives& p = primitives(g);
  auto out = paddle::empty(std::vector<int64_t>(g.dst.begin(), g.dst.end()),
                           paddle::DataType::FLOAT32, paddle::CPUPlace());
  dnnl::stream s(cpu_engine());
  memory x_user = plain(g.src, x.data<float>());
  memory w_user = plain(g.wei, w.data<float>());
  memory out_user = plain(g.dst, out.data<float>());
  memory xs = to_format(x_user, p.fwd.src_desc(), s);
  memory ws = to_format(w_user, p.fwd.weights_desc(), s);
  memory ys = result_in(p.fwd.dst_desc(), out_user);
  p.fwd_prim.execute(s, {{DNNL_ARG_SRC, xs},
                         {DNNL_ARG_WEIGHTS, ws},
                         {DNNL_ARG_DST, ys}});
  from_format(ys, out_user, s);
  s.wait();
  return {out};
}

std::vector<paddle::Tensor> ConvBackward(const paddle::Tensor& x_in,
                                         const paddle::Tensor& w_in,
                                         const paddle::Tensor& dy_in,
                                         const std::vector<int>& strides,
                                         const std::vector<int>& paddings,
                                         const std::vector<int>& dilations) {
  check_input(dy_in, "output gradient");
  auto x = dense(x_in), w = dense(w_in), dy = dense(dy_in);
  Geometry g = geometry(x.shape(), w.shape(), strides, paddings, dilations);
  PD_CHECK(dy.shape() == std::vector<int64_t>(g.dst.begin(), g.dst.end()),
           "paddleseg_conv2d_grad: output gradient ", dims_str(dy.shape()),
           " does not match the output ", dims_str(g.dst), ".");
  const Primitives& p = primitives(g);
  auto dx = paddle::empty(x.shape(), paddle::DataType::FLOAT32,
                          paddle::CPUPlace());
  auto dw = paddle::empty(w.shape(), paddle::DataType::FLOAT32,
                          paddle::CPUPlace());
  dnnl::stream s(cpu_engine());
  memory dy_user = plain(g.dst, dy.data<float>());
  memory x_user = plain(g.src, x.data<float>());
  memory w_user = plain(g.wei, w.data<float>());
  memory dx_user = plain(g.src, dx.data<float>());
  memory dw_user = plain(g.wei, dw.data<float>());

  // Input gradient.
  memory dys = to_format(dy_user, p.bwd_data.diff_dst_desc(), s);
  memory ws = to_format(w_user, p.bwd_data.weights_desc(), s);
  memory dxs = result_in(p.bwd_data.diff_src_desc(), dx_user);
  p.bwd_data_prim.execute(s, {{DNNL_ARG_DIFF_DST, dys},
                              {DNNL_ARG_WEIGHTS, ws},
                              {DNNL_ARG_DIFF_SRC, dxs}});
  from_format(dxs, dx_user, s);

  // Weight gradient (the output gradient reordered once when both agree).
  memory dyw = p.bwd_weights.diff_dst_desc() == dys.get_desc()
                   ? dys
                   : to_format(dy_user, p.bwd_weights.diff_dst_desc(), s);
  memory xs = to_format(x_user, p.bwd_weights.src_desc(), s);
  memory dws = result_in(p.bwd_weights.diff_weights_desc(), dw_user);
  p.bwd_weights_prim.execute(s, {{DNNL_ARG_SRC, xs},
                                 {DNNL_ARG_DIFF_DST, dyw},
                                 {DNNL_ARG_DIFF_WEIGHTS, dws}});
  from_format(dws, dw_user, s);
  s.wait();
  return {dx, dw};
}

std::vector<std::vector<int64_t>> ConvInferShape(
    const std::vector<int64_t>& x, const std::vector<int64_t>& w,
    const std::vector<int>& strides, const std::vector<int>& paddings,
    const std::vector<int>& dilations) {
  Geometry g = geometry(x, w, strides, paddings, dilations);
  return {{g.dst.begin(), g.dst.end()}};
}

std::vector<paddle::DataType> ConvInferDtype(const paddle::DataType& x,
                                             const paddle::DataType& w) {
  return {x};
}

PD_BUILD_OP(paddleseg_conv2d)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .Attrs({"strides: std::vector<int>", "paddings: std::vector<int>",
            "dilations: std::vector<int>"})
    .SetKernelFn(PD_KERNEL(ConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(ConvInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(ConvInferDtype));

PD_BUILD_GRAD_OP(paddleseg_conv2d)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .Attrs({"strides: std::vector<int>", "paddings: std::vector<int>",
            "dilations: std::vector<int>"})
    .SetKernelFn(PD_KERNEL(ConvBackward));

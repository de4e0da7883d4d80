// The CUDA kernels and launchers of paddleseg/ops/csrc/cca_cuda.cu, run on
// the CPU through cuda_emulation.h, against the double-precision oracle:
// checks their indexing, strides, tile edges, shared-memory staging and
// shuffles where no GPU is available. Every output, the attention, the
// scratch and the workspace start as NaN, so a value a kernel forgets to
// write (or reads before it is written) shows. Build:
//   g++ -std=c++17 -pthread -DCCA_GRID_LIMIT_YZ=3 -include cuda_emulation.h
//       -x c++ ... this file
// (the lowered grid limit splits every launch, checking the offsets).
// Usage: cca_cuda_emulation_test B Cq C H W; prints one JSON line per
// design and dtype.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "cca_cuda.cu"  // NOLINT: the launchers themselves are under test
#include "cca_naive.h"

namespace {

template <typename T>
std::vector<T> poisoned(int64_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
void run(const cca::Shape& d, int code, int design) {
  using cca_test::Vec;
  const std::vector<Vec> xs = cca_test::random_problem(d, 1);
  std::vector<std::vector<T>> in;
  for (const auto& x : xs) in.emplace_back(x.begin(), x.end());
  auto out = poisoned<T>(xs[2].size()), dq = poisoned<T>(xs[0].size());
  auto dk = poisoned<T>(xs[1].size()), dv = poisoned<T>(xs[2].size());
  auto att = poisoned<T>(d.att_size()), de = poisoned<T>(d.att_size());
  const int64_t ws_bytes =
      std::max(cca::cuda::workspace_bytes(d, code, design, false),
               cca::cuda::workspace_bytes(d, code, design, true));
  auto ws = poisoned<T>(ws_bytes / int64_t(sizeof(T)) + 2);
  int rc = cca::cuda::forward(code, in[0].data(), in[1].data(), in[2].data(),
                              out.data(), att.data(), ws.data(), d, nullptr,
                              design);
  ws = poisoned<T>(ws.size());
  rc |= cca::cuda::backward(code, in[0].data(), in[1].data(), in[2].data(),
                            att.data(), in[3].data(), dq.data(), dk.data(),
                            dv.data(), de.data(), ws.data(), d, nullptr,
                            design);
  Vec rout(out.size()), rdq(dq.size()), rdk(dk.size()), rdv(dv.size());
  cca_test::naive(d, xs[0], xs[1], xs[2], xs[3], rout, rdq, rdk, rdv);
  char b[4][32];
  std::printf("{\"design\": \"%s\", \"dtype\": \"%s\", \"rc\": %d, "
              "\"out\": %s, \"dq\": %s, \"dk\": %s, \"dv\": %s}\n",
              cca::cuda::design_name(design),
              cca::cuda::dtype_info(code).name, rc,
              cca_test::json_number(cca_test::max_err(out, rout), b[0], 32),
              cca_test::json_number(cca_test::max_err(dq, rdq), b[1], 32),
              cca_test::json_number(cca_test::max_err(dk, rdk), b[2], 32),
              cca_test::json_number(cca_test::max_err(dv, rdv), b[3], 32));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s B Cq C H W\n", argv[0]);
    return 2;
  }
  cca::Shape d{std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]),
               std::atoll(argv[4]), std::atoll(argv[5])};
  // kTiled and kTiledScalar are the same program for float32/float64
  // (tensor cores serve float16/bfloat16 only, which are not emulated).
  for (int design : {cca::cuda::kSimt, cca::cuda::kTiled}) {
    run<float>(d, cca::cuda::kFloat32, design);
    run<double>(d, cca::cuda::kFloat64, design);
  }
  return 0;
}

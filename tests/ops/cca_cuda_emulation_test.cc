// The CUDA kernels and launchers of paddleseg/ops/csrc/cca_cuda.cu, run on
// the CPU through cuda_emulation.h, against the double-precision oracle:
// checks their indexing and strides where no GPU is available. Build:
//   g++ -std=c++17 -pthread -include cuda_emulation.h -x c++ ... this file
// Usage: cca_cuda_emulation_test B Cq C H W; prints one JSON line per dtype.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cca_cuda.cu"  // NOLINT: the launchers themselves are under test
#include "cca_naive.h"

namespace {

template <typename T>
void run(const cca::Shape& d, int code, const char* name) {
  using cca_test::Vec;
  const std::vector<Vec> xs = cca_test::random_problem(d, 1);
  std::vector<std::vector<T>> in;
  for (const auto& x : xs) in.emplace_back(x.begin(), x.end());
  std::vector<T> out(xs[2].size()), dq(xs[0].size()), dk(xs[1].size());
  std::vector<T> dv(xs[2].size()), att(d.att_size()), de(d.att_size());
  int rc = cca::cuda::forward(code, in[0].data(), in[1].data(), in[2].data(),
                              out.data(), att.data(), d, nullptr);
  rc |= cca::cuda::backward(code, in[0].data(), in[1].data(), in[2].data(),
                            att.data(), in[3].data(), dq.data(), dk.data(),
                            dv.data(), de.data(), d, nullptr);
  Vec rout(out.size()), rdq(dq.size()), rdk(dk.size()), rdv(dv.size());
  cca_test::naive(d, xs[0], xs[1], xs[2], xs[3], rout, rdq, rdk, rdv);
  std::printf("{\"dtype\": \"%s\", \"rc\": %d, \"out\": %.3g, \"dq\": %.3g, "
              "\"dk\": %.3g, \"dv\": %.3g}\n", name, rc,
              cca_test::max_err(out, rout), cca_test::max_err(dq, rdq),
              cca_test::max_err(dk, rdk), cca_test::max_err(dv, rdv));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s B Cq C H W\n", argv[0]);
    return 2;
  }
  cca::Shape d{std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]),
               std::atoll(argv[4]), std::atoll(argv[5])};
  run<float>(d, cca::cuda::kFloat32, "float32");
  run<double>(d, cca::cuda::kFloat64, "float64");
  return 0;
}

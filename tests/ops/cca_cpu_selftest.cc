// Standalone check of the CPU kernels (no Paddle): forward and backward of
// paddleseg/ops/csrc/cca_cpu.h against a direct triple-loop formula in double
// precision, on random inputs. Usage: cca_cpu_selftest B Cq C H W [repeat].
// Prints one JSON line: max errors and, with repeat > 0, timings in seconds.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cca_cpu.h"
#include "cca_naive.h"

namespace {

using cca_test::Vec;
using cca_test::max_err;

template <typename T>
std::vector<T> cast(const Vec& x) {
  return std::vector<T>(x.begin(), x.end());
}

template <typename T>
void run(const cca::Shape& d, int repeat, const char* name) {
  const int64_t att_n = d.att_size();
  const std::vector<Vec> xs = cca_test::random_problem(d, 0);
  const Vec &q = xs[0], &k = xs[1], &v = xs[2], &g = xs[3];
  std::vector<T> tq = cast<T>(q), tk = cast<T>(k), tv = cast<T>(v), tg = cast<T>(g);
  const int threads = cca::max_threads();
  std::vector<T> out(v.size()), att(att_n), de(att_n);
  std::vector<T> ws(cca::workspace_size(d, threads));
  std::vector<T> dq(q.size()), dk(k.size()), dv(v.size());
  double t_fwd = 0, t_bwd = 0;
  for (int i = 0; i < std::max(repeat, 1); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    cca::forward(tq.data(), tk.data(), tv.data(), out.data(), att.data(), d,
                 ws.data(), threads);
    auto t1 = std::chrono::steady_clock::now();
    cca::backward(tq.data(), tk.data(), tv.data(), att.data(), tg.data(),
                  dq.data(), dk.data(), dv.data(), de.data(), d, ws.data(),
                  threads);
    auto t2 = std::chrono::steady_clock::now();
    t_fwd = std::chrono::duration<double>(t1 - t0).count();
    t_bwd = std::chrono::duration<double>(t2 - t1).count();
  }
  if (repeat > 0) {
    std::printf("{\"dtype\": \"%s\", \"forward_s\": %.6f, \"backward_s\": %.6f}\n",
                name, t_fwd, t_bwd);
    return;
  }
  Vec rout(v.size()), rdq(q.size()), rdk(k.size()), rdv(v.size());
  cca_test::naive(d, q, k, v, g, rout, rdq, rdk, rdv);
  char b[4][32];
  std::printf("{\"dtype\": \"%s\", \"out\": %s, \"dq\": %s, \"dk\": %s, "
              "\"dv\": %s}\n", name,
              cca_test::json_number(max_err(out, rout), b[0], 32),
              cca_test::json_number(max_err(dq, rdq), b[1], 32),
              cca_test::json_number(max_err(dk, rdk), b[2], 32),
              cca_test::json_number(max_err(dv, rdv), b[3], 32));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s B Cq C H W [repeat]\n", argv[0]);
    return 2;
  }
  cca::Shape d{std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]),
               std::atoll(argv[4]), std::atoll(argv[5])};
  const int repeat = argc > 6 ? std::atoi(argv[6]) : 0;
  run<float>(d, repeat, "float32");
  run<double>(d, repeat, "float64");
  return 0;
}

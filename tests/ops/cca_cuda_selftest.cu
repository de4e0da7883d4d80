// Standalone GPU self-test of the criss-cross attention CUDA kernels: no
// Paddle, no PyTorch, only the CUDA runtime. For every shape, design and
// dtype (float32, float64, float16, bfloat16) it runs forward and backward
// on outputs, attention, scratch and workspace filled with NaN, compares
// with the double-precision oracle (tests/ops/cca_naive.h, fed the inputs
// as rounded to the dtype), runs everything a second time and compares
// bit for bit (determinism), and prints one table row. Exit status 1 if a
// row fails. Build (benchmarks/gpu/run_all.sh does):
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90,code=sm_90
//        -I paddleseg/ops/csrc -I tests/ops tests/ops/cca_cuda_selftest.cu
//        paddleseg/ops/csrc/cca_cuda.cu -o cca_cuda_selftest
// Usage: cca_cuda_selftest [--quick] [--shape B,Cq,C,H,W]... [--designs
//   simt,tiled,...] [--json FILE] [--time B,Cq,C,H,W] [--repeat N]
//   [--time-dtypes float32,float16,bfloat16]
//   --quick  one small shape, run once (no repeat: for compute-sanitizer);
//   --time   also time forward and forward+backward (CUDA events, median;
//            float32, float16 and bfloat16 unless --time-dtypes says).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cca_cuda.h"
#include "cca_naive.h"

namespace {

using cca::Shape;
using cca_test::Vec;

#define CUDA_OK(EXPR)                                                       \
  do {                                                                      \
    const cudaError_t e_ = (EXPR);                                          \
    if (e_ != cudaSuccess) {                                                \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #EXPR,    \
                   cudaGetErrorString(e_));                                 \
      std::exit(2);                                                         \
    }                                                                       \
  } while (0)

// Problems whose dimensions cross every tile edge of both designs: SIMT
// (64 x 64 x 16 tiles, 16 lanes, 4 x 4 per thread, K split 8) and tiled
// (64 x 64 energy tiles, 64 channels x 8 x 8 pixels, k stages of 4-32), with
// B > 1, H = 1, W = 1 and channel counts that are no multiple of a tile.
const std::vector<Shape> kShapes = {
    {2, 3, 5, 6, 7},    {1, 2, 4, 1, 11},    {1, 2, 4, 9, 1},
    {1, 1, 3, 1, 1},    {2, 4, 9, 10, 19},   {2, 16, 64, 33, 47},
    {1, 66, 67, 65, 5}, {2, 8, 130, 9, 129}, {2, 72, 130, 67, 129},
    {3, 0, 4, 5, 6},    {2, 4, 0, 5, 6}};
const Shape kQuick = {2, 5, 9, 11, 13};

double tolerance(int dtype, int design) {
  switch (dtype) {
    case cca::cuda::kFloat64: return 1e-10;
    case cca::cuda::kFloat32: return design == cca::cuda::kTiledTf32 ? 2e-2 : 1e-4;
    case cca::cuda::kFloat16: return 2e-2;
    default: return 6e-2;  // bfloat16
  }
}

// Host conversions to and from the storage type of a dtype.
void to_storage(int dtype, const Vec& x, std::vector<unsigned char>& out,
                Vec& rounded) {
  const int size = cca::cuda::dtype_info(dtype).size;
  out.resize(x.size() * size);
  rounded.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    unsigned char* p = out.data() + i * size;
    switch (dtype) {
      case cca::cuda::kFloat32: {
        const float f = float(x[i]);
        std::memcpy(p, &f, 4);
        rounded[i] = f;
        break;
      }
      case cca::cuda::kFloat64:
        std::memcpy(p, &x[i], 8);
        rounded[i] = x[i];
        break;
      case cca::cuda::kFloat16: {
        const __half h = __float2half_rn(float(x[i]));
        std::memcpy(p, &h, 2);
        rounded[i] = __half2float(h);
        break;
      }
      default: {
        const __nv_bfloat16 h = __float2bfloat16_rn(float(x[i]));
        std::memcpy(p, &h, 2);
        rounded[i] = __bfloat162float(h);
      }
    }
  }
}

double from_storage(int dtype, const unsigned char* p) {
  switch (dtype) {
    case cca::cuda::kFloat32: { float f; std::memcpy(&f, p, 4); return f; }
    case cca::cuda::kFloat64: { double d; std::memcpy(&d, p, 8); return d; }
    case cca::cuda::kFloat16: { __half h; std::memcpy(&h, p, 2); return __half2float(h); }
    default: { __nv_bfloat16 h; std::memcpy(&h, p, 2); return __bfloat162float(h); }
  }
}

struct Buffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&p, std::max<size_t>(n, 16))); }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  void poison() { CUDA_OK(cudaMemset(p, 0xFF, std::max<size_t>(bytes, 16))); }  // NaN
  std::vector<unsigned char> host() const {
    std::vector<unsigned char> h(bytes);
    if (bytes) CUDA_OK(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
    return h;
  }
};

struct Problem {
  Shape d;
  int dtype;
  Vec q, k, v, g;  // as rounded to the dtype
  std::vector<unsigned char> hq, hk, hv, hg;
};

Problem make_problem(const Shape& d, int dtype) {
  Problem p{d, dtype, {}, {}, {}, {}, {}, {}, {}, {}};
  std::vector<Vec> xs = cca_test::random_problem(d, 7);
  // Energies of standard deviation about 1.5, as trained CCNets have.
  const double s = std::sqrt(1.5 / std::sqrt(double(std::max<int64_t>(d.Cq, 1))));
  for (double& x : xs[0]) x *= s;
  for (double& x : xs[1]) x *= s;
  to_storage(dtype, xs[0], p.hq, p.q);
  to_storage(dtype, xs[1], p.hk, p.k);
  to_storage(dtype, xs[2], p.hv, p.v);
  to_storage(dtype, xs[3], p.hg, p.g);
  return p;
}

struct Device {
  Buffer q, k, v, g, out, dq, dk, dv, att, scratch, ws;
  Device(const Problem& p, int design)
      : q(p.hq.size()), k(p.hk.size()), v(p.hv.size()), g(p.hg.size()),
        out(p.hv.size()), dq(p.hq.size()), dk(p.hk.size()), dv(p.hv.size()),
        att(p.d.att_size() * cca::cuda::dtype_info(p.dtype).acc_size),
        scratch(att.bytes),
        ws(std::max(cca::cuda::workspace_bytes(p.d, p.dtype, design, false),
                    cca::cuda::workspace_bytes(p.d, p.dtype, design, true))) {
    const std::pair<Buffer*, const std::vector<unsigned char>*> in[] = {
        {&q, &p.hq}, {&k, &p.hk}, {&v, &p.hv}, {&g, &p.hg}};
    for (const auto& b : in) {
      if (b.first->bytes) {
        CUDA_OK(cudaMemcpy(b.first->p, b.second->data(), b.first->bytes,
                           cudaMemcpyHostToDevice));
      }
    }
  }
  void poison() {
    for (Buffer* b : {&out, &dq, &dk, &dv, &att, &scratch, &ws}) b->poison();
  }
  // Forward and backward; the kernels' code, else the first CUDA error.
  int run(const Problem& p, int design, cudaStream_t s) {
    int rc = cca::cuda::forward(p.dtype, q.p, k.p, v.p, out.p, att.p, ws.p,
                                p.d, s, design);
    if (rc == 0) {
      rc = cca::cuda::backward(p.dtype, q.p, k.p, v.p, att.p, g.p, dq.p,
                               dk.p, dv.p, scratch.p, ws.p, p.d, s, design);
    }
    const cudaError_t sync = cudaStreamSynchronize(s);
    return rc != 0 ? rc : int(sync);
  }
};

double error_of(int dtype, const std::vector<unsigned char>& h, const Vec& ref) {
  const int size = cca::cuda::dtype_info(dtype).size;
  return cca_test::max_err_of(
      h.size() / size, [&](size_t i) { return from_storage(dtype, &h[i * size]); },
      ref);
}

struct Row {
  Shape d;
  int design, dtype, rc;
  double err[4], tol;
  int deterministic;  // 1 same bits twice, 0 not, -1 not checked
  bool ok;
};

// A problem and the oracle's out, dq, dk, dv for it (computed once per
// shape and dtype, shared by the designs).
struct Case {
  Problem p;
  Vec ref[4];
};

Case make_case(const Shape& d, int dtype) {
  Case c{make_problem(d, dtype), {}};
  const Problem& p = c.p;
  c.ref[0].resize(p.v.size());
  c.ref[1].resize(p.q.size());
  c.ref[2].resize(p.k.size());
  c.ref[3].resize(p.v.size());
  cca_test::naive(d, p.q, p.k, p.v, p.g, c.ref[0], c.ref[1], c.ref[2],
                  c.ref[3]);
  return c;
}

Row check(const Case& c, int design, bool repeat, cudaStream_t s) {
  const Problem& p = c.p;
  const Shape& d = p.d;
  const int dtype = p.dtype;
  Row r{d, design, dtype, 0, {NAN, NAN, NAN, NAN}, tolerance(dtype, design),
        -1, false};
  Device dev(p, design);
  dev.poison();
  r.rc = dev.run(p, design, s);
  if (r.rc != 0) return r;
  const std::vector<unsigned char> first[4] = {dev.out.host(), dev.dq.host(),
                                               dev.dk.host(), dev.dv.host()};
  for (int i = 0; i < 4; ++i) r.err[i] = error_of(dtype, first[i], c.ref[i]);
  r.ok = true;
  if (repeat) {
    dev.poison();
    r.rc = dev.run(p, design, s);
    if (r.rc != 0) return r;
    r.deterministic = first[0] == dev.out.host() && first[1] == dev.dq.host() &&
                      first[2] == dev.dk.host() && first[3] == dev.dv.host();
    r.ok = r.deterministic == 1;
  }
  for (double e : r.err) r.ok = r.ok && std::isfinite(e) && e < r.tol;
  return r;
}

std::string shape_str(const Shape& d) {
  char b[96];
  std::snprintf(b, sizeof b, "(%lld, %lld, %lld, %lld, %lld)", (long long)d.B,
                (long long)d.Cq, (long long)d.C, (long long)d.H, (long long)d.W);
  return b;
}

bool parse_shape(const char* s, Shape& d) {
  long long v[5];
  if (std::sscanf(s, "%lld,%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3],
                  &v[4]) != 5) {
    return false;
  }
  d = Shape{v[0], v[1], v[2], v[3], v[4]};
  return true;
}

// Median forward and forward+backward seconds (CUDA events).
void time_shape(const Shape& d, const std::vector<int>& designs,
                const std::vector<int>& dtypes, int repeat, cudaStream_t s,
                FILE* json) {
  std::printf("\n| timing %s | dtype | forward (ms) | forward+backward (ms) |\n"
              "|---|---|---|---|\n", shape_str(d).c_str());
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  for (int design : designs) {
    for (int dtype : dtypes) {
      if (design == cca::cuda::kTiledTf32 && dtype != cca::cuda::kFloat32) continue;
      const Problem p = make_problem(d, dtype);
      Device dev(p, design);
      double med[2];
      for (int pass = 0; pass < 2; ++pass) {
        std::vector<float> ms;
        for (int i = 0; i < repeat + 2; ++i) {
          CUDA_OK(cudaEventRecord(a, s));
          int rc = cca::cuda::forward(dtype, dev.q.p, dev.k.p, dev.v.p,
                                      dev.out.p, dev.att.p, dev.ws.p, d, s,
                                      design);
          if (pass == 1 && rc == 0) {
            rc = cca::cuda::backward(dtype, dev.q.p, dev.k.p, dev.v.p,
                                     dev.att.p, dev.g.p, dev.dq.p, dev.dk.p,
                                     dev.dv.p, dev.scratch.p, dev.ws.p, d, s,
                                     design);
          }
          CUDA_OK(cudaEventRecord(b, s));
          CUDA_OK(cudaEventSynchronize(b));
          if (rc != 0) {
            std::printf("| %s | %s | error %s | |\n", cca::cuda::design_name(design),
                        cca::cuda::dtype_info(dtype).name, cca::cuda::error_string(rc));
            ms.clear();
            break;
          }
          float t = 0;
          CUDA_OK(cudaEventElapsedTime(&t, a, b));
          if (i >= 2) ms.push_back(t);  // two warm-ups
        }
        std::sort(ms.begin(), ms.end());
        med[pass] = ms.empty() ? NAN : ms[ms.size() / 2];
      }
      std::printf("| %s | %s | %.3f | %.3f |\n", cca::cuda::design_name(design),
                  cca::cuda::dtype_info(dtype).name, med[0], med[1]);
      if (json) {
        char f[32], fb[32];
        std::fprintf(json, "{\"timing\": \"%s\", \"design\": \"%s\", \"dtype\": "
                     "\"%s\", \"forward_ms\": %s, \"forward_backward_ms\": %s}\n",
                     shape_str(d).c_str(), cca::cuda::design_name(design),
                     cca::cuda::dtype_info(dtype).name,
                     cca_test::json_number(med[0], f, 32),
                     cca_test::json_number(med[1], fb, 32));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Shape> shapes;
  std::vector<int> designs = {cca::cuda::kSimt, cca::cuda::kTiled,
                              cca::cuda::kTiledTf32, cca::cuda::kTiledScalar};
  std::vector<Shape> timed;
  std::vector<int> time_dtypes = {cca::cuda::kFloat32, cca::cuda::kFloat16,
                                  cca::cuda::kBFloat16};
  const char* json_path = nullptr;
  int repeat = 20;
  bool twice = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    Shape d{};
    if (a == "--quick") {
      shapes.push_back(kQuick);
      twice = false;
    } else if (a == "--shape" && i + 1 < argc && parse_shape(argv[i + 1], d)) {
      shapes.push_back(d);
      ++i;
    } else if (a == "--time" && i + 1 < argc && parse_shape(argv[i + 1], d)) {
      timed.push_back(d);
      ++i;
    } else if (a == "--designs" && i + 1 < argc) {
      designs.clear();
      std::string list = argv[++i];
      for (size_t s = 0; s <= list.size();) {
        const size_t e = std::min(list.find(',', s), list.size());
        const int code = cca::cuda::design_code(list.substr(s, e - s).c_str());
        if (code < 0) {
          std::fprintf(stderr, "unknown design in %s\n", list.c_str());
          return 2;
        }
        designs.push_back(code);
        s = e + 1;
      }
    } else if (a == "--time-dtypes" && i + 1 < argc) {
      time_dtypes.clear();
      std::string list = argv[++i];
      for (size_t s = 0; s <= list.size();) {
        const size_t e = std::min(list.find(',', s), list.size());
        const int code = cca::cuda::dtype_code(list.substr(s, e - s).c_str());
        if (code < 0) {
          std::fprintf(stderr, "unknown dtype in %s\n", list.c_str());
          return 2;
        }
        time_dtypes.push_back(code);
        s = e + 1;
      }
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--shape B,Cq,C,H,W]... "
                   "[--designs simt,tiled,tiled_tf32,tiled_scalar] [--json FILE] "
                   "[--time B,Cq,C,H,W] [--repeat N] [--time-dtypes LIST]\n",
                   argv[0]);
      return 2;
    }
  }
  if (shapes.empty() && timed.empty()) shapes = kShapes;
  int device = 0;
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDevice(&device));
  CUDA_OK(cudaGetDeviceProperties(&prop, device));
  int runtime = 0;
  CUDA_OK(cudaRuntimeGetVersion(&runtime));
  std::printf("device: %s, sm_%d%d, %d multiprocessors; CUDA runtime %d\n\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              runtime);
  FILE* json = json_path ? std::fopen(json_path, "w") : nullptr;
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  std::printf("| shape (B, Cq, C, H, W) | design | dtype | status | max rel. "
              "error out, dq, dk, dv | tolerance | bitwise repeatable | ok |\n"
              "|---|---|---|---|---|---|---|---|\n");
  int failed = 0, rows = 0;
  for (const Shape& d : shapes) {
    for (int dtype : {cca::cuda::kFloat32, cca::cuda::kFloat64,
                      cca::cuda::kFloat16, cca::cuda::kBFloat16}) {
      const Case c = make_case(d, dtype);
      for (int design : designs) {
        const Row r = check(c, design, twice, s);
        ++rows;
        failed += !r.ok;
        char e[4][32];
        std::printf("| %s | %s | %s | %s | %s, %s, %s, %s | %.0e | %s | %s |\n",
                    shape_str(d).c_str(), cca::cuda::design_name(design),
                    cca::cuda::dtype_info(dtype).name,
                    r.rc ? cca::cuda::error_string(r.rc) : "ran",
                    cca_test::json_number(r.err[0], e[0], 32),
                    cca_test::json_number(r.err[1], e[1], 32),
                    cca_test::json_number(r.err[2], e[2], 32),
                    cca_test::json_number(r.err[3], e[3], 32), r.tol,
                    r.deterministic < 0 ? "-" : r.deterministic ? "yes" : "no",
                    r.ok ? "yes" : "**NO**");
        if (json) {
          std::fprintf(json, "{\"shape\": [%lld, %lld, %lld, %lld, %lld], "
                       "\"design\": \"%s\", \"dtype\": \"%s\", \"rc\": %d, "
                       "\"errors\": [%s, %s, %s, %s], \"tolerance\": %g, "
                       "\"deterministic\": %s, \"ok\": %s}\n",
                       (long long)d.B, (long long)d.Cq, (long long)d.C,
                       (long long)d.H, (long long)d.W,
                       cca::cuda::design_name(design),
                       cca::cuda::dtype_info(dtype).name, r.rc, e[0], e[1],
                       e[2], e[3], r.tol,
                       r.deterministic < 0 ? "null"
                       : r.deterministic   ? "true"
                                           : "false",
                       r.ok ? "true" : "false");
        }
        std::fflush(stdout);
      }
    }
  }
  if (rows) std::printf("\nselftest: %d rows, %d failed\n", rows, failed);
  for (const Shape& d : timed) {
    time_shape(d, designs, time_dtypes, repeat, s, json);
  }
  if (json) std::fclose(json);
  CUDA_OK(cudaStreamDestroy(s));
  return failed ? 1 : 0;
}

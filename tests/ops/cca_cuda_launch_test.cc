// Unit test of the host arithmetic behind the CUDA launchers and bindings
// (paddleseg/ops/csrc/cca_cuda_launch.h), plain C++ with no CUDA: the grid
// splitting, the dtype table, the designs and the workspace sizes; also the
// NaN-aware error of the oracle (cca_naive.h). Prints one line per failed
// check and exits non-zero if any failed.
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cca_cuda_launch.h"
#include "cca_naive.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, long long a = 0, long long b = 0) {
  if (!ok) {
    std::printf("FAILED: %s (%lld, %lld)\n", what, a, b);
    ++failures;
  }
}

// Every (y, z) of the logical grid exactly once, each launch within limits.
void check_split(int64_t gx, int64_t gy, int64_t gz, int64_t limit) {
  std::map<std::pair<int64_t, int64_t>, int> seen;
  int launches = 0;
  const int rc = cca::cuda::for_each_grid_chunk(
      gx, gy, gz,
      [&](const cca::cuda::GridChunk& c) {
        ++launches;
        check(c.x == gx, "x is never split", c.x, gx);
        check(c.y >= 1 && c.y <= limit && c.z >= 1 && c.z <= limit,
              "chunk within the limit", c.y, c.z);
        for (int64_t z = c.z0; z < c.z0 + c.z; ++z) {
          for (int64_t y = c.y0; y < c.y0 + c.y; ++y) ++seen[{y, z}];
        }
        return 0;
      },
      limit);
  check(rc == 0, "split returns 0", rc);
  const bool empty = gx == 0 || gy == 0 || gz == 0;
  check(!empty || launches == 0, "no launch for an empty grid", launches);
  if (empty) return;
  check(int64_t(seen.size()) == gy * gz, "every block covered",
        int64_t(seen.size()), gy * gz);
  for (const auto& kv : seen) check(kv.second == 1, "covered once", kv.second);
  const int64_t expected = (gy + limit - 1) / limit * ((gz + limit - 1) / limit);
  check(launches == expected, "fewest launches", launches, expected);
}

}  // namespace

int main() {
  using namespace cca::cuda;
  // Grids: small limits make every case split; the real limit of 65535
  // along z (B * H past it) too.
  for (int64_t limit : {1, 2, 3, 7}) {
    for (int64_t gy : {0, 1, 2, 3, 7, 8, 20}) {
      for (int64_t gz : {0, 1, 3, 4, 15}) check_split(2, gy, gz, limit);
    }
  }
  check_split(0, 5, 5, 3);
  check_split(1, 2, 2 * 65535 + 17, kGridLimitYZ);
  check_split(3, 65536, 1, kGridLimitYZ);
  int calls = 0;
  const int too_large = for_each_grid_chunk(
      kGridLimitX + 1, 1, 1, [&](const GridChunk&) { return ++calls, 0; });
  check(too_large == kGridTooLarge && calls == 0,
        "an x past the limit launches nothing", too_large, calls);
  const int first_error = for_each_grid_chunk(
      1, 1, 9, [&](const GridChunk& c) { return c.z0 == 3 ? 700 : 0; }, 3);
  check(first_error == 700, "the first launch error is returned",
        first_error);

  // dtypes: the names phi::DataTypeToString and torch/numpy use; anything
  // else (ints, bool, float8, complex) is refused, not reinterpreted.
  check(dtype_code("float32") == kFloat32, "float32");
  check(dtype_code("float16") == kFloat16, "float16");
  check(dtype_code("bfloat16") == kBFloat16, "bfloat16");
  check(dtype_code("float64") == kFloat64, "float64");
  for (const char* name : {"int32", "int64", "bool", "uint8", "float8_e4m3fn",
                           "complex64", "Float32", ""}) {
    check(dtype_code(name) == -1, name);
  }
  check(dtype_info(kFloat16).size == 2 && dtype_info(kBFloat16).size == 2 &&
            dtype_info(kFloat32).size == 4 && dtype_info(kFloat64).size == 8,
        "element sizes");
  check(dtype_info(kFloat16).acc_size == 4 &&
            dtype_info(kFloat64).acc_size == 8,
        "accumulator sizes");
  for (int i = 0; i < kNumDTypes; ++i) {
    check(dtype_code(dtype_info(i).name) == i, "dtype names round-trip", i);
  }
  for (int i = 0; i < kNumDesigns; ++i) {
    check(design_code(design_name(i)) == i, "design names round-trip", i);
  }
  check(design_code("fast") == -1, "unknown design");
  check(kDefaultDesign == kSimt, "the operator keeps the SIMT design");

  // Workspace: none for SIMT; the tiled copies 256-byte aligned, H padded
  // to a multiple of 8.
  const cca::Shape d{2, 64, 512, 97, 97};
  check(padded_h(d) == 104, "Hp", padded_h(d));
  check(workspace_bytes(d, kFloat16, kSimt, true) == 0, "SIMT workspace");
  const int64_t tq = align_up(2 * 97 * 64 * 104 * 2, 256);
  const int64_t tv = align_up(2 * 97 * 512 * 104 * 2, 256);
  check(workspace_bytes(d, kFloat16, kTiled, false) == 2 * tq + tv,
        "tiled forward workspace", workspace_bytes(d, kFloat16, kTiled, false),
        2 * tq + tv);
  check(workspace_bytes(d, kFloat16, kTiled, true) == 2 * tq + 2 * tv,
        "tiled backward workspace");
  check(transposed_bytes(cca::Shape{1, 3, 5, 7, 9}, 3, kFloat32) % 256 == 0,
        "copies stay aligned");
  check(workspace_bytes(d, -1, kTiled, true) == 0, "bad dtype: none");
  for (const cca::Shape& s : {cca::Shape{1, 1, 1, 1, 1},
                              cca::Shape{2, 3, 4, 97, 97},
                              cca::Shape{3, 2, 2, 1, 40},
                              cca::Shape{1, 2, 2, 40, 1}}) {
    check(tiled_att_fits(s), "the tiled attention fits att_size()", s.H, s.W);
  }

  // The oracle's error: NaN anywhere (or a size mismatch) is NaN, so a
  // NaN output can never pass `err < tol`.
  const cca_test::Vec ref = {1.0, 2.0, 3.0};
  check(cca_test::max_err(std::vector<float>{1, 2, 3}, ref) == 0, "exact");
  check(std::isnan(cca_test::max_err(std::vector<float>{NAN, 2, 3}, ref)),
        "NaN first is NaN");
  check(std::isnan(cca_test::max_err(std::vector<float>{1, 2, NAN}, ref)),
        "NaN last is NaN");
  check(std::isinf(cca_test::max_err(std::vector<float>{1, INFINITY, 3},
                                     ref)),
        "inf is inf");
  check(std::isnan(cca_test::max_err(std::vector<float>{1, 2}, ref)),
        "size mismatch is NaN");
  char buf[32];
  check(std::string(cca_test::json_number(NAN, buf, 32)) == "NaN", "NaN json");
  std::printf(failures ? "%d checks failed\n" : "all checks passed\n",
              failures);
  return failures ? 1 : 0;
}

// Direct triple-loop criss-cross attention in double precision, forward and
// backward: the oracle of the standalone kernel tests (tests/ops/*.cc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cca_shape.h"

namespace cca_test {

using Vec = std::vector<double>;
// out[c,h,w] = sum over the criss-cross path, softmax over H + W - 1 energies.
void naive(const cca::Shape& d, const Vec& q, const Vec& k, const Vec& v,
           const Vec& g, Vec& out, Vec& dq, Vec& dk, Vec& dv) {
  const int64_t H = d.H, W = d.W, hw = H * W, P = H + W;
  for (int64_t b = 0; b < d.B; ++b) {
    const double *qb = &q[b * d.Cq * hw], *kb = &k[b * d.Cq * hw];
    const double *vb = &v[b * d.C * hw], *gb = &g[b * d.C * hw];
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t w = 0; w < W; ++w) {
        // Position p < H is (p, w); p >= H is (h, p - H); p == h is skipped.
        std::vector<int64_t> pix(P);
        Vec e(P, -INFINITY), a(P, 0.0), da(P, 0.0);
        double m = -INFINITY, sum = 0, dot = 0;
        for (int64_t p = 0; p < P; ++p) {
          pix[p] = p < H ? p * W + w : h * W + (p - H);
          if (p == h) continue;
          e[p] = 0;
          for (int64_t c = 0; c < d.Cq; ++c) {
            e[p] += qb[c * hw + h * W + w] * kb[c * hw + pix[p]];
          }
          m = std::max(m, e[p]);
        }
        for (int64_t p = 0; p < P; ++p) sum += (a[p] = std::exp(e[p] - m));
        for (int64_t p = 0; p < P; ++p) {
          a[p] /= sum;
          for (int64_t c = 0; c < d.C; ++c) {
            out[b * d.C * hw + c * hw + h * W + w] += a[p] * vb[c * hw + pix[p]];
            da[p] += gb[c * hw + h * W + w] * vb[c * hw + pix[p]];
            dv[b * d.C * hw + c * hw + pix[p]] += a[p] * gb[c * hw + h * W + w];
          }
          dot += a[p] * da[p];
        }
        for (int64_t p = 0; p < P; ++p) {
          const double de = a[p] * (da[p] - dot);
          for (int64_t c = 0; c < d.Cq; ++c) {
            dq[b * d.Cq * hw + c * hw + h * W + w] += de * kb[c * hw + pix[p]];
            dk[b * d.Cq * hw + c * hw + pix[p]] += de * qb[c * hw + h * W + w];
          }
        }
      }
    }
  }
}

// Largest |x - ref| / (1 + |ref|); NaN as soon as one value is NaN (or the
// sizes differ), so that a NaN can never pass a `max_err < tol` test
// (std::max(e, NaN) would have kept e).
inline double rel_err(double x, double ref) {
  return std::fabs(x - ref) / (1.0 + std::fabs(ref));
}

template <typename X>
double max_err_of(size_t n, X&& value, const Vec& ref) {
  if (n != ref.size()) return NAN;
  double e = 0;
  for (size_t i = 0; i < n; ++i) {
    const double r = rel_err(value(i), ref[i]);
    if (std::isnan(r)) return NAN;
    if (r > e) e = r;
  }
  return e;
}

template <typename T>
double max_err(const std::vector<T>& x, const Vec& ref) {
  return max_err_of(x.size(), [&](size_t i) { return double(x[i]); }, ref);
}

// A double as JSON that Python's json module reads: NaN and Infinity too.
inline const char* json_number(double x, char* buf, size_t n) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  std::snprintf(buf, n, "%.3g", x);
  return buf;
}

// q, k, v, dout of shape d, normal random numbers.
inline std::vector<Vec> random_problem(const cca::Shape& d, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  const int64_t hw = d.H * d.W;
  std::vector<Vec> xs = {Vec(d.B * d.Cq * hw), Vec(d.B * d.Cq * hw),
                         Vec(d.B * d.C * hw), Vec(d.B * d.C * hw)};
  for (auto& x : xs) for (auto& e : x) e = dist(gen);
  return xs;
}

}  // namespace cca_test

// Portable SIMD helpers for the criss-cross attention CPU kernels.
//
// GCC/Clang vector extensions: `Simd<T, N>::V` is N lanes of T. The compiler
// maps 8 x float or 4 x double to one AVX2 register when built with
// -mavx2 -mfma (or -march=native) and splits it into SSE halves otherwise, so
// the kernels stay correct on any x86-64 or ARM machine. N = 1 is a scalar
// and serves images narrower than one vector.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace cca {

template <typename T, int N>
struct Simd {
  typedef T V __attribute__((vector_size(sizeof(T) * N)));
  static constexpr int kLanes = N;

  static inline V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static inline void store(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  // s - 0 is s for every s (0 + s is not: -0.0), so GCC emits a plain
  // broadcast instead of an add and a broadcast.
  static inline V set1(T s) { return s - V{}; }
  static inline V zero() { return V{}; }
  static inline V max(V a, V b) { return a > b ? a : b; }
};

// exp for float lanes: Cody-Waite reduction to |r| <= ln2/2 and a degree-6
// polynomial (relative error < 2e-7 on [-87, 88]); arguments below -87 give
// exactly 0, which is what the softmax needs for masked or tiny energies.
template <int N>
inline typename Simd<float, N>::V vexp(typename Simd<float, N>::V x) {
  using S = Simd<float, N>;
  typedef int32_t Vi __attribute__((vector_size(sizeof(int32_t) * N)));
  const float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to int
  const typename S::V xin = x;
  x = x < S::set1(-87.0f) ? S::set1(-87.0f) : x;
  x = x > S::set1(88.0f) ? S::set1(88.0f) : x;
  typename S::V t = x * 1.44269504088896341f + kShift;
  typename S::V n = t - kShift;
  Vi ni;
  std::memcpy(&ni, &t, sizeof(Vi));
  int32_t shift_bits;
  std::memcpy(&shift_bits, &kShift, sizeof(shift_bits));
  ni = ni - shift_bits;  // n as integers
  typename S::V r = x - n * 0.693359375f;  // ln2 split in two parts
  r = r - n * -2.12194440e-4f;
  typename S::V p = S::set1(1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  Vi bits = (ni + 127) << 23;  // 2^n
  typename S::V scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return xin < S::set1(-87.0f) ? S::zero() : p * scale;
}

// exp for double lanes: lane by lane (float64 is for checks, not speed).
template <int N>
inline typename Simd<double, N>::V vexp(typename Simd<double, N>::V x) {
  for (int i = 0; i < N; ++i) x[i] = std::exp(x[i]);
  return x;
}

}  // namespace cca

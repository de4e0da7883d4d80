// Problem shape and attention layout shared by the CPU and CUDA kernels.
//
// Attention layout (kept from the forward pass for the backward pass):
// columns are grouped in chunks of kLanes, and
//   att[((b * Kc + kc) * H + h) * P * kLanes + p * kLanes + lane]
// is the weight of pixel (h, w = kc * kLanes + lane) on position p, where
// p < H is the column position (p, w) and p >= H the row position
// (h, p - H); P = H + W, Kc = ceil(W / kLanes). One pixel block (b, kc, h)
// is P x kLanes contiguous values, so a softmax over p reads whole vectors.
// Lanes past W in the last chunk hold finite values that are never used.
#pragma once

#include <cstdint>

namespace cca {

constexpr int kLanes = 8;  // columns per chunk (one AVX2 float vector)

struct Shape {
  int64_t B, Cq, C, H, W;
  int64_t P() const { return H + W; }
  int64_t hw() const { return H * W; }
  int64_t chunks() const { return (W + kLanes - 1) / kLanes; }
  int64_t padded_w() const { return chunks() * kLanes; }
  // Elements of the attention tensor (B, chunks, H, P, kLanes).
  int64_t att_size() const { return B * chunks() * H * P() * kLanes; }
  // Offset of pixel block (b, kc, h) in the attention tensor.
  int64_t block(int64_t b, int64_t kc, int64_t h) const {
    return ((b * chunks() + kc) * H + h) * P() * kLanes;
  }
};

}  // namespace cca

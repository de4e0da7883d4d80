// Criss-cross attention on the CPU: forward and backward over raw pointers.
//
// Inputs are contiguous NCHW: query and key (B, Cq, H, W), value (B, C, H, W).
//   forward(q, k, v, out, att, d, ws, threads):  out (B, C, H, W); att
//       (Shape::att_size() elements, layout in cca_shape.h) is kept for the
//       backward pass.
//   backward(q, k, v, att, dout, dq, dk, dv, de, d, ws, threads): de has
//       att_size() elements and receives the energy gradient.
// ws is a workspace of workspace_size(d, threads) elements (the caller
// allocates it, so the framework accounts for all the memory used).
// Each pass is three phases over OpenMP tasks:
//   column phase A  per chunk of kLanes columns: products along columns;
//   row phase       per pixel row h: products along the row, the softmax;
//   column phase B  per chunk: the column half of the outputs, added.
// Column tasks copy their columns of the big tensors into a compact buffer
// first, so each element of value/dout is read from memory about once per
// phase (the measured bottleneck: this CPU streams ~10 GB/s from DRAM).
// No task writes where another one does, so there are no atomics.
// No Paddle header is included: the same code builds and runs standalone.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cca_cpu_kernels.h"
#include "cca_cpu_layout.h"

namespace cca {

constexpr int64_t kChanBlock = 128;  // channels per column-phase-B task

// Output rows per task of the backward column phase A: all of them when
// there are enough chunks to keep the threads busy (each task reads the
// value slab whole, so fewer blocks read it fewer times), else halves.
inline int64_t row_block(const Shape& d) {
  if (d.B * d.chunks() >= 8) return d.H;
  return std::max<int64_t>(8, (d.H + 1) / 2);
}

// Workspace elements one thread uses in each phase.
inline int64_t ws_fwd_col_a(const Shape& d) { return 2 * d.Cq * d.H * kLanes; }
inline int64_t ws_fwd_row(const Shape& d) {
  return (2 * d.Cq + d.C) * d.padded_w();
}
inline int64_t ws_fwd_col_b(const Shape& d) {
  return 2 * kChanBlock * d.H * kLanes;
}
inline int64_t ws_bwd_col_a(const Shape& d) {
  return d.C * (d.H + row_block(d)) * kLanes;
}
inline int64_t ws_bwd_row(const Shape& d) {
  return (2 * d.C + std::max(d.C, d.Cq)) * d.padded_w() +
         d.chunks() * d.W * kLanes;
}
inline int64_t ws_bwd_col_b(const Shape& d) {
  return std::max(2 * kChanBlock, 3 * d.Cq) * d.H * kLanes;
}

inline int64_t ws_per_thread(const Shape& d) {
  return std::max({ws_fwd_col_a(d), ws_fwd_row(d), ws_fwd_col_b(d),
                   ws_bwd_col_a(d), ws_bwd_row(d), ws_bwd_col_b(d)});
}

// Workspace elements forward() and backward() need on `threads` threads.
inline int64_t workspace_size(const Shape& d, int threads) {
  return threads * ws_per_thread(d);
}

// energies(h, i) over the column of each lane: x, y are (channels, H) slabs.
template <typename T>
void column_products(const T* xs, int64_t x_rows, const T* ys, int64_t H,
                     int64_t channels, T* out, int64_t out_h) {
  lane_gemm<T>({xs, x_rows * kLanes, kLanes, ys, H * kLanes, kLanes, out,
                out_h, kLanes, x_rows, H, channels}, 32);
}

// o(c, n) = sum_j z(c, j) * a(row part j, chunk n): the row half of an
// aggregation, with z(c, j) = z[c * z_c + j] and a at a pixel block's row
// part; o is (channels, padded_w) like gather_row.
template <typename T>
void row_aggregate(const T* z, int64_t z_c, const T* a_row,
                   int64_t a_chunk, int64_t channels, const Shape& d, T* o) {
  bcast_gemm<T>({z, 1, z_c, a_row, kLanes, a_chunk, o, d.padded_w(), kLanes,
                 channels, d.chunks(), d.W});
}

// o(c, h) = sum_t z(c, t) * a(t, h): the column half of an aggregation over
// a (channels, H) slab z; a(t, h) = a[t * a_t + h * a_h].
template <typename T>
void column_aggregate(const T* zs, int64_t channels, const T* a, int64_t a_t,
                      int64_t a_h, const Shape& d, T* os) {
  lane_gemm<T>({zs, kLanes, d.H * kLanes, a, a_t, a_h, os, d.H * kLanes,
                kLanes, channels, d.H, d.H});
}

template <typename T>
void forward(const T* q, const T* k, const T* v, T* out, T* att,
             const Shape& d, T* ws, int threads) {
  const int64_t wpt = ws_per_thread(d);
  const int64_t H = d.H, P = d.P(), hw = d.hw(), nk = d.chunks();
  const int64_t slab = H * kLanes, wp = d.padded_w();
  const int64_t cblocks = (d.C + kChanBlock - 1) / kChanBlock;
  // Column energies of every chunk.
  parallel_tasks<T>(d.B * nk, threads, ws, wpt, [&](int64_t t, T* s) {
    const int64_t b = t / nk, kc = t % nk;
    gather_slab(q + b * d.Cq * hw, d, 0, d.Cq, 0, H, kc * kLanes, s);
    gather_slab(k + b * d.Cq * hw, d, 0, d.Cq, 0, H, kc * kLanes,
                s + d.Cq * slab);
    column_products(s, H, s + d.Cq * slab, H, d.Cq, att + d.block(b, kc, 0),
                    P * kLanes);
  });
  // Row energies, softmax and the row half of the output, per row.
  parallel_tasks<T>(d.B * H, threads, ws, wpt, [&](int64_t t, T* s) {
    const int64_t b = t / H, h = t % H;
    T *qr = s, *kr = s + d.Cq * wp, *orow = s + 2 * d.Cq * wp;
    gather_row(q + b * d.Cq * hw, d, d.Cq, h, qr);
    gather_row(k + b * d.Cq * hw, d, d.Cq, h, kr);
    T* row_part = att + d.block(b, 0, h) + H * kLanes;
    bcast_gemm<T>({kr, wp, 1, qr, wp, kLanes, row_part, kLanes,
                   H * P * kLanes, d.W, nk, d.Cq});
    for (int64_t kc = 0; kc < nk; ++kc) {
      softmax_block(att + d.block(b, kc, h), P, h);
    }
    row_aggregate(v + b * d.C * hw + h * d.W, hw, row_part, H * P * kLanes,
                  d.C, d, orow);
    store_row(orow, d, d.C, h, out + b * d.C * hw);
  });
  // Column half of the output, per chunk and block of channels.
  parallel_tasks<T>(d.B * nk * cblocks, threads, ws, wpt,
                    [&](int64_t t, T* s) {
    const int64_t b = t / (nk * cblocks), kc = t % nk;
    const int64_t c0 = t / nk % cblocks * kChanBlock;
    const int64_t c1 = std::min(d.C, c0 + kChanBlock);
    gather_slab(v + b * d.C * hw, d, c0, c1, 0, H, kc * kLanes, s);
    column_aggregate(s, c1 - c0, att + d.block(b, kc, 0), kLanes, P * kLanes,
                     d, s + kChanBlock * slab);
    scatter_add_slab(s + kChanBlock * slab, d, c0, c1, 0, H, kc * kLanes,
                     out + b * d.C * hw);
  });
}

// Backward row phase for row h of item b: the row half of dA, the softmax
// backward (de: dA -> dE in place), and the row halves of dq, dv and dk.
template <typename T>
void backward_row(const T* q, const T* k, const T* v, const T* att,
                  const T* dout, T* dq, T* dk, T* dv, T* de, const Shape& d,
                  int64_t b, int64_t h, T* s) {
  const int64_t H = d.H, P = d.P(), hw = d.hw(), nk = d.chunks();
  const int64_t wp = d.padded_w(), cmax = std::max(d.C, d.Cq);
  T *gr = s, *vr = s + d.C * wp, *orow = s + 2 * d.C * wp;
  T* tr = orow + cmax * wp;
  gather_row(dout + b * d.C * hw, d, d.C, h, gr);
  gather_row(v + b * d.C * hw, d, d.C, h, vr);
  T* de_row = de + d.block(b, 0, h) + H * kLanes;
  bcast_gemm<T>({vr, wp, 1, gr, wp, kLanes, de_row, kLanes, H * P * kLanes,
                 d.W, nk, d.C});
  for (int64_t kc = 0; kc < nk; ++kc) {
    softmax_backward_block(att + d.block(b, kc, h), de + d.block(b, kc, h), P);
  }
  row_aggregate(k + b * d.Cq * hw + h * d.W, hw, de_row, H * P * kLanes, d.Cq,
                d, orow);
  store_row(orow, d, d.Cq, h, dq + b * d.Cq * hw);
  transpose_row_part(att, d, b, h, tr);
  row_aggregate(gr, wp, tr, d.W * kLanes, d.C, d, orow);
  store_row(orow, d, d.C, h, dv + b * d.C * hw);
  transpose_row_part(de, d, b, h, tr);
  row_aggregate(q + b * d.Cq * hw + h * d.W, hw, tr, d.W * kLanes, d.Cq, d,
                orow);
  store_row(orow, d, d.Cq, h, dk + b * d.Cq * hw);
}

// Backward column phase B, one unit of chunk kc of item b: unit < cblocks is
// the column half of dv for one block of channels, the last unit dq and dk.
template <typename T>
void backward_column(const T* q, const T* k, const T* att, const T* dout,
                     const T* de, T* dq, T* dk, T* dv, const Shape& d,
                     int64_t b, int64_t kc, int64_t unit, T* s) {
  const int64_t H = d.H, P = d.P(), hw = d.hw(), w0 = kc * kLanes;
  const int64_t slab = H * kLanes;
  const T *ab = att + d.block(b, kc, 0), *eb = de + d.block(b, kc, 0);
  if (unit * kChanBlock < d.C) {  // dv(c, i) += sum_h dout(c, h) A(h, i)
    const int64_t c0 = unit * kChanBlock, c1 = std::min(d.C, c0 + kChanBlock);
    gather_slab(dout + b * d.C * hw, d, c0, c1, 0, H, w0, s);
    column_aggregate(s, c1 - c0, ab, P * kLanes, kLanes, d,
                     s + (c1 - c0) * slab);
    scatter_add_slab(s + (c1 - c0) * slab, d, c0, c1, 0, H, w0,
                     dv + b * d.C * hw);
    return;
  }
  T *ks = s, *qs = s + d.Cq * slab, *os = s + 2 * d.Cq * slab;
  gather_slab(k + b * d.Cq * hw, d, 0, d.Cq, 0, H, w0, ks);
  gather_slab(q + b * d.Cq * hw, d, 0, d.Cq, 0, H, w0, qs);
  column_aggregate(ks, d.Cq, eb, kLanes, P * kLanes, d, os);  // dq
  scatter_add_slab(os, d, 0, d.Cq, 0, H, w0, dq + b * d.Cq * hw);
  column_aggregate(qs, d.Cq, eb, P * kLanes, kLanes, d, os);  // dk
  scatter_add_slab(os, d, 0, d.Cq, 0, H, w0, dk + b * d.Cq * hw);
}

template <typename T>
void backward(const T* q, const T* k, const T* v, const T* att,
              const T* dout, T* dq, T* dk, T* dv, T* de, const Shape& d,
              T* ws, int threads) {
  const int64_t H = d.H, P = d.P(), hw = d.hw(), nk = d.chunks();
  const int64_t slab = H * kLanes, wpt = ws_per_thread(d);
  // Column half of dA = dout . v, per chunk and block of output rows.
  const int64_t hb = row_block(d), hblocks = (H + hb - 1) / hb;
  parallel_tasks<T>(d.B * nk * hblocks, threads, ws, wpt,
                    [&](int64_t t, T* s) {
    const int64_t b = t / (nk * hblocks), kc = t % nk;
    const int64_t h0 = t / nk % hblocks * hb, h1 = std::min(H, h0 + hb);
    gather_slab(v + b * d.C * hw, d, 0, d.C, 0, H, kc * kLanes, s);
    T* gs = s + d.C * slab;
    gather_slab(dout + b * d.C * hw, d, 0, d.C, h0, h1, kc * kLanes, gs);
    column_products(gs, h1 - h0, s, H, d.C, de + d.block(b, kc, h0),
                    P * kLanes);
  });
  parallel_tasks<T>(d.B * H, threads, ws, wpt, [&](int64_t t, T* s) {
    backward_row(q, k, v, att, dout, dq, dk, dv, de, d, t / H, t % H, s);
  });
  const int64_t units = (d.C + kChanBlock - 1) / kChanBlock + 1;
  parallel_tasks<T>(d.B * nk * units, threads, ws, wpt, [&](int64_t t, T* s) {
    backward_column(q, k, att, dout, de, dq, dk, dv, d, t / (nk * units),
                    t % nk, t / nk % units, s);
  });
}

}  // namespace cca

// Just enough of CUDA to run the kernels of paddleseg/ops/csrc/cca_cuda*.cuh
// on the CPU, for a test of their logic and indexing on machines without a
// GPU. Force-included (g++ -include) before cca_cuda.cu.
//
// Every CUDA thread of a block is a fiber (ucontext) of one OS thread; the
// blocks run one after another, so `__shared__` can be a function-local
// static. A fiber runs until it reaches a barrier (__syncthreads, a warp
// barrier inside __syncwarp and the shuffles) or returns; the scheduler
// resumes it once every live thread of the block (or of its warp) has
// arrived. Threads run in increasing order, or decreasing with
// CCA_EMULATION_ORDER=reverse, so a missing barrier between a write and a
// read by another thread changes the result in one of the two orders.
//
// cp.async is emulated asynchronously: a copy reads global memory when
// issued but lands in shared memory only when a later cp.async wait
// releases its group, so a read before the wait sees stale data.
//
// Not emulated: tensor-core instructions (mma.sync, ldmatrix), __half and
// __nv_bfloat16, real warp divergence, memory-model effects. The kernels
// compile their scalar tile path under CCA_CUDA_EMULATION.
#pragma once

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#define CCA_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1)
      : x(x_), y(y_), z(z_) {}
};

inline dim3 threadIdx, blockIdx, blockDim, gridDim;

typedef void* cudaStream_t;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9
};
// Like CUDA's: the error of the last launch, cleared when read.
inline cudaError_t& emulated_last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = emulated_last_error();
  emulated_last_error() = cudaSuccess;
  return e;
}
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error"
         : e == cudaErrorInvalidConfiguration ? "invalid configuration"
                                              : "invalid value";
}

using std::exp;
inline float max(float a, float b) { return a > b ? a : b; }
inline double max(double a, double b) { return a > b ? a : b; }

namespace cca_emulation {

struct Copy {
  void* dst;
  unsigned char data[16];
  int bytes;
};

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  dim3 tid;
  bool done = false;
  int wait = 0;  // 0: runnable, 1: block barrier, 2: warp barrier
  unsigned wait_gen = 0;
  std::vector<std::vector<Copy>> groups;  // committed cp.async groups
  std::vector<Copy> open;                 // issued, not yet committed
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  std::function<void()> body;
  unsigned n = 0, current = 0, live = 0, arrived = 0, generation = 0;
  std::vector<unsigned> warp_live, warp_arrived, warp_generation;
  std::vector<uint64_t> slots;  // shuffle values, one per thread
};

inline Block& block() {
  static Block b;
  return b;
}

inline void apply(std::vector<Copy>& copies) {
  for (auto& c : copies) std::memcpy(c.dst, c.data, c.bytes);
  copies.clear();
}

inline void release_block(Block& b) {
  if (b.live > 0 && b.arrived == b.live) {
    b.arrived = 0;
    ++b.generation;
  }
}

inline void release_warp(Block& b, unsigned w) {
  if (b.warp_live[w] > 0 && b.warp_arrived[w] == b.warp_live[w]) {
    b.warp_arrived[w] = 0;
    ++b.warp_generation[w];
  }
}

inline void fiber_entry() {
  Block& b = block();
  b.body();
  Fiber& f = b.fibers[b.current];
  for (auto& g : f.groups) apply(g);
  f.groups.clear();
  apply(f.open);
  f.done = true;
  --b.live;
  --b.warp_live[b.current / 32];
  release_block(b);
  release_warp(b, b.current / 32);
}  // returns to the scheduler through uc_link

inline void yield(int kind, unsigned generation) {
  Block& b = block();
  Fiber& f = b.fibers[b.current];
  f.wait = kind;
  f.wait_gen = generation;
  swapcontext(&f.ctx, &b.scheduler);
}

inline bool runnable(const Block& b, const Fiber& f, unsigned t) {
  if (f.done) return false;
  if (f.wait == 1) return b.generation != f.wait_gen;
  if (f.wait == 2) return b.warp_generation[t / 32] != f.wait_gen;
  return true;
}

inline unsigned linear_tid() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// Runs body() once per thread of one block, to completion.
inline void run_block(unsigned n, const std::function<void()>& body) {
  static const bool reverse = [] {
    const char* e = std::getenv("CCA_EMULATION_ORDER");
    return e && std::strcmp(e, "reverse") == 0;
  }();
  Block& b = block();
  constexpr size_t kStack = 128 << 10;
  if (b.fibers.size() < n) b.fibers.resize(n);
  b.n = n;
  b.body = body;
  b.live = n;
  b.arrived = 0;
  const unsigned warps = (n + 31) / 32;
  b.warp_live.assign(warps, 0);
  b.warp_arrived.assign(warps, 0);
  b.warp_generation.assign(warps, 0);
  b.slots.assign(warps * 32, 0);
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = b.fibers[t];
    if (f.stack.size() < kStack) f.stack.resize(kStack);
    f.tid = dim3(t % blockDim.x, t / blockDim.x % blockDim.y,
                 t / (blockDim.x * blockDim.y));
    f.done = false;
    f.wait = 0;
    f.groups.clear();
    f.open.clear();
    ++b.warp_live[t / 32];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &b.scheduler;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  unsigned finished = 0;
  while (finished < n) {
    bool progress = false;
    for (unsigned i = 0; i < n; ++i) {
      const unsigned t = reverse ? n - 1 - i : i;
      Fiber& f = b.fibers[t];
      if (!runnable(b, f, t)) continue;
      f.wait = 0;
      b.current = t;
      threadIdx = f.tid;
      swapcontext(&b.scheduler, &f.ctx);
      progress = true;
      if (f.done) ++finished;
    }
    if (!progress) {
      std::fprintf(stderr, "cuda_emulation: deadlock, %u of %u threads "
                   "wait at a barrier the others never reach\n",
                   n - finished, n);
      std::abort();
    }
  }
}

}  // namespace cca_emulation

inline void __syncthreads() {
  cca_emulation::Block& b = cca_emulation::block();
  const unsigned gen = b.generation;
  ++b.arrived;
  cca_emulation::release_block(b);
  cca_emulation::yield(1, gen);
}

inline void __syncwarp(unsigned = 0xffffffffu) {
  cca_emulation::Block& b = cca_emulation::block();
  const unsigned w = b.current / 32;
  const unsigned gen = b.warp_generation[w];
  ++b.warp_arrived[w];
  cca_emulation::release_warp(b, w);
  cca_emulation::yield(2, gen);
}

// Shuffles of the whole warp (the kernels use full masks only).
template <typename T>
T emulated_shfl(T v, int src_lane) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  cca_emulation::Block& b = cca_emulation::block();
  const unsigned t = b.current, base = t / 32 * 32;
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  b.slots[t] = bits;
  __syncwarp();
  bits = b.slots[base + (static_cast<unsigned>(src_lane) & 31u)];
  __syncwarp();  // every lane has read before the slots are reused
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32) {
  const int lane = static_cast<int>(cca_emulation::block().current % 32);
  const int src = lane ^ lane_mask;
  // Outside the lane's segment of `width` lanes, a lane keeps its value.
  return emulated_shfl(v, src / width == lane / width ? src : lane);
}

template <typename T>
T __shfl_sync(unsigned, T v, int src_lane, int width = 32) {
  const int lane = static_cast<int>(cca_emulation::block().current % 32);
  return emulated_shfl(v, lane / width * width + src_lane % width);
}

// cp.async.cg.shared.global of 16 bytes, the first `src_bytes` read from
// `src` and the rest zero-filled; commit_group; wait_group N.
inline void emulated_cp_async16(void* dst, const void* src, int src_bytes) {
  cca_emulation::Copy c{dst, {}, 16};
  if (src_bytes > 0) std::memcpy(c.data, src, src_bytes);
  cca_emulation::Block& b = cca_emulation::block();
  b.fibers[b.current].open.push_back(c);
}

inline void emulated_cp_async_commit() {
  cca_emulation::Block& b = cca_emulation::block();
  auto& f = b.fibers[b.current];
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}

inline void emulated_cp_async_wait(int pending) {
  cca_emulation::Block& b = cca_emulation::block();
  auto& f = b.fibers[b.current];
  while (static_cast<int>(f.groups.size()) > pending) {
    cca_emulation::apply(f.groups.front());
    f.groups.erase(f.groups.begin());
  }
}

// CUDA's launch limits; y and z lowered with -DCCA_GRID_LIMIT_YZ (the
// launchers then must split their grids, as they must for real at 65535).
#ifndef CCA_GRID_LIMIT_YZ
#define CCA_GRID_LIMIT_YZ 65535
#endif

// Runs the kernel, or, for a grid or block CUDA would refuse (a zero or too
// large dimension), sets the launch error and runs nothing.
template <typename... Args>
void emulate_launch(void (*kernel)(Args...), dim3 grid, dim3 block,
                    Args... args) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u ||
      grid.y > CCA_GRID_LIMIT_YZ || grid.z > CCA_GRID_LIMIT_YZ ||
      threads == 0 || threads > 1024 || block.z > 64) {
    emulated_last_error() = cudaErrorInvalidConfiguration;
    return;
  }
  blockDim = block;
  gridDim = grid;
  const unsigned n = block.x * block.y * block.z;
  const std::function<void()> body = [&] { kernel(args...); };
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  for (uint64_t i = 0; i < blocks; ++i) {
    blockIdx = dim3(unsigned(i % grid.x), unsigned(i / grid.x % grid.y),
                    unsigned(i / (uint64_t(grid.x) * grid.y)));
    cca_emulation::run_block(n, body);
  }
}

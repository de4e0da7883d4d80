// Just enough of CUDA to run the kernels of cca_cuda.cuh on the CPU, for a
// test of their logic and indexing on machines without a GPU: one
// std::thread per CUDA thread of a block, the team walking the blocks one
// after another (so `__shared__` can be a function-local static), with a
// barrier for __syncthreads and between blocks. A kernel may return early
// only after its last __syncthreads (true of cca_cuda.cuh). Force-included
// (g++ -include) before cca_cuda.cu.
#pragma once

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#define CCA_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1)
      : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

typedef void* cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : "invalid value";
}

using std::exp;
inline float max(float a, float b) { return a > b ? a : b; }
inline double max(double a, double b) { return a > b ? a : b; }

// A reusable barrier for the threads of the current block.
struct BlockBarrier {
  std::mutex m;
  std::condition_variable cv;
  unsigned count = 0, waiting = 0, generation = 0;
  void wait() {
    std::unique_lock<std::mutex> lock(m);
    const unsigned gen = generation;
    if (++waiting == count) {
      waiting = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return gen != generation; });
    }
  }
};
inline BlockBarrier block_barrier;
inline void __syncthreads() { block_barrier.wait(); }

template <typename... Args>
void emulate_launch(void (*kernel)(Args...), dim3 grid, dim3 block,
                    Args... args) {
  blockDim = block;
  gridDim = grid;
  const unsigned n = block.x * block.y * block.z;
  const unsigned blocks = grid.x * grid.y * grid.z;
  block_barrier.count = n;
  std::vector<std::thread> team;
  for (unsigned t = 0; t < n; ++t) {
    team.emplace_back([=] {
      threadIdx = dim3(t % block.x, t / block.x % block.y,
                       t / (block.x * block.y));
      for (unsigned i = 0; i < blocks; ++i) {
        blockIdx = dim3(i % grid.x, i / grid.x % grid.y, i / (grid.x * grid.y));
        kernel(args...);
        block_barrier.wait();  // the block is done before the next starts
      }
    });
  }
  for (auto& th : team) th.join();
}

// The C++ GRU kernel: one layer, one direction, whole sequence (see __init__.py).
//
// Layouts (row-major, time-major, gate order r, z, n):
//   x (T, N, I)   h0 (N, H)   weight_x (3H, I)   weight_h (3H, H)   bias_* (3H,)
//   mask (T, N) or undefined: 1 where step t of sequence n is real.
//   cache (T, N, 4H), written by a training forward, read by backward:
//     after:  [r, z, n, g_n]   g_n = U_n h_prev + b_hn
//     before: [r, z, n, q]     q   = r ⊙ h_prev (the input of U_n)
//   states (T, N, H): the state after each step; the output itself when mask is undefined.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace grukit {

// Element-wise work of one step runs on several threads from this many values on.
constexpr int64_t kParallelElems = 4096;
// The time loop is split over threads by batch rows when each gets at least this many.
constexpr int64_t kMinRowsPerThread = 4;

// The threads for_row_blocks splits N rows over (1: one loop).
inline int64_t row_block_threads(int64_t N) {
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), N / kMinRowsPerThread);
  return threads > 1 && !at::in_parallel_region() ? threads : 1;
}

// Batch rows are independent through time: with N large enough, each thread runs the
// whole time loop for its own block of rows (one single-threaded BLAS call per step,
// no barrier per step). Otherwise one loop, with BLAS and element-wise work threaded.
template <typename F>
void for_row_blocks(int64_t N, const F& f) {
  const int64_t threads = row_block_threads(N);
  if (threads > 1) {
    at::parallel_for(0, N, (N + threads - 1) / threads, f);
  } else {
    f(0, N);
  }
}

// The rows of for_row_blocks' largest block (at::parallel_for gives ⌈N / blocks⌉ to each but the last).
inline int64_t largest_row_block(int64_t N) {
  const int64_t threads = row_block_threads(N);
  if (threads <= 1) return N;
  const int64_t grain = (N + threads - 1) / threads, blocks = (N + grain - 1) / grain;
  return (N + blocks - 1) / blocks;
}

template <typename F>
void for_rows(int64_t N, int64_t H, const F& f) {
  if (N > 1 && N * H >= kParallelElems) {
    at::parallel_for(0, N, 1, f);
  } else {
    f(0, N);
  }
}

// -> {output (T,N,H), h_n (N,H), states (T,N,H), cache (T,N,4H) or undefined}
std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& weight_x,
                                const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                                const c10::optional<at::Tensor>& bias_h, const c10::optional<at::Tensor>& mask,
                                bool after, bool reverse, bool training);

// One step for streaming inference (no cache): h_prev (N, H) -> h (N, H), or (1, N, H) -> (1, N, H) as a
// one-layer GRU holds its state (no Python between the state and the kernel). Checks its arguments.
at::Tensor step(const at::Tensor& x_t, const at::Tensor& h_prev, const at::Tensor& weight_x,
                const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                const c10::optional<at::Tensor>& bias_h, bool after);

// -> {dx or undefined, dh0, dW_x, dW_h, db_x or undefined, db_h or undefined}
std::vector<at::Tensor> backward(const at::Tensor& d_output, const at::Tensor& d_h_n, const at::Tensor& x,
                                 const at::Tensor& h0, const at::Tensor& weight_x, const at::Tensor& weight_h,
                                 const c10::optional<at::Tensor>& mask, const at::Tensor& states,
                                 const at::Tensor& cache, bool after, bool reverse, bool has_bias, bool need_dx);

}  // namespace grukit

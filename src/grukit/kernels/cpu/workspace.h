// Large internal buffers of the kernel, kept for the next call instead of returned to the system.
//
// A training step allocates the forward's cache (T, N, 4H) and the backward's da (T, N, 3H): 67 and
// 50 MB at T=128, N=64, H=512. Memory fresh from the system is zeroed page by page as it is first
// written (a page fault per 4 KiB): 25 ms per 64 MB on one thread here, against 0.3 ms to write
// memory already touched. glibc reuses freed blocks up to 32 MB itself; larger ones it maps anew at
// every allocation. Since the next step asks for the same sizes, a buffer of kPoolMinBytes or more
// that the kernel frees goes to a small pool, and the next request that fits takes it.
//
// Rules, so that the pool never adds to what the kernel would hold without it when it allocates:
// - a request takes the smallest pooled block of its size up to twice its size;
// - a request that no pooled block fits first returns the whole pool to the system, then allocates:
//   no idle block is held while fresh memory is asked for (blocks of other sizes, a long batch's
//   after short ones follow, go at once);
// - past kPoolBlocks the block returned longest ago goes back to the system.
// Between calls the pool holds what the last calls freed, at most kPoolBlocks blocks, until a call
// of another size, grukit.kernels.cpu.empty_cache(), or exit.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>

namespace grukit {

constexpr size_t kPoolMinBytes = size_t(16) << 20;
constexpr size_t kPoolBlocks = 4;

struct Block {
  void* data;
  size_t bytes;
};

class Workspace {
 public:
  static Workspace& get() {
    static Workspace* pool = new Workspace();  // never destroyed: tensors may be freed after static destructors
    return *pool;
  }

  // An uninitialised tensor of `sizes` and `options` (CPU, dense), from the pool when a block fits.
  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    const int64_t numel = c10::multiply_integers(sizes);
    const size_t bytes = size_t(numel) * options.dtype().itemsize();
    if (!enabled() || bytes < kPoolMinBytes) return at::empty(sizes, options);
    Block block = take_or_release(bytes);
    if (block.data == nullptr) block = {allocate(bytes), bytes};
    return at::from_blob(
        block.data, sizes, [capacity = block.bytes](void* data) { Workspace::get().give({data, capacity}); },
        options);
  }

  // Frees every pooled block; returns the bytes freed.
  size_t release() {
    std::deque<Block> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
    }
    size_t bytes = 0;
    for (const Block& b : blocks) {
      bytes += b.bytes;
      std::free(b.data);
    }
    return bytes;
  }

  // The sizes in bytes of the pooled blocks, smallest first.
  std::vector<size_t> pooled() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<size_t> sizes;
    for (const Block& b : free_) sizes.push_back(b.bytes);
    std::sort(sizes.begin(), sizes.end());
    return sizes;
  }

  static std::atomic<bool>& enabled() {
    static std::atomic<bool> on{true};
    return on;
  }

 private:
  // 64-byte aligned, as torch's own CPU tensors; out of memory is reported as torch's allocator does
  static void* allocate(size_t bytes) {
    void* data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    TORCH_CHECK(data != nullptr, "DefaultCPUAllocator: can't allocate memory: you tried to allocate ", bytes,
                " bytes (grukit cpu kernel)");
    return data;
  }

  // The smallest pooled block of `bytes` … 2·`bytes`, removed from the pool; when none fits, every pooled
  // block is freed and {nullptr, 0} returned.
  Block take_or_release(size_t bytes) {
    std::deque<Block> unfit;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->bytes >= bytes && it->bytes / 2 <= bytes && (best == free_.end() || it->bytes < best->bytes)) {
          best = it;
        }
      }
      if (best != free_.end()) {
        const Block block = *best;
        free_.erase(best);
        return block;
      }
      unfit.swap(free_);
    }
    for (const Block& b : unfit) std::free(b.data);
    return {nullptr, 0};
  }

  // A freed block joins the pool (or the system, with the pool off); past kPoolBlocks the oldest goes.
  void give(Block block) {
    Block evicted{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!enabled()) {
        evicted = block;
      } else {
        free_.push_back(block);
        if (free_.size() > kPoolBlocks) {
          evicted = free_.front();
          free_.pop_front();
        }
      }
    }
    if (evicted.data != nullptr) std::free(evicted.data);
  }

  std::mutex mutex_;
  std::deque<Block> free_;  // oldest first
};

}  // namespace grukit

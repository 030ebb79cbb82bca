// Large internal buffers of the kernel, kept for the next call instead of returned to the system.
//
// A training step allocates the forward's cache (T, N, 4H) and the backward's da (T, N, 3H): 67 and
// 50 MB at T=128, N=64, H=512. Memory fresh from the system is zeroed page by page as it is first
// written (a page fault per 4 KiB): 25 ms per 64 MB on one thread here, against 0.3 ms to write
// memory already touched. glibc reuses freed blocks up to 32 MB itself; larger ones it maps anew at
// every allocation. Since the next step asks for the same sizes, a buffer of kPoolMinBytes or more
// that the kernel frees goes to a small pool, and the next request that fits takes it.
//
// Bounds: at most kPoolBlocks blocks; a block serves only a request of at least half its size (a
// short batch after a long one does not pin the long one's memory); past kPoolBlocks the smallest
// goes back to the system. The pool holds only buffers the kernel had in use, so between calls it
// keeps what the last calls freed, until grukit.kernels.cpu.empty_cache() or exit.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
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
    Block block = take(bytes);
    if (block.data == nullptr) block = {allocate(bytes), bytes};
    return at::from_blob(
        block.data, sizes, [capacity = block.bytes](void* data) { Workspace::get().give({data, capacity}); },
        options);
  }

  // Frees every pooled block; returns the bytes freed.
  size_t release() {
    std::vector<Block> blocks;
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

  static bool& enabled() {
    static bool on = true;
    return on;
  }

 private:
  // 64-byte aligned, as torch's own CPU tensors
  static void* allocate(size_t bytes) {
    void* data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (data == nullptr) throw std::bad_alloc();
    return data;
  }

  // The smallest pooled block of `bytes` … 2·`bytes`, removed from the pool; {nullptr, 0} when none fits.
  Block take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->bytes >= bytes && it->bytes / 2 <= bytes && (best == free_.end() || it->bytes < best->bytes)) best = it;
    }
    if (best == free_.end()) return {nullptr, 0};
    const Block block = *best;
    free_.erase(best);
    return block;
  }

  // A freed block joins the pool; past kPoolBlocks the smallest one is freed (the large ones cost most to fault).
  void give(Block block) {
    Block evicted{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!enabled()) {
        evicted = block;
      } else {
        free_.push_back(block);
        if (free_.size() > kPoolBlocks) {
          auto smallest = std::min_element(free_.begin(), free_.end(),
                                           [](const Block& a, const Block& b) { return a.bytes < b.bytes; });
          evicted = *smallest;
          free_.erase(smallest);
        }
      }
    }
    if (evicted.data != nullptr) std::free(evicted.data);
  }

  std::mutex mutex_;
  std::vector<Block> free_;
};

}  // namespace grukit

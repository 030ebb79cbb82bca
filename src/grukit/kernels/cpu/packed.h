// The recurrent weight of the forward pass, packed once per kernel call for the products of every step.
//
// Each step multiplies the same U (3H×H) by a new block of rows: a plain sgemm_ call copies U
// into the BLAS's internal panel layout every time, and for a block of 32 rows at H = 512
// that copy is a quarter of the call. MKL's packed GEMM (cblas_?gemm_pack once, then
// cblas_?gemm_compute per step) skips it: 475 → 347 µs per product at N = 32, H = 512 on one
// thread here. For blocks of 16 rows or more the result is sgemm_'s to the last bit (the same
// micro-kernel, in the same order); for fewer rows at H ≥ 128 sgemm_ takes another kernel, and
// the two differ by float32 rounding (at most 2e-6 at H = 512 in the tests here).
// The backward's per-step product (dg U) keeps plain gemm: packed, it took the same 355 µs.
// The symbols are weak: without them (a torch linked to OpenBLAS; torch 2.13's MKL exports the
// float ones only), without BLAS at all (`blas_allowed`), or for a product of a few rows (gemv_*),
// `times` is rows_times_wt as before.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "blas.h"

extern "C" {  // MKL's CBLAS, LP64: enums and MKL_INT are int
size_t cblas_sgemm_pack_get_size(int, int, int, int) __attribute__((weak));
size_t cblas_dgemm_pack_get_size(int, int, int, int) __attribute__((weak));
void cblas_sgemm_pack(int, int, int, int, int, int, float, const float*, int, float*) __attribute__((weak));
void cblas_dgemm_pack(int, int, int, int, int, int, double, const double*, int, double*) __attribute__((weak));
void cblas_sgemm_compute(int, int, int, int, int, int, const float*, int, const float*, int, float, float*, int)
    __attribute__((weak));
void cblas_dgemm_compute(int, int, int, int, int, int, const double*, int, const double*, int, double, double*, int)
    __attribute__((weak));
}

namespace grukit {

// whether this process has them for T (float64 runs unpacked on torch 2.13)
template <typename T>
bool pack_symbols() {
  if constexpr (std::is_same_v<T, float>) {
    return cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute;
  } else {
    return cblas_dgemm_pack_get_size && cblas_dgemm_pack && cblas_dgemm_compute;
  }
}

// How many matrices have been packed, and how many products have read a packed one (the tests check that the
// packed path runs where it should, and only there).
inline std::atomic<int64_t>& pack_count() {
  static std::atomic<int64_t> count{0};
  return count;
}

inline std::atomic<int64_t>& packed_product_count() {
  static std::atomic<int64_t> count{0};
  return count;
}

// Packing pays where MKL packs fast and each product gains, measured on torch 2.13's MKL (one thread, H 128 …
// 2048): blocks of 8 rows or more (with 5–7, cblas_sgemm_pack takes about 5× as long and, at H = 2048, every
// product is slower than sgemm_'s), and 16 steps or more (the pack costs 1 to 5 steps' products: at H = 2048,
// N = 8, 25 ms against 5.6 ms a step, repaid after about 9 steps).
constexpr int64_t kPackMinRows = 8;
constexpr int64_t kPackMinSteps = 16;

// Whether U may be packed (one flag for the whole extension); off, every product is a plain gemm call, as
// on a torch without the symbols. The tests turn it off to compare the two paths.
inline bool& packing_allowed() {
  static bool allowed = true;
  return allowed;
}

// Y (R×M, ldy) (+)= X (R×K, ldx) · Wᵀ for R ≤ max_rows, W stored M×K (ldw), which must outlive the object;
// W is packed when `products` products of up to max_rows rows will read it and that pays (see kPackMinRows).
template <typename T>
class PackedWeight {
 public:
  PackedWeight(const T* W, int64_t ldw, int64_t M, int64_t K, int64_t max_rows, int64_t products)
      : W_(W), ldw_(ldw), M_(M), K_(K) {
    const bool fits = std::max({M, K, ldw, max_rows}) <= int64_t(std::numeric_limits<int>::max());
    if (!(products >= kPackMinSteps && max_rows >= kPackMinRows && M > 0 && K > 0 && fits && pack_symbols<T>() &&
          packing_allowed() && blas_symbols() && blas_allowed()))
      return;
    const int m = int(M), n = int(max_rows), k = int(K), ld = int(ldw);
    const size_t bytes = is_float ? cblas_sgemm_pack_get_size(kAMatrix, m, n, k)
                                  : cblas_dgemm_pack_get_size(kAMatrix, m, n, k);
    // uninitialised (pages are touched only as the pack fills them), 64-byte aligned
    buffer_ = at::empty({int64_t((bytes + sizeof(T) - 1) / sizeof(T))}, at::TensorOptions().dtype(
                            c10::CppTypeToScalarType<T>::value));
    // row-major Y = X Wᵀ  ⇔  column-major Yᵀ = W Xᵀ: W (column-major K×M) is MKL's A, transposed
    OneBlasThread one_thread(2.0 * double(M) * double(max_rows) * double(K) < kSmallGemmFlops);
    packed_ = buffer_.data_ptr<T>();
    if constexpr (is_float) {
      cblas_sgemm_pack(kColMajor, kAMatrix, kTrans, m, n, k, 1.0f, W, ld, packed_);
    } else {
      cblas_dgemm_pack(kColMajor, kAMatrix, kTrans, m, n, k, 1.0, W, ld, packed_);
    }
    ++pack_count();
  }

  // WIDE: the streaming step's gemv (see rows_times_wt)
  template <bool WIDE = false>
  void times(int64_t R, const T* X, int64_t ldx, T* Y, int64_t ldy, bool accumulate) const {
    if (packed_ == nullptr || R < kPackMinRows) {  // (a smaller block of the same call: plain, see above)
      rows_times_wt<T, WIDE>(R, X, ldx, K_, W_, ldw_, M_, Y, ldy, accumulate);
      return;
    }
    ++packed_product_count();
    OneBlasThread one_thread(2.0 * double(M_) * double(R) * double(K_) < kSmallGemmFlops);  // as gemm
    const int m = int(M_), n = int(R), k = int(K_), la = int(ldw_), lb = int(ldx), lc = int(ldy);
    const T beta = accumulate ? T(1) : T(0);
    if constexpr (is_float) {
      cblas_sgemm_compute(kColMajor, kPacked, kNoTrans, m, n, k, packed_, la, X, lb, beta, Y, lc);
    } else {
      cblas_dgemm_compute(kColMajor, kPacked, kNoTrans, m, n, k, packed_, la, X, lb, beta, Y, lc);
    }
  }

 private:
  static constexpr bool is_float = std::is_same_v<T, float>;
  // CBLAS_LAYOUT, CBLAS_TRANSPOSE, CBLAS_IDENTIFIER and CBLAS_STORAGE values (mkl_cblas.h)
  static constexpr int kColMajor = 102, kNoTrans = 111, kTrans = 112, kAMatrix = 161, kPacked = 151;
  const T* W_;
  int64_t ldw_, M_, K_;
  at::Tensor buffer_;    // holds MKL's packed copy of W; undefined where the products run unpacked
  T* packed_ = nullptr;  // its data
};

}  // namespace grukit

// Matrix products on raw row-major pointers with leading dimensions.
//
// gemm: the BLAS that torch links (MKL or OpenBLAS), called through its Fortran symbol
//   (sgemm_/dgemm_, exported by libtorch_cpu) so that one per-step product costs no
//   dispatcher round trip and can read/write strided slices of the caches in place.
//   The symbols are weak: if a torch build does not export them, at::mm is used.
// gemv_nt / gemv_nn: hand-written products for a few rows (N small, streaming), where
//   a BLAS call costs more than the arithmetic. Both vectorize without reassociation.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "activations.h"  // GRUKIT_INLINE

extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
            const int*, const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*) __attribute__((weak));
int MKL_Set_Num_Threads_Local(int) __attribute__((weak));  // MKL C API (by value); absent with OpenBLAS
}

namespace grukit {

// Up to this many rows, the recurrent products use gemv_* instead of BLAS.
constexpr int64_t kGemvMaxRows = 4;
// Products below this many flops run on one BLAS thread: threading them saves a fraction
// of a millisecond on an idle machine and costs whole scheduler slices on a busy one
// (every fork-join waits for the slowest thread).
constexpr double kSmallGemmFlops = 64e6;

// While alive, MKL runs on the calling thread only (no-op without MKL).
struct OneBlasThread {
  int previous = 0;
  bool active;
  explicit OneBlasThread(bool on) : active(on && MKL_Set_Num_Threads_Local != nullptr) {
    if (active) previous = MKL_Set_Num_Threads_Local(1);
  }
  ~OneBlasThread() {
    if (active) MKL_Set_Num_Threads_Local(previous);
  }
};

inline bool blas_symbols() { return sgemm_ != nullptr && dgemm_ != nullptr; }

// Whether gemm may call sgemm_/dgemm_ at all (one flag for the whole extension); off, every product takes the
// at::mm path, as on a torch build without the symbols. The tests turn it off to check that path.
inline bool& blas_allowed() {
  static bool allowed = true;
  return allowed;
}

template <typename T>
at::Tensor as_matrix(const T* p, int64_t rows, int64_t cols, int64_t ld) {
  auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(p), {rows, cols}, {ld, 1}, options);
}

// C (M×Nc) = op(A) (M×K) · op(B) (K×Nc) + beta·C, all row-major; beta is 0 or 1.
// ta: A is stored K×M (lda) and used transposed; tb likewise for B (stored Nc×K).
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t Nc, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || Nc == 0) return;
  if (K == 0) {
    if (beta == T(0)) as_matrix(C, M, Nc, ldc).zero_();
    return;
  }
  OneBlasThread one_thread(2.0 * double(M) * double(Nc) * double(K) < kSmallGemmFlops);
  // the Fortran interface takes 32-bit sizes: past INT_MAX (T·N rows ≥ 2³¹) it would refuse, or wrap, silently
  const bool fits_int = std::max({M, Nc, K, lda, ldb, ldc}) <= int64_t(std::numeric_limits<int>::max());
  if (blas_symbols() && blas_allowed() && fits_int) {
    // row-major C = op(A)·op(B)  ⇔  column-major Cᵀ = op(B)ᵀ·op(A)ᵀ
    const char tra = ta ? 'T' : 'N', trb = tb ? 'T' : 'N';
    const int m = int(Nc), n = int(M), k = int(K), la = int(lda), lb = int(ldb), lc = int(ldc);
    const T one = 1;
    if constexpr (std::is_same_v<T, float>) {
      sgemm_(&trb, &tra, &m, &n, &k, &one, B, &lb, A, &la, &beta, C, &lc);
    } else {
      dgemm_(&trb, &tra, &m, &n, &k, &one, B, &lb, A, &la, &beta, C, &lc);
    }
    return;
  }
  at::Tensor a = ta ? as_matrix(A, K, M, lda).t() : as_matrix(A, M, K, lda);  // (M, K)
  at::Tensor b = tb ? as_matrix(B, Nc, K, ldb).t() : as_matrix(B, K, Nc, ldb);  // (K, Nc)
  at::Tensor c = as_matrix(C, M, Nc, ldc);  // (M, Nc)
  if (beta == T(0)) c.copy_(at::mm(a, b)); else c.add_(at::mm(a, b));
}

// One 32-byte SIMD register of T (GCC/Clang vector extension: AVX2 with -mavx2, two
// SSE registers without), and unaligned loads/stores of it.
template <typename T>
struct Simd {
  typedef T v __attribute__((vector_size(32)));
  static constexpr int L = 32 / sizeof(T);  // lanes: 8 floats or 4 doubles
};

template <typename T>
GRUKIT_INLINE typename Simd<T>::v vload(const T* p) {
  typename Simd<T>::v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
GRUKIT_INLINE void vstore(T* p, typename Simd<T>::v v) {
  std::memcpy(p, &v, sizeof v);
}

template <typename T>
GRUKIT_INLINE T hsum(typename Simd<T>::v v) {
  T s = 0;
  for (int l = 0; l < Simd<T>::L; ++l) s += v[l];
  return s;
}

// y[m] (+)= Σ_k x[k]·W[m·ldw + k] for m < M: one row times Wᵀ (W row-major M×K).
// Four rows of W at a time, one register of partial sums per row.
template <typename T>
void gemv_nt(const T* __restrict__ x, int64_t K, const T* __restrict__ W, int64_t ldw, int64_t M,
             T* __restrict__ y, bool accumulate) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::L;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) {
    const T* w0 = W + m * ldw;
    const T* w1 = w0 + ldw;
    const T* w2 = w1 + ldw;
    const T* w3 = w2 + ldw;
    V a0 = {}, a1 = {}, a2 = {}, a3 = {};
    int64_t k = 0;
    for (; k + L <= K; k += L) {
      const V xv = vload(x + k);
      a0 += vload(w0 + k) * xv;
      a1 += vload(w1 + k) * xv;
      a2 += vload(w2 + k) * xv;
      a3 += vload(w3 + k) * xv;
    }
    T s0 = hsum<T>(a0), s1 = hsum<T>(a1), s2 = hsum<T>(a2), s3 = hsum<T>(a3);
    for (; k < K; ++k) {
      s0 += w0[k] * x[k];
      s1 += w1[k] * x[k];
      s2 += w2[k] * x[k];
      s3 += w3[k] * x[k];
    }
    y[m] = accumulate ? y[m] + s0 : s0;
    y[m + 1] = accumulate ? y[m + 1] + s1 : s1;
    y[m + 2] = accumulate ? y[m + 2] + s2 : s2;
    y[m + 3] = accumulate ? y[m + 3] + s3 : s3;
  }
  for (; m < M; ++m) {
    const T* w0 = W + m * ldw;
    V a0 = {};
    int64_t k = 0;
    for (; k + L <= K; k += L) a0 += vload(w0 + k) * vload(x + k);
    T s0 = hsum<T>(a0);
    for (; k < K; ++k) s0 += w0[k] * x[k];
    y[m] = accumulate ? y[m] + s0 : s0;
  }
}

// The lane sums of L registers at once, s[r] = Σ_l a[r][l] for r < L, as one register: a pairwise tree that
// adds neighbouring lanes within each 16-byte half (vhaddps/vhaddpd's pattern), then the two halves. Where
// hsum adds one register's lanes one after another (L dependent additions, a scalar each), this takes
// 2·log2(L) shuffles and additions of whole registers for all L rows.
template <typename T>
struct LaneSums;

template <>
struct LaneSums<float> {
  using V = Simd<float>::v;
  typedef int32_t Mask __attribute__((vector_size(32)));
  // [x0+x1, x2+x3, y0+y1, y2+y3 | x4+x5, x6+x7, y4+y5, y6+y7]
  static GRUKIT_INLINE V pairs(V x, V y) {
    return __builtin_shuffle(x, y, Mask{0, 2, 8, 10, 4, 6, 12, 14}) +
           __builtin_shuffle(x, y, Mask{1, 3, 9, 11, 5, 7, 13, 15});
  }
  // [x's low half + x's high half, y's low half + y's high half]
  static GRUKIT_INLINE V halves(V x, V y) {
    return __builtin_shuffle(x, y, Mask{0, 1, 2, 3, 8, 9, 10, 11}) +
           __builtin_shuffle(x, y, Mask{4, 5, 6, 7, 12, 13, 14, 15});
  }
  // pairs of pairs: [Σa0, Σa1, Σa2, Σa3 over lanes 0-3 | the same over lanes 4-7], then the halves
  static GRUKIT_INLINE V of(const V* a) {
    return halves(pairs(pairs(a[0], a[1]), pairs(a[2], a[3])), pairs(pairs(a[4], a[5]), pairs(a[6], a[7])));
  }
};

template <>
struct LaneSums<double> {
  using V = Simd<double>::v;
  typedef int64_t Mask __attribute__((vector_size(32)));
  // [x0+x1, y0+y1 | x2+x3, y2+y3]
  static GRUKIT_INLINE V pairs(V x, V y) {
    return __builtin_shuffle(x, y, Mask{0, 4, 2, 6}) + __builtin_shuffle(x, y, Mask{1, 5, 3, 7});
  }
  // [x's low half + x's high half, y's low half + y's high half]
  static GRUKIT_INLINE V halves(V x, V y) {
    return __builtin_shuffle(x, y, Mask{0, 1, 4, 5}) + __builtin_shuffle(x, y, Mask{2, 3, 6, 7});
  }
  static GRUKIT_INLINE V of(const V* a) { return halves(pairs(a[0], a[1]), pairs(a[2], a[3])); }
};

// Σ_k x[k]·w_r[k] for R rows w_r = W + r·ldw at once, one register of partial sums per row (lanes along k;
// then the lane sums, L rows at a time where R allows, else hsum; then the tail).
template <typename T, int R>
GRUKIT_INLINE void rows_dot(const T* __restrict__ x, int64_t K, const T* __restrict__ W, int64_t ldw,
                            T* __restrict__ y, bool accumulate) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::L;
  V a[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) a[r] = V{};
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    const V xv = vload(x + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a[r] += vload(W + r * ldw + k) * xv;
  }
  T s[R];
  if constexpr (R % L == 0) {
    if (k == K) {  // no tail: the sums go to y as whole registers
#pragma GCC unroll 2
      for (int r = 0; r < R; r += L) {
        const V sums = LaneSums<T>::of(a + r);
        vstore(y + r, accumulate ? vload(y + r) + sums : sums);
      }
      return;
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r += L) vstore(s + r, LaneSums<T>::of(a + r));
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) s[r] = hsum<T>(a[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const T* w = W + r * ldw;
    for (int64_t j = k; j < K; ++j) s[r] += w[j] * x[j];
    y[r] = accumulate ? y[r] + s[r] : s[r];
  }
}

// gemv_nt with eight rows of W at a time: eight independent chains of multiply-adds, where gemv_nt's four
// wait on each other's latency (a step at I=64, H=128 takes 15% less), and their eight sums as one tree of
// register shuffles (LaneSums: 4.5 → 3.9 µs per kernel step at I=64, H=128, timed alone). The streaming step
// uses it; the sequence paths keep gemv_nt, whose sums the compiler contracts otherwise, so that their results
// (and every figure trained or evaluated through them) stay what they were, to the last bit.
template <typename T>
void gemv_nt_wide(const T* __restrict__ x, int64_t K, const T* __restrict__ W, int64_t ldw, int64_t M,
                  T* __restrict__ y, bool accumulate) {
  int64_t m = 0;
  for (; m + 8 <= M; m += 8) rows_dot<T, 8>(x, K, W + m * ldw, ldw, y + m, accumulate);
  for (; m < M; ++m) rows_dot<T, 1>(x, K, W + m * ldw, ldw, y + m, accumulate);
}

// y[m] (+)= Σ_k x[k]·W[k·ldw + m] for m < M: one row times W (W row-major K×M).
// Blocks of 8 registers of y stay in registers while k runs.
template <typename T>
void gemv_nn(const T* __restrict__ x, int64_t K, const T* __restrict__ W, int64_t ldw, int64_t M,
             T* __restrict__ y, bool accumulate) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::L, B = 8;
  int64_t m0 = 0;
  for (; m0 + B * L <= M; m0 += B * L) {
    V acc[B];
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b) acc[b] = accumulate ? vload(y + m0 + b * L) : V{};
    for (int64_t k = 0; k < K; ++k) {
      const V xv = V{} + x[k];
      const T* w = W + k * ldw + m0;
#pragma GCC unroll 8
      for (int b = 0; b < B; ++b) acc[b] += xv * vload(w + b * L);
    }
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b) vstore(y + m0 + b * L, acc[b]);
  }
  for (; m0 + L <= M; m0 += L) {
    V acc = accumulate ? vload(y + m0) : V{};
    for (int64_t k = 0; k < K; ++k) acc += (V{} + x[k]) * vload(W + k * ldw + m0);
    vstore(y + m0, acc);
  }
  for (; m0 < M; ++m0) {
    T acc = accumulate ? y[m0] : T(0);
    for (int64_t k = 0; k < K; ++k) acc += x[k] * W[k * ldw + m0];
    y[m0] = acc;
  }
}

// Rows × matrix products that pick gemv_* for a few rows and BLAS otherwise.
// Y (R×M, ldy) (+)= X (R×K, ldx) · Wᵀ, W stored M×K (ldw); WIDE: gemv_nt_wide (the streaming step's).
template <typename T, bool WIDE = false>
void rows_times_wt(int64_t R, const T* X, int64_t ldx, int64_t K, const T* W, int64_t ldw, int64_t M, T* Y,
                   int64_t ldy, bool accumulate) {
  if (R <= kGemvMaxRows) {
    for (int64_t i = 0; i < R; ++i) {
      if constexpr (WIDE) {
        gemv_nt_wide(X + i * ldx, K, W, ldw, M, Y + i * ldy, accumulate);
      } else {
        gemv_nt(X + i * ldx, K, W, ldw, M, Y + i * ldy, accumulate);
      }
    }
  } else {
    gemm<T>(false, true, R, M, K, X, ldx, W, ldw, accumulate ? T(1) : T(0), Y, ldy);
  }
}

// Y (R×M, ldy) (+)= X (R×K, ldx) · W, W stored K×M (ldw).
template <typename T>
void rows_times_w(int64_t R, const T* X, int64_t ldx, int64_t K, const T* W, int64_t ldw, int64_t M, T* Y,
                  int64_t ldy, bool accumulate) {
  if (R <= kGemvMaxRows) {
    for (int64_t i = 0; i < R; ++i) gemv_nn(X + i * ldx, K, W, ldw, M, Y + i * ldy, accumulate);
  } else {
    gemm<T>(false, false, R, M, K, X, ldx, W, ldw, accumulate ? T(1) : T(0), Y, ldy);
  }
}

}  // namespace grukit

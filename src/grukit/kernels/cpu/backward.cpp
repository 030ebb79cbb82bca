// Backward pass (BPTT), with the names of fused.py's docstring.
//
// Only dh is carried through the serial loop: per step one fused element-wise pass
// writes da = [da_r, da_z, da_n] into a (T, N, 3H) buffer, and one GEMM (after, with
// dg = [da_r, da_z, da_n ⊙ r] from a per-thread scratch row) or two (before) carry dh
// to h_prev. dW_x, dW_h, dx and the bias gradients are single GEMMs / column sums after
// the loop (for reset="after", da_n is turned into da_n ⊙ r in place between them).
#include "activations.h"
#include "blas.h"
#include "gru.h"
#include "workspace.h"

namespace grukit {
namespace {

// dĥ = m ⊙ (dh + d_out), the gradient reaching the new state of this step; dh becomes
// its direct part for step t − 1: (1 − m) ⊙ dh + dĥ ⊙ (1 − z). Without a mask m = 1.
template <typename T, bool MASK>
GRUKIT_INLINE T carry(T& dh, T d_out, T z, T m) {
  if constexpr (MASK) {
    const T dh_hat = m * (dh + d_out);
    dh = (T(1) - m) * dh + dh_hat * (T(1) - z);
    return dh_hat;
  } else {
    const T dh_hat = dh + d_out;
    dh = dh_hat * (T(1) - z);
    return dh_hat;
  }
}

// reset="after", one row n. c = [r, z, n, g_n]; writes da = [da_r, da_z, da_n] (kept for
// after the loop), dg = [da_r, da_z, da_n ⊙ r] (this step's GEMM operand, scratch) and
// dh ← (1 − m) ⊙ dh + dĥ ⊙ (1 − z) (the U term is added by the caller's GEMM).
template <typename T, bool MASK>
GRUKIT_INLINE void row_after(int64_t H, const T* __restrict__ c, const T* __restrict__ d_out,
                             const T* __restrict__ h_prev, T* __restrict__ dh, T* __restrict__ da,
                             T* __restrict__ dg, T m) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = c[j], z = c[H + j], n = c[2 * H + j], g_n = c[3 * H + j];
    const T dh_hat = carry<T, MASK>(dh[j], d_out[j], z, m);
    const T da_n = dh_hat * z * (T(1) - n * n);
    const T da_z = dh_hat * (n - h_prev[j]) * z * (T(1) - z);
    const T da_r = da_n * g_n * r * (T(1) - r);
    da[j] = dg[j] = da_r;
    da[H + j] = dg[H + j] = da_z;
    da[2 * H + j] = da_n;
    dg[2 * H + j] = da_n * r;
  }
}

// reset="before", first half: da_z, da_n and the direct part of dh.
template <typename T, bool MASK>
GRUKIT_INLINE void row_before_zn(int64_t H, const T* __restrict__ c, const T* __restrict__ d_out,
                                 const T* __restrict__ h_prev, T* __restrict__ dh, T* __restrict__ da, T m) {
  for (int64_t j = 0; j < H; ++j) {
    const T z = c[H + j], n = c[2 * H + j];
    const T dh_hat = carry<T, MASK>(dh[j], d_out[j], z, m);
    da[H + j] = dh_hat * (n - h_prev[j]) * z * (T(1) - z);
    da[2 * H + j] = dh_hat * z * (T(1) - n * n);
  }
}

// reset="before", second half: dq = da_n U_n is given; da_r and dh += dq ⊙ r.
template <typename T>
GRUKIT_INLINE void row_before_r(int64_t H, const T* __restrict__ c, const T* __restrict__ h_prev,
                                const T* __restrict__ dq, T* __restrict__ dh, T* __restrict__ da) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = c[j];
    da[j] = dq[j] * h_prev[j] * r * (T(1) - r);
    dh[j] += dq[j] * r;
  }
}

// Column sums of a (R, C) row-major matrix (leading dimension ld), accumulated in double;
// threads over column blocks only for large matrices (a small torch reduction would
// fork-join 2 threads).
template <typename T>
at::Tensor column_sums(const T* a, int64_t R, int64_t C, int64_t ld, const at::TensorOptions& options) {
  at::Tensor out = at::empty({C}, options);  // (C,)
  T* o = out.data_ptr<T>();
  auto sum_columns = [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    for (int64_t r = 0; r < R; ++r) {
      const T* row = a + r * ld + c0;
      for (int64_t j = 0; j < c1 - c0; ++j) acc[j] += double(row[j]);
    }
    for (int64_t j = 0; j < c1 - c0; ++j) o[c0 + j] = T(acc[j]);
  };
  if (R * C >= (int64_t(1) << 20)) {
    at::parallel_for(0, C, 64, sum_columns);
  } else {
    sum_columns(0, C);
  }
  return out;
}

// A contiguous (T, N, H) copy of d_output (often an expanded scalar from .sum()), made on
// this thread when small, for the same reason as column_sums.
template <typename T>
at::Tensor contiguous_small(const at::Tensor& t) {
  if (t.is_contiguous() || t.numel() >= (int64_t(1) << 20)) return t.contiguous();
  at::Tensor out = at::empty(t.sizes(), t.options());
  const T* src = t.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  const int64_t A = t.size(0), B = t.size(1), C = t.size(2);
  const int64_t sa = t.stride(0), sb = t.stride(1), sc = t.stride(2);
  for (int64_t i = 0; i < A; ++i)
    for (int64_t j = 0; j < B; ++j)
      for (int64_t k = 0; k < C; ++k) *dst++ = src[i * sa + j * sb + k * sc];
  return out;
}

template <typename T>
std::vector<at::Tensor> backward_impl(const at::Tensor& d_output_any, const at::Tensor& d_h_n, const at::Tensor& x,
                                      const at::Tensor& h0, const at::Tensor& weight_x,
                                      const at::Tensor& weight_h, const c10::optional<at::Tensor>& mask,
                                      const at::Tensor& states, const at::Tensor& cache, bool after,
                                      bool reverse, bool has_bias, bool need_dx) {
  const int64_t T_ = x.size(0), N = x.size(1), I = x.size(2), H = h0.size(1);
  const int64_t TN = T_ * N, ldc = 4 * H, lda = 3 * H;
  const auto options = x.options();
  const at::Tensor d_output = contiguous_small<T>(d_output_any);           // (T, N, H)
  at::Tensor da = Workspace::get().empty({T_, N, lda}, options);        // (T, N, 3H)
  at::Tensor dh = d_h_n.clone();                                           // (N, H)
  at::Tensor dW_x = at::empty({3 * H, I}, options);                        // (3H, I)
  at::Tensor dW_h = at::empty({3 * H, H}, options);                        // (3H, H)
  at::Tensor dx = need_dx ? at::empty({T_, N, I}, options) : at::Tensor();  // (T, N, I)

  const T* Wx = weight_x.data_ptr<T>();
  const T* Wh = weight_h.data_ptr<T>();
  const T* cp = cache.data_ptr<T>();
  const T* sp = states.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* dop = d_output.data_ptr<T>();
  const T* mp = mask ? mask->data_ptr<T>() : nullptr;
  T* dap = da.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();

  for_row_blocks(N, [&](int64_t n0, int64_t n1) {  // rows n0..n1 through all steps
    const int64_t Nb = n1 - n0;
    std::vector<T> dq(after ? 0 : Nb * H);      // (Nb, H)
    std::vector<T> dg(after ? Nb * 3 * H : 0);  // (Nb, 3H)
    T* dhb = dhp + n0 * H;                  // (Nb, H)
    for (int64_t s = T_ - 1; s >= 0; --s) {  // s: position in walking order
      const int64_t t = reverse ? T_ - 1 - s : s;
      const int64_t row = t * N + n0;  // first row of this block at step t
      const T* h_prev = s == 0 ? h0p + n0 * H : sp + (reverse ? row + N : row - N) * H;  // (Nb, H)
      const T* c = cp + row * ldc;       // (Nb, 4H)
      const T* d_out = dop + row * H;    // (Nb, H)
      T* dat = dap + row * lda;          // (Nb, lda)
      const T* m = mp ? mp + row : nullptr;
      if (after) {
        for_rows(Nb, H, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            T* dgi = dg.data() + i * 3 * H;
            if (m) row_after<T, true>(H, c + i * ldc, d_out + i * H, h_prev + i * H, dhb + i * H, dat + i * lda, dgi, m[i]);
            else row_after<T, false>(H, c + i * ldc, d_out + i * H, h_prev + i * H, dhb + i * H, dat + i * lda, dgi, T(1));
          }
        });
        rows_times_w<T>(Nb, dg.data(), 3 * H, 3 * H, Wh, H, H, dhb, H, true);  // dh += dg U  (Nb, H)
      } else {
        for_rows(Nb, H, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            if (m) row_before_zn<T, true>(H, c + i * ldc, d_out + i * H, h_prev + i * H, dhb + i * H, dat + i * lda, m[i]);
            else row_before_zn<T, false>(H, c + i * ldc, d_out + i * H, h_prev + i * H, dhb + i * H, dat + i * lda, T(1));
          }
        });
        rows_times_w<T>(Nb, dat + 2 * H, lda, H, Wh + 2 * H * H, H, H, dq.data(), H, false);  // dq = da_n U_n
        for_rows(Nb, H, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            row_before_r<T>(H, c + i * ldc, h_prev + i * H, dq.data() + i * H, dhb + i * H, dat + i * lda);
        });
        rows_times_w<T>(Nb, dat, lda, 2 * H, Wh, H, H, dhb, H, true);  // dh += [da_r, da_z] U_rz  (Nb, H)
      }
    }
  });

  T* dWx = dW_x.data_ptr<T>();
  T* dWh = dW_h.data_ptr<T>();
  // dst (rows×H) = da[:, col:col+rows]ᵀ h_prev over all steps: the first walked step reads
  // h0, the others the state of the step before them (two GEMMs, no copy of the states).
  auto times_h_prev = [&](int64_t col, int64_t rows, T* dst) {
    const int64_t t_first = reverse ? T_ - 1 : 0;
    gemm<T>(true, false, rows, H, N, dap + t_first * N * lda + col, lda, h0p, H, T(0), dst, H);
    if (T_ > 1) {
      const T* da_rest = dap + (reverse ? 0 : N * lda) + col;  // steps whose h_prev is a state
      const T* s_rest = sp + (reverse ? N * H : 0);
      gemm<T>(true, false, rows, H, (T_ - 1) * N, da_rest, lda, s_rest, H, T(1), dst, H);
    }
  };
  const T* xp = x.data_ptr<T>();
  at::Tensor db_x, db_h;
  if (T_ == 0) {
    dW_x.zero_();
    dW_h.zero_();
    if (need_dx) dx.zero_();
    if (has_bias) db_x = at::zeros({3 * H}, options), db_h = at::zeros({3 * H}, options);
    return {dx, dh, dW_x, dW_h, db_x, db_h};
  }
  gemm<T>(true, false, 3 * H, I, TN, dap, lda, xp, I, T(0), dWx, I);                                // dW_x = daᵀ x
  if (need_dx) gemm<T>(false, false, TN, I, 3 * H, dap, lda, Wx, I, T(0), dx.data_ptr<T>(), I);  // dx = da W_x
  if (has_bias) db_x = column_sums<T>(dap, TN, 3 * H, lda, options);                                // Σ da
  if (after) {
    // da becomes dg = [da_r, da_z, da_n ⊙ r] in place, the operand of dW_h and db_h
    auto times_r = [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        T* __restrict__ d = dap + row * lda + 2 * H;
        const T* __restrict__ r = cp + row * ldc;
        for (int64_t j = 0; j < H; ++j) d[j] *= r[j];
      }
    };
    if (TN * H >= (int64_t(1) << 20)) at::parallel_for(0, TN, 256, times_r); else times_r(0, TN);
    times_h_prev(0, 3 * H, dWh);                                                 // dW_h = dgᵀ h_prev
    if (has_bias) {
      db_h = db_x.clone();
      db_h.narrow(0, 2 * H, H).copy_(column_sums<T>(dap + 2 * H, TN, H, lda, options));  // Σ dg
    }
  } else {
    times_h_prev(0, 2 * H, dWh);                                                               // [da_r, da_z]ᵀ h_prev
    gemm<T>(true, false, H, H, TN, dap + 2 * H, lda, cp + 3 * H, ldc, T(0), dWh + 2 * H * H, H);  // da_nᵀ q
    if (has_bias) db_h = db_x.clone();                                                         // Σ da
  }
  return {dx, dh, dW_x, dW_h, db_x, db_h};
}

}  // namespace

std::vector<at::Tensor> backward(const at::Tensor& d_output, const at::Tensor& d_h_n, const at::Tensor& x,
                                 const at::Tensor& h0, const at::Tensor& weight_x, const at::Tensor& weight_h,
                                 const c10::optional<at::Tensor>& mask, const at::Tensor& states,
                                 const at::Tensor& cache, bool after, bool reverse, bool has_bias, bool need_dx) {
  // what the forward saved with training=true; anything else would be read out of bounds
  const int64_t T_ = x.size(0), N = x.size(1), H = h0.size(1);
  TORCH_CHECK(states.sizes() == at::IntArrayRef({T_, N, H}) && cache.sizes() == at::IntArrayRef({T_, N, 4 * H}) &&
                  d_output.sizes() == at::IntArrayRef({T_, N, H}) && d_h_n.sizes() == at::IntArrayRef({N, H}),
              "grukit cpu kernel backward: expected states and d_output (", T_, ", ", N, ", ", H, "), cache (", T_,
              ", ", N, ", ", 4 * H, ") (a forward with training=true) and d_h_n (", N, ", ", H, "), got ",
              states.sizes(), ", ", d_output.sizes(), ", ", cache.sizes(), " and ", d_h_n.sizes());
  if (x.scalar_type() == at::kFloat)
    return backward_impl<float>(d_output, d_h_n, x, h0, weight_x, weight_h, mask, states, cache, after, reverse,
                                has_bias, need_dx);
  TORCH_CHECK(x.scalar_type() == at::kDouble, "grukit cpu kernel: float32 or float64 only, got ", x.scalar_type());
  return backward_impl<double>(d_output, d_h_n, x, h0, weight_x, weight_h, mask, states, cache, after, reverse,
                               has_bias, need_dx);
}

}  // namespace grukit

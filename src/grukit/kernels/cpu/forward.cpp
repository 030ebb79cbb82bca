// Forward pass (see gru.h for layouts; the math is DESIGN §1 and fused.py's docstring).
//
//   gx = x W_xᵀ                                one GEMM for all T·N rows, into the cache
//   per step: g = h_prev U ᵀ                    one GEMM (after) or two (before)
//             r, z, n, h from gx, g, biases     one fused, vectorized pass over N·H
#include "activations.h"
#include "blas.h"
#include "gru.h"
#include "packed.h"
#include "workspace.h"

#include <string>
#include <type_traits>

namespace grukit {
namespace {

// Bias vector of one layer: [b_xr + b_hr, b_xz + b_hz, b_xn, b_hn] (4H), zeros without bias.
template <typename T>
void bias_sums_into(const c10::optional<at::Tensor>& bias_x, const c10::optional<at::Tensor>& bias_h, int64_t H,
                    T* __restrict__ b) {
  std::fill(b, b + 4 * H, T(0));
  if (bias_x && bias_h) {
    const T* bx = bias_x->data_ptr<T>();
    const T* bh = bias_h->data_ptr<T>();
    for (int64_t j = 0; j < 2 * H; ++j) b[j] = bx[j] + bh[j];
    for (int64_t j = 0; j < H; ++j) b[2 * H + j] = bx[2 * H + j];
    for (int64_t j = 0; j < H; ++j) b[3 * H + j] = bh[2 * H + j];
  }
}

template <typename T>
std::vector<T> bias_sums(const c10::optional<at::Tensor>& bias_x, const c10::optional<at::Tensor>& bias_h,
                         int64_t H) {
  std::vector<T> b(4 * H);
  bias_sums_into<T>(bias_x, bias_h, H, b.data());
  return b;
}

// reset="after", one row n: g (4H or 3H) holds gx, gh (3H) holds U h_prev.
template <typename T, bool MASK, bool TRAIN>
GRUKIT_INLINE void row_after(int64_t H, T* __restrict__ g, const T* __restrict__ gh, const T* __restrict__ b,
                             const T* __restrict__ h_prev, T* __restrict__ h, T* __restrict__ out, T m) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = Act<T>::sigmoid(g[j] + gh[j] + b[j]);
    const T z = Act<T>::sigmoid(g[H + j] + gh[H + j] + b[H + j]);
    const T g_n = gh[2 * H + j] + b[3 * H + j];
    const T n = Act<T>::tanh(g[2 * H + j] + b[2 * H + j] + r * g_n);
    const T hp = h_prev[j];
    const T h_new = lerp(hp, n, z);  // z ⊙ n + (1 − z) ⊙ h_prev
    if constexpr (MASK) {
      h[j] = lerp(hp, h_new, m);  // m ∈ {0, 1}: h_new on a real step, h_prev on a padded one
      out[j] = m * h_new;
    } else {
      h[j] = h_new;
    }
    if constexpr (TRAIN) {
      g[j] = r;
      g[H + j] = z;
      g[2 * H + j] = n;
      g[3 * H + j] = g_n;
    }
  }
}

// reset="before", first half of one row: r, z into g, q = r ⊙ h_prev.
template <typename T>
GRUKIT_INLINE void row_before_rz(int64_t H, T* __restrict__ g, const T* __restrict__ gh, const T* __restrict__ b,
                                 const T* __restrict__ h_prev, T* __restrict__ q) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = Act<T>::sigmoid(g[j] + gh[j] + b[j]);
    g[j] = r;
    g[H + j] = Act<T>::sigmoid(g[H + j] + gh[H + j] + b[H + j]);
    q[j] = r * h_prev[j];
  }
}

// reset="before", second half: gh[2H..3H] holds U_n q.
template <typename T, bool MASK, bool TRAIN>
GRUKIT_INLINE void row_before_n(int64_t H, T* __restrict__ g, const T* __restrict__ gh, const T* __restrict__ b,
                                const T* __restrict__ h_prev, T* __restrict__ h, T* __restrict__ out, T m) {
  for (int64_t j = 0; j < H; ++j) {
    const T n = Act<T>::tanh(g[2 * H + j] + b[2 * H + j] + gh[2 * H + j] + b[3 * H + j]);
    const T z = g[H + j];
    const T hp = h_prev[j];
    const T h_new = lerp(hp, n, z);  // z ⊙ n + (1 − z) ⊙ h_prev
    if constexpr (MASK) {
      h[j] = lerp(hp, h_new, m);  // m ∈ {0, 1}: h_new on a real step, h_prev on a padded one
      out[j] = m * h_new;
    } else {
      h[j] = h_new;
    }
    if constexpr (TRAIN) g[2 * H + j] = n;
  }
}

// Calls row(n, mask, train) for every row n, with mask and train as compile-time
// std::bool_constant values (m != nullptr, training), so each row kernel is instantiated
// once per combination and the branch is taken once per row, not per element.
template <typename T, typename Row>
void each_row(int64_t N, int64_t H, bool training, const T* m, const Row& row) {
  using yes = std::true_type;
  using no = std::false_type;
  for_rows(N, H, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      if (m) {
        training ? row(n, yes{}, yes{}) : row(n, yes{}, no{});
      } else {
        training ? row(n, no{}, yes{}) : row(n, no{}, no{});
      }
    }
  });
}

// The products with U of `steps` steps: h_prev Uᵀ (reset="after"), or h_prev U_rzᵀ and q U_nᵀ (reset="before"),
// for blocks of up to max_rows rows; U is packed once where that pays (PackedWeight).
template <typename T>
struct RecurrentProducts {
  PackedWeight<T> u, u_rz, u_n;
  RecurrentProducts(bool after, const T* Wh, int64_t H, int64_t max_rows, int64_t steps)
      : u(Wh, H, 3 * H, H, max_rows, after ? steps : 0),
        u_rz(Wh, H, 2 * H, H, max_rows, after ? 0 : steps),
        u_n(Wh + 2 * H * H, H, H, H, max_rows, after ? 0 : steps) {}
};

// One step for all N rows: g (N, ldg) holds gx and receives the cache when training;
// gh (N, 3H) and q_tmp (N, H) are scratch; h (N, H) receives the new state. WIDE: the streaming step's products.
template <typename T, bool WIDE = false>
void one_step(bool after, bool training, int64_t N, int64_t H, int64_t ldg, T* g, T* gh, T* q_tmp,
              const RecurrentProducts<T>& U, const T* bp, const T* h_prev, T* h, T* out, const T* m) {
  const int64_t G3 = 3 * H;
  if (after) {
    U.u.template times<WIDE>(N, h_prev, H, gh, G3, false);  // g = h_prev Uᵀ  (N, 3H)
    each_row<T>(N, H, training, m, [&](int64_t n, auto mask, auto train) {
      constexpr bool MASK = decltype(mask)::value;
      row_after<T, MASK, decltype(train)::value>(H, g + n * ldg, gh + n * G3, bp, h_prev + n * H, h + n * H,
                                                 MASK ? out + n * H : nullptr, MASK ? m[n] : T(1));
    });
    return;
  }
  U.u_rz.template times<WIDE>(N, h_prev, H, gh, G3, false);  // [g_r, g_z] = h_prev U_rzᵀ  (N, 2H)
  T* q = training ? g + 3 * H : q_tmp;  // (N, H) with stride ldq
  const int64_t ldq = training ? ldg : H;
  for_rows(N, H, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) row_before_rz<T>(H, g + n * ldg, gh + n * G3, bp, h_prev + n * H, q + n * ldq);
  });
  U.u_n.template times<WIDE>(N, q, ldq, gh + 2 * H, G3, false);  // U_n q  (N, H)
  each_row<T>(N, H, training, m, [&](int64_t n, auto mask, auto train) {
    constexpr bool MASK = decltype(mask)::value;
    row_before_n<T, MASK, decltype(train)::value>(H, g + n * ldg, gh + n * G3, bp, h_prev + n * H, h + n * H,
                                                  MASK ? out + n * H : nullptr, MASK ? m[n] : T(1));
  });
}

template <typename T>
std::vector<at::Tensor> forward_impl(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& weight_x,
                                     const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                                     const c10::optional<at::Tensor>& bias_h,
                                     const c10::optional<at::Tensor>& mask, bool after, bool reverse,
                                     bool training) {
  const int64_t T_ = x.size(0), N = x.size(1), I = x.size(2), H = h0.size(1);
  const int64_t G3 = 3 * H, ldg = training ? 4 * H : 3 * H;
  const auto options = x.options();
  at::Tensor cache = Workspace::get().empty({T_, N, ldg}, options);       // (T, N, 4H or 3H)
  at::Tensor output = at::empty({T_, N, H}, options);                     // (T, N, H)
  at::Tensor states = mask ? at::empty({T_, N, H}, options) : output;     // (T, N, H)
  const std::vector<T> b = bias_sums<T>(bias_x, bias_h, H);               // (4H,)

  const T* Wh = weight_h.data_ptr<T>();
  T* cp = cache.data_ptr<T>();
  T* op = output.data_ptr<T>();
  T* sp = states.data_ptr<T>();
  const T* mp = mask ? mask->data_ptr<T>() : nullptr;

  // gx = x W_xᵀ for every step at once, written into the first 3H columns of the cache
  rows_times_wt<T>(T_ * N, x.data_ptr<T>(), I, I, weight_x.data_ptr<T>(), I, G3, cp, ldg, false);

  const T* h0p = h0.data_ptr<T>();
  const RecurrentProducts<T> U(after, Wh, H, largest_row_block(N), T_);
  for_row_blocks(N, [&](int64_t n0, int64_t n1) {  // rows n0..n1 through all steps
    const int64_t Nb = n1 - n0;
    std::vector<T> scratch(Nb * G3 + Nb * H);  // gh (Nb, 3H), q (Nb, H)
    for (int64_t s = 0; s < T_; ++s) {
      const int64_t t = reverse ? T_ - 1 - s : s;
      const int64_t row = t * N + n0;  // first row of this block at step t
      const T* h_prev = s == 0 ? h0p + n0 * H : sp + (reverse ? row + N : row - N) * H;  // (Nb, H)
      one_step<T>(after, training, Nb, H, ldg, cp + row * ldg, scratch.data(), scratch.data() + Nb * G3, U,
                  b.data(), h_prev, sp + row * H, op + row * H, mp ? mp + row : nullptr);
    }
  });
  at::Tensor h_n = T_ == 0 ? h0.clone() : states[reverse ? 0 : T_ - 1].clone();  // (N, H)
  return {output, h_n, states, training ? cache : at::Tensor()};
}

constexpr size_t kStepScratch = 1 << 16;  // elements (256 KiB of float): 7NH + 4H for N = 4 rows up to H = 2048

template <typename T>
at::Tensor step_impl(const at::Tensor& x_t, const at::Tensor& h_prev, const at::Tensor& weight_x,
                     const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                     const c10::optional<at::Tensor>& bias_h, bool after) {
  const int64_t N = x_t.size(0), I = x_t.size(1), H = h_prev.size(-1), G3 = 3 * H;
  at::Tensor h = at::empty(h_prev.sizes(), x_t.options());  // (N, H) or (1, N, H), as h_prev
  // gx (N, 3H), gh (N, 3H), q (N, H), the bias sums b (4H): a stream's (up to kStepScratch elements) kept by
  // the thread between calls, which come at every step and whose arithmetic takes microseconds; a larger
  // call's its own, freed when it returns
  const size_t need = size_t(2 * N * G3 + N * H + 4 * H);
  thread_local std::vector<T> kept;
  std::vector<T> own;
  std::vector<T>& scratch = need <= kStepScratch ? kept : own;
  if (scratch.size() < need) scratch.resize(need);
  T* gx = scratch.data();
  T* b = gx + 2 * N * G3 + N * H;
  bias_sums_into<T>(bias_x, bias_h, H, b);
  rows_times_wt<T, true>(N, x_t.data_ptr<T>(), I, I, weight_x.data_ptr<T>(), I, G3, gx, G3, false);  // (N, 3H)
  const RecurrentProducts<T> U(after, weight_h.data_ptr<T>(), H, N, 1);  // one step: nothing to pack
  one_step<T, true>(after, false, N, H, G3, gx, gx + N * G3, gx + 2 * N * G3, U, b, h_prev.data_ptr<T>(),
                    h.data_ptr<T>(), nullptr, nullptr);
  return h;
}

// t of like's dtype, a dense tensor on the CPU (its shape is the caller's to check)
void check_kind(const at::Tensor& t, const char* name, const at::Tensor& like) {
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), name, ": expected dtype ", like.scalar_type(),
                   " (that of x_t), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, ": the 'cpu' backend expects CPU tensors, got ", t.device());
  TORCH_CHECK_VALUE(t.layout() == at::kStrided, name, ": expected a dense (strided) tensor, got layout ",
                    t.layout());
}

// t (rows, cols), or (1, rows, cols) where `layered` allows it, of like's dtype, on the CPU
void check_matrix(const at::Tensor& t, const char* name, int64_t rows, int64_t cols, const at::Tensor& like,
                  bool layered = false) {
  const bool shaped = t.dim() == 2 || (layered && t.dim() == 3 && t.size(0) == 1);
  TORCH_CHECK_VALUE(shaped && t.size(-2) == rows && t.size(-1) == cols, name, ": expected shape (", rows, ", ",
                    cols, ")", layered ? " or (1, " + std::to_string(rows) + ", " + std::to_string(cols) + ")" : "",
                    ", got ", t.sizes());
  check_kind(t, name, like);
}

}  // namespace

std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& weight_x,
                                const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                                const c10::optional<at::Tensor>& bias_h, const c10::optional<at::Tensor>& mask,
                                bool after, bool reverse, bool training) {
  if (x.scalar_type() == at::kFloat)
    return forward_impl<float>(x, h0, weight_x, weight_h, bias_x, bias_h, mask, after, reverse, training);
  TORCH_CHECK(x.scalar_type() == at::kDouble, "grukit cpu kernel: float32 or float64 only, got ", x.scalar_type());
  return forward_impl<double>(x, h0, weight_x, weight_h, bias_x, bias_h, mask, after, reverse, training);
}

}  // namespace grukit

namespace grukit {

at::Tensor step(const at::Tensor& x_t, const at::Tensor& h_prev, const at::Tensor& weight_x,
                const at::Tensor& weight_h, const c10::optional<at::Tensor>& bias_x,
                const c10::optional<at::Tensor>& bias_h, bool after) {
  TORCH_CHECK_VALUE(x_t.dim() == 2, "x_t: expected an (N, I) tensor, got shape ", x_t.sizes());
  TORCH_CHECK_TYPE(x_t.scalar_type() == at::kFloat || x_t.scalar_type() == at::kDouble,
                   "x_t: expected float32 or float64, got ", x_t.scalar_type());
  const int64_t N = x_t.size(0), I = x_t.size(1), H = weight_h.dim() == 2 ? weight_h.size(1) : -1;
  check_matrix(x_t, "x_t", N, I, x_t);
  // weight_h first: it gives H, which the others' shapes are checked against
  TORCH_CHECK_VALUE(weight_h.dim() == 2, "weight_h: expected a (3H, H) matrix, got shape ", weight_h.sizes());
  check_matrix(weight_h, "weight_h", 3 * H, H, x_t);
  check_matrix(weight_x, "weight_x", 3 * H, I, x_t);
  check_matrix(h_prev, "h_prev", N, H, x_t, /*layered=*/true);  // (N, H), or (1, N, H): a one-layer GRU's state
  TORCH_CHECK_VALUE(bias_x.has_value() == bias_h.has_value(),
                    "bias_x, bias_h: expected both tensors or both None, got one of each");
  for (const auto* bias : {&bias_x, &bias_h}) {  // (3H,), checked without a view (no dispatcher call)
    if (!bias->has_value()) continue;
    const at::Tensor& t = **bias;
    TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == 3 * H, "bias: expected shape (", 3 * H, ",), got ", t.sizes());
    check_kind(t, "bias", x_t);
  }
  // the memory read through data_ptr: contiguous, with a lazy negation (a flag beside the data) applied
  // (the common case, already so, asks the dispatcher nothing: this runs at every step of a stream)
  auto c = [](const at::Tensor& t) {
    return t.is_neg() || !t.is_contiguous() ? t.resolve_neg().contiguous() : t;
  };
  auto co = [&c](const c10::optional<at::Tensor>& t) {
    return t.has_value() ? c10::optional<at::Tensor>(c(*t)) : t;
  };
  if (x_t.scalar_type() == at::kFloat)
    return step_impl<float>(c(x_t), c(h_prev), c(weight_x), c(weight_h), co(bias_x), co(bias_h), after);
  return step_impl<double>(c(x_t), c(h_prev), c(weight_x), c(weight_h), co(bias_x), co(bias_h), after);
}

}  // namespace grukit

// σ, tanh and the state update's lerp, written so that GCC vectorizes a loop that calls them.
//
// float: Cephes-style exp (range reduction by ln 2, degree-6 polynomial, 2^n built in
// the exponent bits) with no branches and no libm call, so `for j < H` loops become
// AVX2 code; max error ~2 ulp for exp, ~3e-8 absolute for σ and tanh. NaN propagates, and exp
// overflows to inf, so σ(a) → 0 and tanh(a) → ±1 as torch's do.
// double: the libm functions (correctly rounded to ~1 ulp), used by the float64 tests.
#pragma once

#include <cmath>
#include <cstdint>

namespace grukit {

#define GRUKIT_INLINE inline __attribute__((always_inline))

GRUKIT_INLINE float exp_f(float x) {
  const float hi = 88.3762626647949f;   // largest x with finite exp(x)
  const float lo = -87.3365447504019f;  // exp(lo) is the smallest normal float
  float xc = x > hi ? hi : x;           // comparisons written so that NaN passes through
  xc = xc < lo ? lo : xc;
  const float magic = 12582912.0f;      // 1.5·2^23: adding it rounds to an integer
  float t = xc * 1.44269504088896341f + magic;
  float n = t - magic;                  // n = round(x / ln 2)
  int32_t ni = __builtin_bit_cast(int32_t, t) - __builtin_bit_cast(int32_t, magic);
  float r = xc - n * 0.693359375f;      // r = x − n·ln 2 in two parts (Cody–Waite)
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;       // e^r on [−ln2/2, ln2/2]
  uint32_t bits = __builtin_bit_cast(uint32_t, y) + (static_cast<uint32_t>(ni) << 23);
  float e = __builtin_bit_cast(float, bits);  // y · 2^n
  e = x > hi ? __builtin_inff() : e;    // overflow: inf, so that σ(a) reaches 0 for a < −88.4
  e = x < lo ? 0.0f : e;                // below the normal range: 0 (an absolute error under 1.2e-38)
  return x != x ? x : e;
}

GRUKIT_INLINE float sigmoid_f(float a) { return 1.0f / (1.0f + exp_f(-a)); }

GRUKIT_INLINE float tanh_f(float a) {
  float ax = a < 0.0f ? -a : a;
  float e = exp_f(2.0f * ax);
  float big = 1.0f - 2.0f / (e + 1.0f);   // tanh|a|, accurate for |a| ≥ 0.625
  big = a < 0.0f ? -big : big;
  float s = a * a;                        // Cephes odd polynomial for |a| < 0.625
  float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
                  1.33314422036e-1f) * s - 3.33332819422e-1f) * s * a + a;
  return ax < 0.625f ? small : big;
}

// a + w·(b − a), exact at w = 0 and at w = 1 (torch.lerp's form, so the cpu kernel rounds as the fused one):
// the update h = z ⊙ n + (1 − z) ⊙ h_prev written as h_prev + z·(n − h_prev) loses n to cancellation at z = 1
// when |h_prev| ≫ |n| (h_prev = 1e8 gave h = 0 instead of n).
template <typename T>
GRUKIT_INLINE T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <typename T>
struct Act;

template <>
struct Act<float> {
  static GRUKIT_INLINE float sigmoid(float a) { return sigmoid_f(a); }
  static GRUKIT_INLINE float tanh(float a) { return tanh_f(a); }
};

template <>
struct Act<double> {
  static GRUKIT_INLINE double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }
  static GRUKIT_INLINE double tanh(double a) { return std::tanh(a); }
};

}  // namespace grukit

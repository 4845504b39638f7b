// Shared declarations of the fused multispectral / SAR patch-embedding op.
//
// The op maps raw sensor values x (B, C, H, W) to patch tokens (B, L, D):
//
//   v = log_bands[c] ? 10 * log10(max(x, eps)) : x        (SAR linear -> dB)
//   z = (v - mean[c]) / std[c]                             (per-band normalisation)
//   z = 0 where x == nodata or x is not finite             (masking)
//   tokens = Conv2d(C, D, p, stride=p)(z).flatten(2).transpose(1, 2)
//   valid  = fraction of valid (band, pixel) values per patch: (B, L)
//
// Row r of the packed patch matrix P (B*L, K = C*p*p) is patch (b, ph, pw) in
// row-major order; column k = c*p*p + i*p + j matches the flattening of the
// Conv2d weight (D, C, p, p), so tokens = P @ weight.view(D, K).T + bias.
//
// This header is included by the C++ (CPU) and the CUDA translation units, so
// everything here is host/device inline and free of ATen operator headers.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace mosaic_vlm {

// Values below kLogEps are clamped before the log: 10*log10(1e-10) = -100 dB.
constexpr double kLogEps = 1e-10;
// d/dv 10*log10(v) = kDbPerLn / v.
constexpr double kDbPerLn = 4.3429448190325182765;  // 10 / ln(10)

template <typename T>
constexpr bool kIsFloatInput = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                               std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>;

// Accumulation type of the normalisation: double only for float64 outputs.
template <typename out_t>
using acc_type_t = std::conditional_t<std::is_same_v<out_t, double>, double, float>;

// Exact comparison type of an input value (finiteness test).
template <typename in_t>
using cmp_type_t = std::conditional_t<std::is_same_v<in_t, double>, double, float>;

// Per-band constants, indexed by band c.
template <typename acc_t>
struct BandTable {
  const acc_t* mean;     // (C,)
  const acc_t* inv_std;  // (C,)
  const uint8_t* log;    // (C,) 1 = convert linear power to dB first
};

C10_HOST_DEVICE inline float log10_of(float v) { return log10f(v); }
C10_HOST_DEVICE inline double log10_of(double v) { return log10(v); }

template <typename T>
C10_HOST_DEVICE inline bool is_finite(T v) {
#ifdef __CUDA_ARCH__
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

// Normalises one raw value. Returns whether it is valid; writes z (0 when invalid).
template <typename in_t, typename acc_t>
C10_HOST_DEVICE inline bool normalise_value(in_t raw, acc_t mean, acc_t inv_std, bool log_band,
                                            bool has_nodata, in_t nodata, acc_t* z) {
  bool ok = !(has_nodata && raw == nodata);
  if constexpr (kIsFloatInput<in_t>) {
    ok = ok && is_finite(static_cast<cmp_type_t<in_t>>(raw));
  }
  acc_t v = static_cast<acc_t>(raw);
  if (log_band) {
    const acc_t eps = static_cast<acc_t>(kLogEps);
    v = static_cast<acc_t>(10) * log10_of(v > eps ? v : eps);
  }
  *z = ok ? (v - mean) * inv_std : static_cast<acc_t>(0);
  return ok;
}

// d z / d raw for a valid value (the chain rule of normalise_value).
template <typename acc_t>
C10_HOST_DEVICE inline acc_t normalise_derivative(acc_t v, acc_t inv_std, bool log_band) {
  if (!log_band) {
    return inv_std;
  }
  // torch.clamp_min passes the gradient where v >= eps.
  return v >= static_cast<acc_t>(kLogEps) ? static_cast<acc_t>(kDbPerLn) / v * inv_std
                                         : static_cast<acc_t>(0);
}

// Geometry of one call, validated by check_geometry.
struct Geometry {
  int64_t B, C, H, W, p, Hp, Wp, L, K;
};

// Validates shapes and returns the geometry. Every error names the offending sizes.
inline Geometry check_geometry(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& std,
                               int64_t patch_size, const std::optional<at::Tensor>& log_bands) {
  TORCH_CHECK(x.dim() == 4, "spectral_patch_embed: x must be (B, C, H, W), got ", x.dim(),
              " dimensions with shape ", x.sizes());
  TORCH_CHECK(patch_size >= 1, "spectral_patch_embed: patch_size must be >= 1, got ",
              patch_size);
  Geometry g{};
  g.B = x.size(0);
  g.C = x.size(1);
  g.H = x.size(2);
  g.W = x.size(3);
  g.p = patch_size;
  TORCH_CHECK(g.H % g.p == 0 && g.W % g.p == 0, "spectral_patch_embed: image size H=", g.H,
              ", W=", g.W, " is not divisible by patch_size=", g.p,
              "; crop or pad the input to a multiple of the patch size");
  g.Hp = g.H / g.p;
  g.Wp = g.W / g.p;
  g.L = g.Hp * g.Wp;
  g.K = g.C * g.p * g.p;
  TORCH_CHECK(mean.dim() == 1 && mean.size(0) == g.C, "spectral_patch_embed: mean must have ",
              g.C, " values (one per band), got shape ", mean.sizes());
  TORCH_CHECK(std.dim() == 1 && std.size(0) == g.C, "spectral_patch_embed: std must have ",
              g.C, " values (one per band), got shape ", std.sizes());
  TORCH_CHECK(mean.device() == x.device() && std.device() == x.device(),
              "spectral_patch_embed: mean/std must be on ", x.device());
  if (log_bands.has_value()) {
    const at::Tensor& lb = *log_bands;
    TORCH_CHECK(lb.dim() == 1 && lb.size(0) == g.C && lb.scalar_type() == at::kBool,
                "spectral_patch_embed: log_bands must be a bool tensor of ", g.C,
                " values, got ", lb.scalar_type(), " of shape ", lb.sizes());
    TORCH_CHECK(lb.device() == x.device(), "spectral_patch_embed: log_bands must be on ",
                x.device());
  }
  return g;
}

// Validates the projection weight/bias against the geometry; returns D.
inline int64_t check_weight(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, const Geometry& g) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(1) == g.C && weight.size(2) == g.p &&
                  weight.size(3) == g.p,
              "spectral_patch_embed: weight must be (D, C=", g.C, ", p=", g.p, ", p=", g.p,
              "), got ", weight.sizes());
  TORCH_CHECK(weight.device() == x.device(), "spectral_patch_embed: weight is on ",
              weight.device(), " but x is on ", x.device());
  const int64_t D = weight.size(0);
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == D, "spectral_patch_embed: bias must be (",
                D, ",), got ", bias->sizes());
    TORCH_CHECK(bias->scalar_type() == weight.scalar_type() && bias->device() == x.device(),
                "spectral_patch_embed: bias must match the weight's dtype and device");
  }
  return D;
}

// Validates the incoming gradient of the tokens (B, L, D).
inline void check_grad_tokens(const at::Tensor& grad_tokens, const Geometry& g, int64_t D) {
  TORCH_CHECK(grad_tokens.dim() == 3 && grad_tokens.size(0) == g.B &&
                  grad_tokens.size(1) == g.L && grad_tokens.size(2) == D,
              "spectral_patch_embed backward: grad_tokens must be (", g.B, ", ", g.L, ", ", D,
              "), got ", grad_tokens.sizes());
}

// Converts the optional nodata to the input type. Returns false when it can never
// match (an integer input and a nodata that is not a representable integer).
template <typename in_t>
inline bool nodata_as(std::optional<double> nodata, in_t* out) {
  if (!nodata.has_value()) {
    return false;
  }
  const double v = *nodata;
  if constexpr (kIsFloatInput<in_t>) {
    if constexpr (std::is_same_v<in_t, double>) {
      *out = v;
    } else {
      *out = static_cast<in_t>(static_cast<float>(v));
    }
    return !std::isnan(v);  // NaN is already masked as non-finite
  } else {
    if (!(v >= static_cast<double>(std::numeric_limits<in_t>::lowest()) &&
          v <= static_cast<double>(std::numeric_limits<in_t>::max()) && std::floor(v) == v)) {
      return false;
    }
    *out = static_cast<in_t>(v);
    return true;
  }
}

// Calls f(in_t{}) with the C++ type of the raw input dtype.
template <typename F>
inline void dispatch_input_type(c10::ScalarType t, F&& f) {
  switch (t) {
    case c10::ScalarType::Byte: f(uint8_t{}); break;
    case c10::ScalarType::Short: f(int16_t{}); break;
    case c10::ScalarType::UInt16: f(uint16_t{}); break;
    case c10::ScalarType::Int: f(int32_t{}); break;
    case c10::ScalarType::Half: f(c10::Half{}); break;
    case c10::ScalarType::BFloat16: f(c10::BFloat16{}); break;
    case c10::ScalarType::Float: f(float{}); break;
    case c10::ScalarType::Double: f(double{}); break;
    default:
      TORCH_CHECK(false, "spectral_patch_embed: unsupported input dtype ", t,
                  " (expected uint8, int16, uint16, int32, float16, bfloat16, float32 or "
                  "float64)");
  }
}

// Calls f(out_t{}) with the C++ type of the projection (output) dtype.
template <typename F>
inline void dispatch_output_type(c10::ScalarType t, F&& f) {
  switch (t) {
    case c10::ScalarType::Half: f(c10::Half{}); break;
    case c10::ScalarType::BFloat16: f(c10::BFloat16{}); break;
    case c10::ScalarType::Float: f(float{}); break;
    case c10::ScalarType::Double: f(double{}); break;
    default:
      TORCH_CHECK(false, "spectral_patch_embed: the weight must be a floating tensor, got ", t);
  }
}

}  // namespace mosaic_vlm

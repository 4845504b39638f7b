// CPU kernels of the fused spectral patch embedding.
//
// Forward: at::parallel_for over rows of the packed patch matrix (one row = one
// patch of one image, B*L rows). Each thread packs a tile of `tile` rows -- decode
// (uint16/half/...), optional dB conversion, per-band normalisation, nodata/non-finite
// masking and patch extraction in one pass over the input -- into a thread-local
// buffer that stays in cache, and feeds it straight to a GEMM (addmm) that writes
// the tile's tokens. The normalised image is never materialised.
//
// Backward: the weight gradient needs the whole packed matrix (G^T @ P), which
// spectral_pack rebuilds with the same fused packing (cheaper than keeping it alive
// between forward and backward); the input gradient multiplies a tile of G by the
// weight and scatters it back through the chain rule of the normalisation.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../spectral.h"

namespace mosaic_vlm {
namespace {

// Band constants converted to the accumulation type, owned on the host.
template <typename acc_t>
struct HostBands {
  std::vector<acc_t> mean, inv_std;
  std::vector<uint8_t> log;

  HostBands(const at::Tensor& mean_t, const at::Tensor& std_t,
            const std::optional<at::Tensor>& log_bands, int64_t C)
      : mean(C), inv_std(C), log(C, 0) {
    const at::Tensor m = mean_t.to(at::kDouble).contiguous();
    const at::Tensor s = std_t.to(at::kDouble).contiguous();
    const double* mp = m.const_data_ptr<double>();
    const double* sp = s.const_data_ptr<double>();
    for (int64_t c = 0; c < C; ++c) {
      TORCH_CHECK(sp[c] != 0.0 && std::isfinite(sp[c]) && std::isfinite(mp[c]),
                  "spectral_patch_embed: band ", c, " has mean=", mp[c], ", std=", sp[c],
                  "; std must be finite and non-zero");
      mean[c] = static_cast<acc_t>(mp[c]);
      inv_std[c] = static_cast<acc_t>(1.0 / sp[c]);
    }
    if (log_bands.has_value()) {
      const at::Tensor lb = log_bands->contiguous();
      const bool* lp = lb.const_data_ptr<bool>();
      for (int64_t c = 0; c < C; ++c) log[c] = lp[c] ? 1 : 0;
    }
  }
};

// Packs p consecutive pixels of one band row; returns the number of valid ones.
// Inlined with sW == 1 in the common case so the loop vectorises.
template <bool kLog, typename in_t, typename out_t, typename acc_t>
C10_ALWAYS_INLINE int64_t pack_span(const in_t* src, int64_t sW, int64_t p, acc_t mean,
                                    acc_t inv_std, bool has_nodata, in_t nodata, out_t* dst) {
  int64_t count = 0;
  for (int64_t j = 0; j < p; ++j) {
    acc_t z;
    count += normalise_value<in_t, acc_t>(src[j * sW], mean, inv_std, kLog, has_nodata, nodata,
                                          &z);
    dst[j] = static_cast<out_t>(z);
  }
  return count;
}

// Input strides in elements.
struct Strides {
  int64_t b, c, h, w;
};

// Packs rows [r0, r1) of P into dst (r1 - r0, K) and their valid fractions into valid.
template <typename in_t, typename out_t, typename acc_t>
void pack_rows(const in_t* x, const Strides& s, const Geometry& g, const HostBands<acc_t>& bands,
               bool has_nodata, in_t nodata, int64_t r0, int64_t r1, out_t* dst, float* valid) {
  const int64_t pp = g.p * g.p;
  const float inv_k = 1.0f / static_cast<float>(g.K);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / g.L, l = r % g.L;
    const int64_t ph = l / g.Wp, pw = l % g.Wp;
    const in_t* base = x + b * s.b + ph * g.p * s.h + pw * g.p * s.w;
    out_t* out = dst + (r - r0) * g.K;
    int64_t count = 0;
    for (int64_t c = 0; c < g.C; ++c) {
      const acc_t m = bands.mean[c], is = bands.inv_std[c];
      const bool lg = bands.log[c] != 0;
      for (int64_t i = 0; i < g.p; ++i) {
        const in_t* src = base + c * s.c + i * s.h;
        out_t* o = out + c * pp + i * g.p;
        if (s.w == 1) {
          count += lg ? pack_span<true>(src, 1, g.p, m, is, has_nodata, nodata, o)
                      : pack_span<false>(src, 1, g.p, m, is, has_nodata, nodata, o);
        } else {
          count += lg ? pack_span<true>(src, s.w, g.p, m, is, has_nodata, nodata, o)
                      : pack_span<false>(src, s.w, g.p, m, is, has_nodata, nodata, o);
        }
      }
    }
    valid[r - r0] = static_cast<float>(count) * inv_k;
  }
}

// Rows per tile: enough for an efficient GEMM, small enough for the tile to stay in L2.
int64_t tile_rows(int64_t K, int64_t elem_size, int64_t rows) {
  const int64_t target_bytes = int64_t{1} << 20;  // 1 MiB
  const int64_t t = std::clamp<int64_t>(target_bytes / std::max<int64_t>(K * elem_size, 1), 32,
                                        512);
  const int64_t per_thread = (rows + at::get_num_threads() - 1) / at::get_num_threads();
  return std::max<int64_t>(1, std::min(t, per_thread));
}

Strides strides_of(const at::Tensor& x) {
  return {x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
}

std::tuple<at::Tensor, at::Tensor> spectral_patch_embed_cpu(
    const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    const at::Tensor& mean, const at::Tensor& std, int64_t patch_size,
    std::optional<double> nodata, const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, bias, g);
  const int64_t rows = g.B * g.L;
  at::Tensor tokens = at::empty({g.B, g.L, D}, weight.options());  // (B, L, D)
  at::Tensor valid = at::empty({g.B, g.L}, x.options().dtype(at::kFloat));  // (B, L)
  if (rows == 0 || D == 0) {
    valid.zero_();
    return {tokens, valid};
  }
  // Detached views: the GEMMs below run on worker threads outside autograd.
  const at::Tensor w_t = weight.detach().reshape({D, g.K}).t();  // (K, D)
  const std::optional<at::Tensor> b =
      bias.has_value() ? std::optional<at::Tensor>(bias->detach()) : std::nullopt;
  at::Tensor tok2d = tokens.view({rows, D});  // (B*L, D)
  const Strides s = strides_of(x);
  dispatch_output_type(weight.scalar_type(), [&](auto out_tag) {
    using out_t = decltype(out_tag);
    using acc_t = acc_type_t<out_t>;
    const HostBands<acc_t> bands(mean, std, log_bands, g.C);
    dispatch_input_type(x.scalar_type(), [&](auto in_tag) {
      using in_t = decltype(in_tag);
      in_t nd{};
      const bool has_nd = nodata_as<in_t>(nodata, &nd);
      const in_t* xp = x.const_data_ptr<in_t>();
      float* vp = valid.mutable_data_ptr<float>();
      const int64_t tile = tile_rows(g.K, sizeof(out_t), rows);
      at::parallel_for(0, rows, tile, [&](int64_t begin, int64_t end) {
        at::AutoDispatchBelowADInplaceOrView guard;
        at::Tensor buf = at::empty({std::min(tile, end - begin), g.K}, w_t.options());
        out_t* bp = buf.mutable_data_ptr<out_t>();
        for (int64_t r0 = begin; r0 < end; r0 += tile) {
          const int64_t n = std::min(tile, end - r0);
          pack_rows<in_t, out_t, acc_t>(xp, s, g, bands, has_nd, nd, r0, r0 + n, bp, vp + r0);
          at::Tensor out = tok2d.narrow(0, r0, n);  // (n, D)
          const at::Tensor a = buf.narrow(0, 0, n);  // (n, K)
          if (b.has_value()) {
            at::addmm_out(out, *b, a, w_t);
          } else {
            at::mm_out(out, a, w_t);
          }
        }
      });
    });
  });
  return {tokens, valid};
}

at::Tensor spectral_weight_grad_cpu(const at::Tensor& grad_tokens, const at::Tensor& x,
                                    const at::Tensor& weight, const at::Tensor& mean,
                                    const at::Tensor& std, int64_t patch_size,
                                    std::optional<double> nodata,
                                    const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, std::nullopt, g);
  check_grad_tokens(grad_tokens, g, D);
  const int64_t rows = g.B * g.L;
  // Accumulated in float32 (float64 for float64 weights), also for half/bf16 weights, so
  // summing many tiles does not round at every step.
  const at::ScalarType acc_type =
      weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor g2d =
      grad_tokens.detach().to(acc_type).reshape({rows, D}).contiguous();  // (B*L, D)
  // One (D, K) accumulator per thread: G_tile^T @ P_tile summed over its tiles.
  std::vector<at::Tensor> partial(at::get_num_threads());
  const Strides s = strides_of(x);
  dispatch_output_type(acc_type, [&](auto out_tag) {
    using out_t = decltype(out_tag);
    using acc_t = acc_type_t<out_t>;
    const HostBands<acc_t> bands(mean, std, log_bands, g.C);
    dispatch_input_type(x.scalar_type(), [&](auto in_tag) {
      using in_t = decltype(in_tag);
      in_t nd{};
      const bool has_nd = nodata_as<in_t>(nodata, &nd);
      const in_t* xp = x.const_data_ptr<in_t>();
      const int64_t tile = tile_rows(g.K, sizeof(out_t), rows);
      at::parallel_for(0, rows, tile, [&](int64_t begin, int64_t end) {
        at::AutoDispatchBelowADInplaceOrView guard;
        at::Tensor buf = at::empty({std::min(tile, end - begin), g.K}, g2d.options());
        std::vector<float> scratch(std::min(tile, end - begin));  // valid, unused here
        at::Tensor& acc = partial[at::get_thread_num()];
        for (int64_t r0 = begin; r0 < end; r0 += tile) {
          const int64_t n = std::min(tile, end - r0);
          pack_rows<in_t, out_t, acc_t>(xp, s, g, bands, has_nd, nd, r0, r0 + n,
                                        buf.mutable_data_ptr<out_t>(), scratch.data());
          const at::Tensor gt = g2d.narrow(0, r0, n).t();  // (D, n)
          const at::Tensor a = buf.narrow(0, 0, n);         // (n, K)
          if (acc.defined()) {
            acc.addmm_(gt, a);
          } else {
            acc = at::mm(gt, a);  // (D, K)
          }
        }
      });
    });
  });
  at::Tensor grad_w;
  for (const at::Tensor& part : partial) {
    if (!part.defined()) continue;
    if (grad_w.defined()) {
      grad_w.add_(part);
    } else {
      grad_w = part;
    }
  }
  if (!grad_w.defined()) grad_w = at::zeros({D, g.K}, weight.options().dtype(acc_type));
  return grad_w.to(weight.scalar_type()).view({D, g.C, g.p, g.p});  // (D, C, p, p)
}

at::Tensor spectral_input_grad_cpu(const at::Tensor& grad_tokens, const at::Tensor& x,
                                   const at::Tensor& weight, const at::Tensor& mean,
                                   const at::Tensor& std, int64_t patch_size,
                                   std::optional<double> nodata,
                                   const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, std::nullopt, g);
  TORCH_CHECK(at::isFloatingType(x.scalar_type()),
              "spectral_input_grad: x must be floating, got ", x.scalar_type());
  check_grad_tokens(grad_tokens, g, D);
  const int64_t rows = g.B * g.L;
  at::Tensor grad_x = at::empty({g.B, g.C, g.H, g.W}, x.options());  // (B, C, H, W)
  if (rows == 0) return grad_x;
  const at::Tensor w2d = weight.detach().reshape({D, g.K}).contiguous();  // (D, K)
  const at::Tensor g2d =
      grad_tokens.detach().to(weight.scalar_type()).reshape({rows, D}).contiguous();  // (B*L, D)
  const Strides s = strides_of(x);
  dispatch_output_type(weight.scalar_type(), [&](auto out_tag) {
    using out_t = decltype(out_tag);
    using acc_t = acc_type_t<out_t>;
    const HostBands<acc_t> bands(mean, std, log_bands, g.C);
    dispatch_input_type(x.scalar_type(), [&](auto in_tag) {
      using in_t = decltype(in_tag);
      if constexpr (kIsFloatInput<in_t>) {
        in_t nd{};
        const bool has_nd = nodata_as<in_t>(nodata, &nd);
        const in_t* xp = x.const_data_ptr<in_t>();
        in_t* gp = grad_x.mutable_data_ptr<in_t>();
        const int64_t pp = g.p * g.p;
        const int64_t tile = tile_rows(g.K, sizeof(out_t), rows);
        at::parallel_for(0, rows, tile, [&](int64_t begin, int64_t end) {
          at::AutoDispatchBelowADInplaceOrView guard;
          at::Tensor buf = at::empty({std::min(tile, end - begin), g.K}, w2d.options());
          for (int64_t r0 = begin; r0 < end; r0 += tile) {
            const int64_t n = std::min(tile, end - r0);
            at::Tensor gp_tile = buf.narrow(0, 0, n);  // (n, K)
            at::mm_out(gp_tile, g2d.narrow(0, r0, n), w2d);
            const out_t* gpp = gp_tile.const_data_ptr<out_t>();
            for (int64_t r = r0; r < r0 + n; ++r) {
              const int64_t b = r / g.L, l = r % g.L;
              const int64_t ph = l / g.Wp, pw = l % g.Wp;
              const out_t* grow = gpp + (r - r0) * g.K;
              for (int64_t c = 0; c < g.C; ++c) {
                const acc_t m = bands.mean[c], is = bands.inv_std[c];
                const bool lg = bands.log[c] != 0;
                for (int64_t i = 0; i < g.p; ++i) {
                  const int64_t y = ph * g.p + i;
                  const in_t* src = xp + b * s.b + c * s.c + y * s.h + pw * g.p * s.w;
                  in_t* dst = gp + ((b * g.C + c) * g.H + y) * g.W + pw * g.p;
                  const out_t* gr = grow + c * pp + i * g.p;
                  for (int64_t j = 0; j < g.p; ++j) {
                    const in_t raw = src[j * s.w];
                    acc_t z;
                    const bool ok = normalise_value<in_t, acc_t>(raw, m, is, lg, has_nd, nd, &z);
                    const acc_t d = normalise_derivative<acc_t>(static_cast<acc_t>(raw), is, lg);
                    dst[j] = static_cast<in_t>(ok ? static_cast<acc_t>(gr[j]) * d : acc_t(0));
                  }
                }
              }
            }
          }
        });
      } else {
        TORCH_CHECK(false, "spectral_input_grad: integer input has no gradient");
      }
    });
  });
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(mosaic_vlm, CPU, m) {
  m.impl("spectral_patch_embed", &spectral_patch_embed_cpu);
  m.impl("spectral_weight_grad", &spectral_weight_grad_cpu);
  m.impl("spectral_input_grad", &spectral_input_grad_cpu);
}

}  // namespace mosaic_vlm

// CUDA kernels of the fused spectral patch embedding.
//
// Design: one pass over the raw input writes the packed, normalised patch matrix
// P (B*L, K = C*p*p) exactly once, in the weight's dtype -- bf16/fp16 weights give a
// half-precision P that cuBLAS multiplies on tensor cores (fp32 weights use cuBLAS
// SGEMM, or TF32 when torch.backends.cuda.matmul.allow_tf32 is set). The pack is
// memory-bound (read 2 bytes/value for uint16, write 2-4), the GEMM compute-bound, so
// fusing the normalisation into the GEMM's shared-memory staging would save one
// round trip of P through L2/HBM at the cost of a hand-written GEMM; benchmarks/
// patch_embed.py measures the split.
//
// pack_kernel: one block per patch row, threads stride over the K values of the row
// (consecutive threads -> consecutive j, so reads of a patch row are coalesced and
// writes of P fully coalesced), block-reduces the valid count into valid (B, L).
// input_grad_kernel: one thread per input value, reads dP = G @ W and applies the
// chain rule of the normalisation.
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../spectral.h"

namespace mosaic_vlm {
namespace {

constexpr int kPackThreads = 256;
constexpr int kGradThreads = 256;

struct DeviceStrides {
  int64_t b, c, h, w;
};

// Band constants on the device: mean, 1/std (acc_t) and log flags (uint8), each (C,).
template <typename acc_t>
struct DeviceBands {
  at::Tensor mean, inv_std, log;

  DeviceBands(const at::Tensor& mean_t, const at::Tensor& std_t,
              const std::optional<at::Tensor>& log_bands, const at::ScalarType acc) {
    mean = mean_t.to(acc).contiguous();
    inv_std = std_t.to(at::kDouble).reciprocal().to(acc).contiguous();
    log = log_bands.has_value() ? log_bands->to(at::kByte).contiguous()
                                : at::zeros({mean_t.size(0)}, mean_t.options().dtype(at::kByte));
  }

  BandTable<acc_t> table() const {
    return {mean.const_data_ptr<acc_t>(), inv_std.const_data_ptr<acc_t>(),
            log.const_data_ptr<uint8_t>()};
  }
};

template <typename in_t, typename out_t, typename acc_t>
__global__ void pack_kernel(const in_t* __restrict__ x, DeviceStrides s, Geometry g,
                            BandTable<acc_t> bands, bool has_nodata, in_t nodata,
                            out_t* __restrict__ packed, float* __restrict__ valid) {
  const int64_t row = blockIdx.x;  // patch (b, ph, pw)
  const int64_t b = row / g.L, l = row % g.L;
  const int64_t ph = l / g.Wp, pw = l % g.Wp;
  const in_t* base = x + b * s.b + ph * g.p * s.h + pw * g.p * s.w;
  out_t* out = packed + row * g.K;
  const int pp = static_cast<int>(g.p * g.p), p = static_cast<int>(g.p);
  int count = 0;
  for (int k = threadIdx.x; k < g.K; k += blockDim.x) {
    const int c = k / pp, r = k - c * pp;
    const int i = r / p, j = r - i * p;
    acc_t z;
    count += normalise_value<in_t, acc_t>(base[c * s.c + i * s.h + j * s.w], bands.mean[c],
                                          bands.inv_std[c], bands.log[c] != 0, has_nodata,
                                          nodata, &z);
    out[k] = static_cast<out_t>(z);
  }
  // Block reduction of the valid count.
  for (int offset = 16; offset > 0; offset >>= 1) {
    count += __shfl_down_sync(0xffffffffu, count, offset);
  }
  __shared__ int warp_sums[kPackThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int w = 0; w < kPackThreads / 32; ++w) total += warp_sums[w];
    valid[row] = static_cast<float>(total) / static_cast<float>(g.K);
  }
}

template <typename in_t, typename out_t, typename acc_t>
__global__ void input_grad_kernel(const in_t* __restrict__ x, DeviceStrides s, Geometry g,
                                  BandTable<acc_t> bands, bool has_nodata, in_t nodata,
                                  const out_t* __restrict__ grad_packed,
                                  in_t* __restrict__ grad_x, int64_t n) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = idx;
    const int64_t w = t % g.W;
    t /= g.W;
    const int64_t h = t % g.H;
    t /= g.H;
    const int64_t c = t % g.C;
    const int64_t b = t / g.C;
    const in_t raw = x[b * s.b + c * s.c + h * s.h + w * s.w];
    const int64_t row = b * g.L + (h / g.p) * g.Wp + w / g.p;
    const int64_t k = (c * g.p + h % g.p) * g.p + w % g.p;
    const bool lg = bands.log[c] != 0;
    acc_t z;
    const bool ok = normalise_value<in_t, acc_t>(raw, bands.mean[c], bands.inv_std[c], lg,
                                                 has_nodata, nodata, &z);
    const acc_t d = normalise_derivative<acc_t>(static_cast<acc_t>(raw), bands.inv_std[c], lg);
    const acc_t gval = static_cast<acc_t>(grad_packed[row * g.K + k]);
    grad_x[idx] = static_cast<in_t>(ok ? gval * d : static_cast<acc_t>(0));
  }
}

DeviceStrides strides_of(const at::Tensor& x) {
  return {x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
}

// Packs x into P (B*L, K) in `dtype` and fills valid (B, L).
void pack(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& std,
          const std::optional<at::Tensor>& log_bands, std::optional<double> nodata,
          const Geometry& g, at::Tensor& packed, at::Tensor& valid) {
  const int64_t rows = g.B * g.L;
  if (rows == 0) return;
  TORCH_CHECK(rows <= std::numeric_limits<int32_t>::max() && g.K <= (int64_t{1} << 30),
              "spectral_patch_embed: too many patches for one launch (", rows, ")");
  const auto stream = c10::cuda::getCurrentCUDAStream();
  dispatch_output_type(packed.scalar_type(), [&](auto out_tag) {
    using out_t = decltype(out_tag);
    using acc_t = acc_type_t<out_t>;
    const DeviceBands<acc_t> bands(mean, std, log_bands,
                                   std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat);
    dispatch_input_type(x.scalar_type(), [&](auto in_tag) {
      using in_t = decltype(in_tag);
      in_t nd{};
      const bool has_nd = nodata_as<in_t>(nodata, &nd);
      pack_kernel<in_t, out_t, acc_t><<<static_cast<unsigned>(rows), kPackThreads, 0, stream>>>(
          x.const_data_ptr<in_t>(), strides_of(x), g, bands.table(), has_nd, nd,
          packed.mutable_data_ptr<out_t>(), valid.mutable_data_ptr<float>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

std::tuple<at::Tensor, at::Tensor> spectral_patch_embed_cuda(
    const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    const at::Tensor& mean, const at::Tensor& std, int64_t patch_size,
    std::optional<double> nodata, const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, bias, g);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = g.B * g.L;
  at::Tensor packed = at::empty({rows, g.K}, weight.options());             // (B*L, K)
  at::Tensor valid = at::empty({g.B, g.L}, x.options().dtype(at::kFloat));  // (B, L)
  pack(x, mean, std, log_bands, nodata, g, packed, valid);
  at::Tensor tokens = at::empty({g.B, g.L, D}, weight.options());  // (B, L, D)
  at::Tensor tok2d = tokens.view({rows, D});
  const at::Tensor w_t = weight.reshape({D, g.K}).t();  // (K, D)
  if (bias.has_value()) {
    at::addmm_out(tok2d, *bias, packed, w_t);
  } else {
    at::mm_out(tok2d, packed, w_t);
  }
  return {tokens, valid};
}

at::Tensor spectral_weight_grad_cuda(const at::Tensor& grad_tokens, const at::Tensor& x,
                                     const at::Tensor& weight, const at::Tensor& mean,
                                     const at::Tensor& std, int64_t patch_size,
                                     std::optional<double> nodata,
                                     const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, std::nullopt, g);
  check_grad_tokens(grad_tokens, g, D);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = g.B * g.L;
  at::Tensor packed = at::empty({rows, g.K}, weight.options());             // (B*L, K)
  at::Tensor valid = at::empty({g.B, g.L}, x.options().dtype(at::kFloat));  // (B, L)
  pack(x, mean, std, log_bands, nodata, g, packed, valid);
  const at::Tensor g2d = grad_tokens.to(weight.scalar_type()).reshape({rows, D});  // (B*L, D)
  return at::mm(g2d.t(), packed).view({D, g.C, g.p, g.p});  // (D, C, p, p)
}

at::Tensor spectral_input_grad_cuda(const at::Tensor& grad_tokens, const at::Tensor& x,
                                    const at::Tensor& weight, const at::Tensor& mean,
                                    const at::Tensor& std, int64_t patch_size,
                                    std::optional<double> nodata,
                                    const std::optional<at::Tensor>& log_bands) {
  const Geometry g = check_geometry(x, mean, std, patch_size, log_bands);
  const int64_t D = check_weight(x, weight, std::nullopt, g);
  check_grad_tokens(grad_tokens, g, D);
  TORCH_CHECK(at::isFloatingType(x.scalar_type()),
              "spectral_input_grad: x must be floating, got ", x.scalar_type());
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = g.B * g.L;
  at::Tensor grad_x = at::empty({g.B, g.C, g.H, g.W}, x.options());  // (B, C, H, W)
  const int64_t n = grad_x.numel();
  if (n == 0) return grad_x;
  const at::Tensor g2d = grad_tokens.to(weight.scalar_type()).reshape({rows, D});  // (B*L, D)
  const at::Tensor grad_packed = at::mm(g2d, weight.reshape({D, g.K}));          // (B*L, K)
  const auto stream = c10::cuda::getCurrentCUDAStream();
  dispatch_output_type(weight.scalar_type(), [&](auto out_tag) {
    using out_t = decltype(out_tag);
    using acc_t = acc_type_t<out_t>;
    const DeviceBands<acc_t> bands(mean, std, log_bands,
                                   std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat);
    dispatch_input_type(x.scalar_type(), [&](auto in_tag) {
      using in_t = decltype(in_tag);
      if constexpr (kIsFloatInput<in_t>) {
        in_t nd{};
        const bool has_nd = nodata_as<in_t>(nodata, &nd);
        const int64_t blocks = std::min<int64_t>((n + kGradThreads - 1) / kGradThreads, 65535);
        input_grad_kernel<in_t, out_t, acc_t>
            <<<static_cast<unsigned>(blocks), kGradThreads, 0, stream>>>(
                x.const_data_ptr<in_t>(), strides_of(x), g, bands.table(), has_nd, nd,
                grad_packed.const_data_ptr<out_t>(), grad_x.mutable_data_ptr<in_t>(), n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      } else {
        TORCH_CHECK(false, "spectral_input_grad: integer input has no gradient");
      }
    });
  });
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(mosaic_vlm, CUDA, m) {
  m.impl("spectral_patch_embed", &spectral_patch_embed_cuda);
  m.impl("spectral_weight_grad", &spectral_weight_grad_cuda);
  m.impl("spectral_input_grad", &spectral_input_grad_cuda);
}

}  // namespace mosaic_vlm

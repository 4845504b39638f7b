// Operator schemas of the mosaic_vlm namespace (device kernels are registered in
// cpu/spectral_cpu.cpp and cuda/spectral_cuda.cu; autograd and fake tensors in
// cuda_ext/ops.py).
#include <torch/library.h>

TORCH_LIBRARY(mosaic_vlm, m) {
  // Fused decode/log/normalise/mask + patch projection: returns (tokens (B, L, D) in the
  // weight's dtype, valid (B, L) float32).
  m.def(
      "spectral_patch_embed(Tensor x, Tensor weight, Tensor? bias, Tensor mean, Tensor std, "
      "int patch_size, float? nodata=None, Tensor? log_bands=None) -> (Tensor, Tensor)");
  // Gradient of the loss w.r.t. the weight (D, C, p, p), given that of the tokens (B, L, D).
  m.def(
      "spectral_weight_grad(Tensor grad_tokens, Tensor x, Tensor weight, Tensor mean, "
      "Tensor std, int patch_size, float? nodata=None, Tensor? log_bands=None) -> Tensor");
  // Gradient of the loss w.r.t. a floating x, given the gradient of the tokens (B, L, D).
  m.def(
      "spectral_input_grad(Tensor grad_tokens, Tensor x, Tensor weight, Tensor mean, "
      "Tensor std, int patch_size, float? nodata=None, Tensor? log_bands=None) -> Tensor");
}

// Fused hot loops that Swift cannot make fast without unchecked pointer arithmetic.
// Dimension glossary: R rows (B*T), C model dim, H heads, D head dim, T query tokens, S key tokens.
#ifndef PRUNE_KERNELS_H
#define PRUNE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// ---- dtype conversion (safetensors F16/BF16 <-> F32) ----
void pk_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void pk_f16_to_f32(const uint16_t *src, float *dst, size_t n);
/// Round to nearest even; NaN stays NaN.
void pk_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void pk_f32_to_f16(const float *src, uint16_t *dst, size_t n);

// ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w ----
/// x, y: (R, C); w: (C); rstd: (R) or NULL — kept for the backward pass.
void pk_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, size_t rows, size_t cols, float eps);
/// dx (+)= from dy; dw += sum over rows. dx may not alias dy. accumulate != 0 adds into dx.
void pk_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
                         float *dx, float *dw, size_t rows, size_t cols, int accumulate);

// ---- RoPE, Hugging Face rotate-half convention ----
/// x: (R, H*D) with row r at position pos[r]; cos/sin: (P, D/2) tables. In place.
/// inverse != 0 applies the transpose rotation (the backward pass).
void pk_rope(float *x, const int32_t *pos, const float *cos, const float *sin,
             size_t rows, size_t heads, size_t head_dim, int inverse);

// ---- causal softmax over attention scores ----
/// s: (T, S) scores for queries at absolute positions q0..q0+T-1 over keys 0..S-1.
/// Multiplies by scale, masks keys beyond each query's position (set to 0 after softmax), softmax per row.
void pk_causal_softmax(float *s, size_t t, size_t s_len, size_t q0, float scale);

// ---- SwiGLU: h = silu(g) * u ----
void pk_silu_mul(const float *g, const float *u, float *h, size_t n);
/// dg, du from dh (overwrite).
void pk_silu_mul_backward(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n);

// ---- small vector helpers ----
/// y += x
void pk_add_inplace(float *y, const float *x, size_t n);
/// Cross-entropy of one row of logits against target; writes softmax - onehot scaled by `gscale` into dlogits
/// when dlogits != NULL. Returns the loss (natural log) in double.
double pk_cross_entropy_row(const float *logits, size_t v, int32_t target, float *dlogits, float gscale);
/// log-sum-exp and argmax of one row.
double pk_logsumexp(const float *x, size_t n, int32_t *argmax);

// ---- training: vectorised backward kernels and skinny (LoRA rank) matrix products ----
/// Vectorised pk_cross_entropy_row (8-lane exp, sums in double). dlogits may equal logits (in place).
double pk_cross_entropy_row_vec(const float *logits, size_t v, int32_t target, float *dlogits, float gscale);
/// Vectorised pk_silu_mul_backward: dg, du from dh (overwrite).
void pk_silu_mul_backward_vec(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n);
/// Causal softmax backward for one head, in place into dp: ds = p * (dp - sum(p*dp)) * scale over the keys
/// query i sees (0..q0+i); the masked rest is set to 0.
void pk_causal_softmax_backward(const float *p, float *dp, size_t t, size_t s_len, size_t q0, float scale);
/// h (N, R) = alpha * x (N, K) * a^T with a (R, K); leading dimensions ldx, ldh. For R of a LoRA rank,
/// where BLAS runs far below peak.
void pk_skinny_nt(const float *x, size_t ldx, const float *a, size_t r, size_t k, float *h, size_t ldh,
                  size_t n, float alpha);
/// y (N, K) += alpha * c (N, R) * m with m (R, K) row-major; leading dimensions ldc, ldy.
void pk_skinny_nn_acc(const float *c, size_t ldc, size_t r, const float *m, size_t k, float *y, size_t ldy,
                      size_t n, float alpha);
/// g (R, K) += alpha * c^T * z with c (N, R) and z (N, K); leading dimensions ldc, ldz, ldg.
void pk_skinny_tn_acc(const float *c, size_t ldc, size_t r, const float *z, size_t ldz, size_t k,
                      float *g, size_t ldg, size_t n, float alpha);

#endif

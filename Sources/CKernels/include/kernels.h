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

// ---- blockwise (flash) attention: one (query block, key block) tile of scores at a time ----
/// s: (rows, cols) raw scores q·kᵀ at leading dimension ld; row i sees its first clamp(first_visible + i, 0, cols)
/// keys. Online softmax step: updates the running max m (scaled scores) and sum l of each row, overwrites s with
/// p = exp(scale·s − m_new) (0 where masked) and rescales the row's output accumulator acc (rows, dim) at ldacc by
/// exp(m_old − m_new); acc NULL on a query block's first tile (nothing accumulated yet).
void pk_attention_block_softmax(float *s, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible, float scale,
                                float *m, float *l, float *acc, size_t ldacc, size_t dim);
/// Backward of one tile from the saved per-row log-sum-exp of the scaled scores: s (raw scores) becomes
/// p = exp(scale·s − lse) and dp (dOut·vᵀ) becomes ds = p·(dp − delta)·scale, delta = rowsum(dOut ⊙ out);
/// masked entries 0 in both.
void pk_attention_block_backward(float *s, float *dp, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible,
                                 float scale, const float *lse, const float *delta);
/// out[i] = a row i · b row i for `rows` rows of `cols` (leading dimensions lda, ldb): the backward's
/// delta = rowsum(dOut ⊙ out) per query.
void pk_row_dot(const float *a, size_t lda, const float *b, size_t ldb, size_t rows, size_t cols, float *out);

// ---- SwiGLU: h = silu(g) * u ----
void pk_silu_mul(const float *g, const float *u, float *h, size_t n);
/// dg, du from dh (overwrite).
void pk_silu_mul_backward(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n);

// ---- small vector helpers ----
/// y += x
void pk_add_inplace(float *y, const float *x, size_t n);
/// Cross-entropy of one row of logits against target with a libm exp per element (the reference for the
/// lane version); writes softmax - onehot scaled by `gscale` into dlogits when dlogits != NULL. Returns the
/// loss (natural log) in double.
double pk_cross_entropy_row(const float *logits, size_t v, int32_t target, float *dlogits, float gscale);
/// log-sum-exp and argmax of one row.
double pk_logsumexp(const float *x, size_t n, int32_t *argmax);

// ---- training: vectorised backward kernels and skinny (LoRA rank) matrix products ----
/// Lane version of pk_cross_entropy_row (polynomial exp, sums in double). dlogits may equal logits (in place).
double pk_cross_entropy_row_vec(const float *logits, size_t v, int32_t target, float *dlogits, float gscale);
/// The distillation loss of one row of student logits z against teacher logits t (both v wide), lane version:
/// (1 − alpha)·CE(z, target) + alpha·tau²·KL(softmax(t/tau) ‖ softmax(z/tau)) (natural log), with
/// ((1 − alpha)·(softmax(z) − onehot) + alpha·tau·(softmax(z/tau) − softmax(t/tau)))·gscale written into dlogits
/// when dlogits != NULL (it may equal z). parts[0] = the CE, parts[1] = the KL when parts != NULL. alpha = 0 gives
/// pk_cross_entropy_row_vec's loss and gradient bit for bit.
double pk_distill_row_vec(const float *z, const float *t, size_t v, int32_t target, double alpha, double tau,
                          float *dlogits, float gscale, double *parts);
/// Lane version of pk_silu_mul_backward: dg, du from dh (overwrite).
void pk_silu_mul_backward_vec(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n);
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

// ---- decoding: products of M ≤ PK_MATVEC_MAX_ROWS rows with a stored weight, attention of one query ----
/// How a weight's elements are stored.
enum { PK_ELEMENT_F32 = 0, PK_ELEMENT_BF16 = 1, PK_ELEMENT_F16 = 2 };
/// The most rows the decoding products take in one call (pk_matvec_argmax's block buffer).
#define PK_MATVEC_MAX_ROWS 16
/// y[i·ldy + o] = alpha · (x_i · w_o) (+ y[i·ldy + o] when accumulate != 0) for rows i < m and outputs
/// o0 ≤ o < o1; x (m, k) at ldx, w (O, k) at ldw in `element` type, widened inside the dot product. Each
/// element is summed in one order whatever m, o0, o1: a row's result does not depend on the rows beside it.
void pk_matvec(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
               size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate);
/// Per row i < m: the largest x_i · w_o over o0 ≤ o < o1 (its value and the lowest such o) and the first o whose
/// product is not finite (-1 if none), from the products pk_matvec computes, without writing them out.
void pk_matvec_argmax(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                      size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite);
/// The two above in two halves, so that threads sharing one product's outputs lay x out once: pk_matvec_prepare
/// gives x (m, k) in the active kernels' layout, in the calling thread's buffer (valid until that thread prepares
/// again; NULL when it cannot be allocated), and the _prepared forms take that instead of x.
const float *pk_matvec_prepare(const float *x, size_t ldx, size_t m, size_t k);
void pk_matvec_prepared(const float *prepared, size_t m, const void *w, int element, size_t ldw, size_t k,
                        size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate);
void pk_matvec_argmax_prepared(const float *prepared, size_t m, const void *w, int element, size_t ldw, size_t k,
                               size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite);
/// out (d) = softmax(scale · q·k_j, j < s) · v for one query q (d) over s keys and values at leading dimension ld;
/// scores: s floats of scratch.
void pk_attention_query(const float *q, const float *keys, const float *values, size_t ld, size_t s, size_t d,
                        float scale, float *scores, float *out);

// ---- a worker pool for decoding's short parallel regions (pool.c) ----
typedef struct pk_pool pk_pool;
typedef void (*pk_pool_task)(void *context, int part);
/// A pool of `threads` − 1 workers (the caller is the first thread); lives as long as the process.
pk_pool *pk_pool_create(int threads);
int pk_pool_threads(const pk_pool *pool);
/// Runs task(context, part) for part < parts (≤ the pool's threads) and returns when all are done; the caller
/// runs part 0. Workers spin briefly between regions, then sleep.
void pk_pool_run(pk_pool *pool, int parts, pk_pool_task task, void *context);
/// Runs task(context, chunk) for chunk < chunks, each once, the pool's threads taking the next chunk as they finish
/// one (the order in which chunks run is not fixed; each must not depend on another).
void pk_pool_run_chunks(pk_pool *pool, int chunks, pk_pool_task task, void *context);

/// The sum of n floats read in order with the widest loads: a streaming read for measuring the read bandwidth
/// decoding's bound is set by. Fill the buffer with ordinary floats (no denormals).
float pk_stream_read(const float *p, size_t n);

// ---- dropout ----
/// y = x ⊙ mask / (1 − p) with mask[i] = 0 with probability p, decided by a hash of (key, i) so that the same
/// key regenerates the same mask (backward passes, recomputation). y may equal x.
void pk_dropout(const float *x, float *y, size_t n, uint64_t key, float p);
/// pk_dropout of elements first…first+n−1 of a larger tensor: x and y hold those n elements, and element i of
/// them gets the mask of index first + i (one rank's rows of a data-parallel batch draw the whole batch's mask).
void pk_dropout_from(const float *x, float *y, size_t n, size_t first, uint64_t key, float p);

// ---- CPU features and kernel variants ----
/// What the CPU and the OS offer (cpuid + xgetbv): a feature counts only when the OS saves its registers.
typedef struct {
    char vendor[13];
    char brand[49];
    int family, model, stepping;
    int sse42, avx, avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512cd, avx512bf16, avx512fp16;
    int amx_tile, amx_bf16, amx_int8;
} pk_cpu_info;
void pk_cpu_detect(pk_cpu_info *out);

/// One variant of every kernel above, for one instruction set. The pk_* functions call the active table.
typedef struct {
    const char *name;
    int lanes;
    void (*bf16_to_f32)(const uint16_t *, float *, size_t);
    void (*f16_to_f32)(const uint16_t *, float *, size_t);
    void (*f32_to_bf16)(const float *, uint16_t *, size_t);
    void (*f32_to_f16)(const float *, uint16_t *, size_t);
    void (*rmsnorm_forward)(const float *, const float *, float *, float *, size_t, size_t, float);
    void (*rmsnorm_backward)(const float *, const float *, const float *, const float *, float *, float *, size_t, size_t, int);
    void (*rope)(float *, const int32_t *, const float *, const float *, size_t, size_t, size_t, int);
    void (*attention_block_softmax)(float *, size_t, size_t, size_t, ptrdiff_t, float, float *, float *, float *, size_t, size_t);
    void (*attention_block_backward)(float *, float *, size_t, size_t, size_t, ptrdiff_t, float, const float *, const float *);
    void (*row_dot)(const float *, size_t, const float *, size_t, size_t, size_t, float *);
    void (*silu_mul)(const float *, const float *, float *, size_t);
    void (*silu_mul_backward)(const float *, const float *, const float *, float *, float *, size_t);
    void (*add_inplace)(float *, const float *, size_t);
    double (*cross_entropy_row)(const float *, size_t, int32_t, float *, float);
    double (*distill_row)(const float *, const float *, size_t, int32_t, double, double, float *, float, double *);
    void (*skinny_nt)(const float *, size_t, const float *, size_t, size_t, float *, size_t, size_t, float);
    void (*skinny_nn_acc)(const float *, size_t, size_t, const float *, size_t, float *, size_t, size_t, float);
    void (*skinny_tn_acc)(const float *, size_t, size_t, const float *, size_t, size_t, float *, size_t, size_t, float);
    const float *(*matvec_prepare)(const float *, size_t, size_t, size_t);
    void (*matvec_prepared)(const float *, size_t, const void *, int, size_t, size_t, size_t, size_t, float *, size_t, float, int);
    void (*matvec_argmax_prepared)(const float *, size_t, const void *, int, size_t, size_t, size_t, size_t, float *, int32_t *, int32_t *);
    void (*attention_query)(const float *, const float *, const float *, size_t, size_t, size_t, float, float *, float *);
    float (*stream_read)(const float *, size_t);
} pk_kernel_table;

enum { PK_ISA_SCALAR = 0, PK_ISA_AVX2 = 1, PK_ISA_AVX512 = 2 };
/// The table for one instruction set, or NULL when this CPU cannot run it.
const pk_kernel_table *pk_kernels_for(int isa);
/// The table the pk_* functions use: the best this CPU runs, unless PRUNE_KERNELS=scalar|avx2|avx512 names
/// another (a variant the CPU cannot run, or an unknown name, falls back to the best with a note in
/// pk_kernels_note). Chosen once, on first use.
const pk_kernel_table *pk_kernels_active(void);
/// Why the active table is what it is (empty when chosen by the CPU alone).
const char *pk_kernels_note(void);

#endif

// Run-time choice of the kernel variant, the CPU feature probe, and the pk_* entry points. This file is
// compiled for baseline x86-64: nothing here may use an instruction the oldest CPU lacks.
#include "kernels.h"
#include <cpuid.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const pk_kernel_table pk_kernels_scalar, pk_kernels_avx2, pk_kernels_avx512;

// ---------------------------------------------------------------- CPU features
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

void pk_cpu_detect(pk_cpu_info *out) {
    memset(out, 0, sizeof *out);
    unsigned a, b, c, d, max_leaf;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return;
    memcpy(out->vendor, &b, 4); memcpy(out->vendor + 4, &d, 4); memcpy(out->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    out->family = (int)(base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family);
    out->model = (int)((base_family == 0x6 || base_family == 0xf) ? base_model + (((a >> 16) & 0xf) << 4) : base_model);
    out->stepping = (int)(a & 0xf);
    int osxsave = (c >> 27) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0, os_amx = (xcr0 & 0x60000) == 0x60000;
    out->sse42 = (c >> 20) & 1;
    out->avx = os_ymm && ((c >> 28) & 1);
    out->fma = out->avx && ((c >> 12) & 1);
    out->f16c = out->avx && ((c >> 29) & 1);
    if (max_leaf >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        out->avx2 = out->avx && ((b >> 5) & 1);
        out->avx512f = os_zmm && ((b >> 16) & 1);
        out->avx512dq = out->avx512f && ((b >> 17) & 1);
        out->avx512cd = out->avx512f && ((b >> 28) & 1);
        out->avx512bw = out->avx512f && ((b >> 30) & 1);
        out->avx512vl = out->avx512f && ((b >> 31) & 1);
        out->avx512fp16 = out->avx512f && ((d >> 23) & 1);
        out->amx_bf16 = os_amx && ((d >> 22) & 1);
        out->amx_tile = os_amx && ((d >> 24) & 1);
        out->amx_int8 = os_amx && ((d >> 25) & 1);
        unsigned a1, b1, c1, d1;
        __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
        out->avx512bf16 = out->avx512f && ((a1 >> 5) & 1);
    }
    unsigned ext;
    __get_cpuid(0x80000000, &ext, &b, &c, &d);
    if (ext >= 0x80000004) {
        unsigned *w = (unsigned *)out->brand;
        for (unsigned leaf = 0; leaf < 3; leaf++) __get_cpuid(0x80000002 + leaf, &w[leaf * 4], &w[leaf * 4 + 1], &w[leaf * 4 + 2], &w[leaf * 4 + 3]);
        out->brand[48] = 0;
        // cpuid pads the brand string with leading spaces on some CPUs
        char *s = out->brand;
        while (*s == ' ') s++;
        memmove(out->brand, s, strlen(s) + 1);
    }
}

// ---------------------------------------------------------------- variant choice
static int cpu_runs(const pk_cpu_info *cpu, int isa) {
    switch (isa) {
    case PK_ISA_SCALAR: return 1;
    case PK_ISA_AVX2: return cpu->avx2 && cpu->fma && cpu->f16c;
    case PK_ISA_AVX512: return cpu_runs(cpu, PK_ISA_AVX2) && cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq;
    default: return 0;
    }
}

static const pk_kernel_table *table_of(int isa) {
    return isa == PK_ISA_AVX512 ? &pk_kernels_avx512 : isa == PK_ISA_AVX2 ? &pk_kernels_avx2 : &pk_kernels_scalar;
}

const pk_kernel_table *pk_kernels_for(int isa) {
    pk_cpu_info cpu;
    pk_cpu_detect(&cpu);
    return cpu_runs(&cpu, isa) ? table_of(isa) : NULL;
}

static const pk_kernel_table *active_table;
static char active_note[160];
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_active(void) {
    pk_cpu_info cpu;
    pk_cpu_detect(&cpu);
    int best = cpu_runs(&cpu, PK_ISA_AVX512) ? PK_ISA_AVX512 : cpu_runs(&cpu, PK_ISA_AVX2) ? PK_ISA_AVX2 : PK_ISA_SCALAR;
    active_table = table_of(best);
    const char *forced = getenv("PRUNE_KERNELS");
    if (!forced || !*forced) return;
    int isa = !strcmp(forced, "scalar") ? PK_ISA_SCALAR : !strcmp(forced, "avx2") ? PK_ISA_AVX2 : !strcmp(forced, "avx512") ? PK_ISA_AVX512 : -1;
    if (isa < 0) {
        snprintf(active_note, sizeof active_note, "PRUNE_KERNELS=%.40s is not scalar, avx2 or avx512; using %s", forced, active_table->name);
    } else if (!cpu_runs(&cpu, isa)) {
        snprintf(active_note, sizeof active_note, "PRUNE_KERNELS=%s: this CPU cannot run it; using %s", forced, active_table->name);
    } else {
        active_table = table_of(isa);
        snprintf(active_note, sizeof active_note, "forced by PRUNE_KERNELS=%s", forced);
    }
}

const pk_kernel_table *pk_kernels_active(void) {
    pthread_once(&active_once, choose_active);
    return active_table;
}

const char *pk_kernels_note(void) {
    pthread_once(&active_once, choose_active);
    return active_note;
}

// ---------------------------------------------------------------- entry points
#define ACTIVE pk_kernels_active()

void pk_bf16_to_f32(const uint16_t *src, float *dst, size_t n) { ACTIVE->bf16_to_f32(src, dst, n); }
void pk_f16_to_f32(const uint16_t *src, float *dst, size_t n) { ACTIVE->f16_to_f32(src, dst, n); }
void pk_f32_to_bf16(const float *src, uint16_t *dst, size_t n) { ACTIVE->f32_to_bf16(src, dst, n); }
void pk_f32_to_f16(const float *src, uint16_t *dst, size_t n) { ACTIVE->f32_to_f16(src, dst, n); }
void pk_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, size_t rows, size_t cols, float eps) {
    ACTIVE->rmsnorm_forward(x, w, y, rstd, rows, cols, eps);
}
void pk_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
                         float *dx, float *dw, size_t rows, size_t cols, int accumulate) {
    ACTIVE->rmsnorm_backward(x, w, rstd, dy, dx, dw, rows, cols, accumulate);
}
void pk_rope(float *x, const int32_t *pos, const float *cos, const float *sin, size_t rows, size_t heads, size_t head_dim, int inverse) {
    ACTIVE->rope(x, pos, cos, sin, rows, heads, head_dim, inverse);
}
void pk_attention_block_softmax(float *s, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible, float scale,
                                float *m, float *l, float *acc, size_t ldacc, size_t dim) {
    ACTIVE->attention_block_softmax(s, rows, cols, ld, first_visible, scale, m, l, acc, ldacc, dim);
}
void pk_attention_block_backward(float *s, float *dp, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible,
                                 float scale, const float *lse, const float *delta) {
    ACTIVE->attention_block_backward(s, dp, rows, cols, ld, first_visible, scale, lse, delta);
}
void pk_row_dot(const float *a, size_t lda, const float *b, size_t ldb, size_t rows, size_t cols, float *out) {
    ACTIVE->row_dot(a, lda, b, ldb, rows, cols, out);
}
void pk_silu_mul(const float *g, const float *u, float *h, size_t n) { ACTIVE->silu_mul(g, u, h, n); }
void pk_silu_mul_backward_vec(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n) {
    ACTIVE->silu_mul_backward(g, u, dh, dg, du, n);
}
void pk_add_inplace(float *y, const float *x, size_t n) { ACTIVE->add_inplace(y, x, n); }
double pk_cross_entropy_row_vec(const float *logits, size_t v, int32_t target, float *dlogits, float gscale) {
    return ACTIVE->cross_entropy_row(logits, v, target, dlogits, gscale);
}
double pk_distill_row_vec(const float *z, const float *t, size_t v, int32_t target, double alpha, double tau,
                          float *dlogits, float gscale, double *parts) {
    return ACTIVE->distill_row(z, t, v, target, alpha, tau, dlogits, gscale, parts);
}
void pk_skinny_nt(const float *x, size_t ldx, const float *a, size_t r, size_t k, float *h, size_t ldh, size_t n, float alpha) {
    ACTIVE->skinny_nt(x, ldx, a, r, k, h, ldh, n, alpha);
}
void pk_skinny_nn_acc(const float *c, size_t ldc, size_t r, const float *m, size_t k, float *y, size_t ldy, size_t n, float alpha) {
    ACTIVE->skinny_nn_acc(c, ldc, r, m, k, y, ldy, n, alpha);
}
void pk_skinny_tn_acc(const float *c, size_t ldc, size_t r, const float *z, size_t ldz, size_t k, float *g, size_t ldg, size_t n, float alpha) {
    ACTIVE->skinny_tn_acc(c, ldc, r, z, ldz, k, g, ldg, n, alpha);
}

const float *pk_matvec_prepare(const float *x, size_t ldx, size_t m, size_t k) {
    return ACTIVE->matvec_prepare(x, ldx, m, k);
}
void pk_matvec_prepared(const float *prepared, size_t m, const void *w, int element, size_t ldw, size_t k,
                        size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    ACTIVE->matvec_prepared(prepared, m, w, element, ldw, k, o0, o1, y, ldy, alpha, accumulate);
}
void pk_matvec_argmax_prepared(const float *prepared, size_t m, const void *w, int element, size_t ldw, size_t k,
                               size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite) {
    ACTIVE->matvec_argmax_prepared(prepared, m, w, element, ldw, k, o0, o1, best_value, best_index, first_nonfinite);
}
float pk_stream_read(const float *p, size_t n) { return ACTIVE->stream_read(p, n); }
void pk_matvec(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
               size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    const float *xd = pk_matvec_prepare(x, ldx, m, k);
    if (xd) pk_matvec_prepared(xd, m, w, element, ldw, k, o0, o1, y, ldy, alpha, accumulate);
}
void pk_matvec_argmax(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                      size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite) {
    const float *xd = pk_matvec_prepare(x, ldx, m, k);
    if (xd) pk_matvec_argmax_prepared(xd, m, w, element, ldw, k, o0, o1, best_value, best_index, first_nonfinite);
}
void pk_attention_query(const float *q, const float *keys, const float *values, size_t ld, size_t s, size_t d,
                        float scale, float *scores, float *out) {
    ACTIVE->attention_query(q, keys, values, ld, s, d, scale, scores, out);
}

// ---------------------------------------------------------------- scalar references (libm exp per element)
void pk_silu_mul_backward(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * sig;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

double pk_logsumexp(const float *x, size_t n, int32_t *argmax) {
    float mx = -INFINITY;
    int32_t am = 0;
    for (size_t i = 0; i < n; i++) if (x[i] > mx) { mx = x[i]; am = (int32_t)i; }
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    if (argmax) *argmax = am;
    return (double)mx + log(sum);
}

double pk_cross_entropy_row(const float *logits, size_t v, int32_t target, float *dlogits, float gscale) {
    double lse = pk_logsumexp(logits, v, NULL);
    if (dlogits) {
        for (size_t i = 0; i < v; i++) dlogits[i] = (float)exp((double)logits[i] - lse) * gscale;
        dlogits[target] -= gscale;
    }
    return lse - (double)logits[target];
}

// ---------------------------------------------------------------- dropout
// The keep/drop decision of element i is a hash of (key, i): the backward pass (and a recomputed forward)
// regenerates the same mask instead of storing it.
static inline uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pk_dropout(const float *x, float *y, size_t n, uint64_t key, float p) {
    pk_dropout_from(x, y, n, 0, key, p);
}

void pk_dropout_from(const float *x, float *y, size_t n, size_t first, uint64_t key, float p) {
    const float scale = 1.0f / (1.0f - p);
    // Keep when the hash's top 24 bits, as a fraction of 2^24, are at least p (probability 1 − p).
    const uint32_t threshold = (uint32_t)(p * 16777216.0f);
    const uint64_t base = splitmix64(key) + first;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(splitmix64(base + i) >> 40);
        y[i] = r >= threshold ? x[i] * scale : 0.0f;
    }
}

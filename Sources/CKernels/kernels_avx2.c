// The kernels on 8 lanes: AVX2 + FMA + F16C (x86-64-v3: Haswell, Zen and later).
#include "kernels.h"
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

typedef __m256 V;
#define W 8
#define PK_ISA_NAME "avx2"
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMAX _mm256_max_ps
#define VMIN _mm256_min_ps
#define VFMA _mm256_fmadd_ps
#define VFNMA _mm256_fnmadd_ps
#define VFLOOR _mm256_floor_ps
#define VPOW2(fx) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23))

static inline float VHSUM(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static inline float VHMAX(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
typedef struct { __m256d lo, hi; } VD;
#define VD_ZERO ((VD){_mm256_setzero_pd(), _mm256_setzero_pd()})
#define VD_ADD(acc, v) do { __m256 v_ = (v); \
    (acc).lo = _mm256_add_pd((acc).lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v_))); \
    (acc).hi = _mm256_add_pd((acc).hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v_, 1))); } while (0)
static inline double VD_SUM(VD acc) {
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc.lo, acc.hi));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

static inline void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}
static inline void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#define F16_TO_F32 f16_to_f32_avx2
#define F32_TO_F16 f32_to_f16_avx2

#include "kernels_body.h"
// Even- and odd-indexed elements of 16 floats (lo, hi) in order: two shuffles and two 64-bit permutes.
static inline void pair_split(__m256 lo, __m256 hi, __m256 *e, __m256 *o) {
    __m256 a = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)), b = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    *e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(a), _MM_SHUFFLE(3, 1, 2, 0)));
    *o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(b), _MM_SHUFFLE(3, 1, 2, 0)));
}
#define PAIR_F32(p, e, o) pair_split(_mm256_loadu_ps(p), _mm256_loadu_ps((p) + 8), &(e), &(o))
#define PAIR_F16(p, e, o) pair_split(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))), \
                                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((p) + 8))), &(e), &(o))
#define PAIR_BF16(p, e, o) do { __m256i v_ = _mm256_loadu_si256((const __m256i *)(p)); \
    (e) = _mm256_castsi256_ps(_mm256_slli_epi32(v_, 16)); \
    (o) = _mm256_castsi256_ps(_mm256_and_si256(v_, _mm256_set1_epi32((int)0xffff0000))); } while (0)
#define MV_G 2   // 16 ymm registers: 2 rows × 2 outputs × 2 accumulators, 4 weight vectors, 2 inputs
#include "kernels_decode.h"

#pragma clang attribute pop

const pk_kernel_table pk_kernels_avx2 = { PK_TABLE_ENTRIES, PK_DECODE_TABLE_ENTRIES };

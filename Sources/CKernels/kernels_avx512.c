// The kernels on 16 lanes: AVX-512 F/BW/VL/DQ (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and later).
#include "kernels.h"
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)

typedef __m512 V;
#define W 16
#define PK_ISA_NAME "avx512"
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMAX _mm512_max_ps
#define VMIN _mm512_min_ps
#define VFMA _mm512_fmadd_ps
#define VFNMA _mm512_fnmadd_ps
#define VFLOOR(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VPOW2(fx) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127)), 23))
#define VHSUM _mm512_reduce_add_ps
#define VHMAX _mm512_reduce_max_ps
typedef struct { __m512d lo, hi; } VD;
#define VD_ZERO ((VD){_mm512_setzero_pd(), _mm512_setzero_pd()})
#define VD_ADD(acc, v) do { __m512 v_ = (v); \
    (acc).lo = _mm512_add_pd((acc).lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v_))); \
    (acc).hi = _mm512_add_pd((acc).hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v_, 1))); } while (0)
#define VD_SUM(acc) _mm512_reduce_add_pd(_mm512_add_pd((acc).lo, (acc).hi))

static inline void f16_to_f32_avx512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}
static inline void f32_to_f16_avx512(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#define F16_TO_F32 f16_to_f32_avx512
#define F32_TO_F16 f32_to_f16_avx512

#include "kernels_body.h"
// Even- and odd-indexed elements of 32 floats (lo, hi) in order: one two-source permute each.
static inline void pair_split(__m512 lo, __m512 hi, __m512 *e, __m512 *o) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *e = _mm512_permutex2var_ps(lo, even, hi);
    *o = _mm512_permutex2var_ps(lo, odd, hi);
}
#define PAIR_F32(p, e, o) pair_split(_mm512_loadu_ps(p), _mm512_loadu_ps((p) + 16), &(e), &(o))
#define PAIR_F16(p, e, o) pair_split(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p))), \
                                     _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((p) + 16))), &(e), &(o))
#define PAIR_BF16(p, e, o) do { __m512i v_ = _mm512_loadu_si512((const void *)(p)); \
    (e) = _mm512_castsi512_ps(_mm512_slli_epi32(v_, 16)); \
    (o) = _mm512_castsi512_ps(_mm512_and_si512(v_, _mm512_set1_epi32((int)0xffff0000))); } while (0)
// 32 zmm registers: 5 rows × 2 outputs × 2 accumulators, 4 weight vectors, 2 inputs (26). Five, not four: a
// verification pass of K+1 = 5 rows (K = 4 drafts) then reads and widens each weight once, not twice (3 + 2 rows).
#define MV_G 5
#include "kernels_decode.h"

#pragma clang attribute pop

const pk_kernel_table pk_kernels_avx512 = { PK_TABLE_ENTRIES, PK_DECODE_TABLE_ENTRIES };

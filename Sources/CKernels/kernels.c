#include "kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------- dtype conversion
void pk_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    uint32_t *d = (uint32_t *)dst;
    for (size_t i = 0; i < n; i++) d[i] = ((uint32_t)src[i]) << 16;
}

void pk_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

void pk_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    const uint32_t *s = (const uint32_t *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = s[i];
        if ((u & 0x7fffffffu) > 0x7f800000u) { dst[i] = (uint16_t)((u >> 16) | 0x40); continue; } // quiet NaN
        uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)((u + rounding) >> 16);
    }
}

void pk_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(src + i);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

// ---------------------------------------------------------------- RMSNorm
void pk_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, size_t rows, size_t cols, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        double ss = 0;
        for (size_t c = 0; c < cols; c++) ss += (double)xr[c] * xr[c];
        float rs = (float)(1.0 / sqrt(ss / (double)cols + (double)eps));
        if (rstd) rstd[r] = rs;
        for (size_t c = 0; c < cols; c++) yr[c] = w[c] * (xr[c] * rs);
    }
}

void pk_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
                         float *dx, float *dw, size_t rows, size_t cols, int accumulate) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        float rs = rstd[r];
        // xhat = x*rs; y = w*xhat; dxhat = dy*w; dx = rs*(dxhat - xhat*mean(dxhat*xhat))
        double dot = 0;
        for (size_t c = 0; c < cols; c++) dot += (double)dyr[c] * w[c] * xr[c] * rs;
        float m = (float)(dot / (double)cols);
        if (dw) for (size_t c = 0; c < cols; c++) dw[c] += dyr[c] * xr[c] * rs;
        if (accumulate) {
            for (size_t c = 0; c < cols; c++) dxr[c] += rs * (dyr[c] * w[c] - xr[c] * rs * m);
        } else {
            for (size_t c = 0; c < cols; c++) dxr[c] = rs * (dyr[c] * w[c] - xr[c] * rs * m);
        }
    }
}

// ---------------------------------------------------------------- RoPE
void pk_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t,
             size_t rows, size_t heads, size_t head_dim, int inverse) {
    size_t half = head_dim / 2;
    float sign = inverse ? -1.0f : 1.0f;
    for (size_t r = 0; r < rows; r++) {
        const float *c = cos_t + (size_t)pos[r] * half;
        const float *s = sin_t + (size_t)pos[r] * half;
        for (size_t h = 0; h < heads; h++) {
            float *v = x + (r * heads + h) * head_dim;
            for (size_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                float si = sign * s[i];
                v[i] = a * c[i] - b * si;
                v[i + half] = b * c[i] + a * si;
            }
        }
    }
}

// ---------------------------------------------------------------- softmax
// exp on 8 lanes (Cephes-style range reduction + degree-6 polynomial; max rel. error ~2e-7).
static inline __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447504f);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    __m256 x2 = _mm256_mul_ps(x, x);
    y = _mm256_fmadd_ps(y, x2, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float hmax256(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static inline float hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

void pk_causal_softmax(float *s, size_t t, size_t s_len, size_t q0, float scale) {
    for (size_t i = 0; i < t; i++) {
        float *row = s + i * s_len;
        size_t n = q0 + i + 1;  // keys this query may see
        if (n > s_len) n = s_len;
        __m256 vs = _mm256_set1_ps(scale);
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        size_t j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + j), vs);
            _mm256_storeu_ps(row + j, v);
            vmax = _mm256_max_ps(vmax, v);
        }
        float mx = hmax256(vmax);
        for (; j < n; j++) { row[j] *= scale; if (row[j] > mx) mx = row[j]; }
        __m256 vm = _mm256_set1_ps(mx), vsum = _mm256_setzero_ps();
        j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
            _mm256_storeu_ps(row + j, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        double sum = hsum256(vsum);
        for (; j < n; j++) { row[j] = expf(row[j] - mx); sum += row[j]; }
        float inv = (float)(1.0 / sum);
        __m256 vi = _mm256_set1_ps(inv);
        j = 0;
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), vi));
        for (; j < n; j++) row[j] *= inv;
        if (n < s_len) memset(row + n, 0, (s_len - n) * sizeof(float));
    }
}

// ---------------------------------------------------------------- SwiGLU
void pk_silu_mul(const float *g, const float *u, float *h, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i);
        __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, vg))));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(vg, sig), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        h[i] = g[i] * sig * u[i];
    }
}

void pk_silu_mul_backward(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        float silu = g[i] * sig;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

// ---------------------------------------------------------------- helpers
void pk_add_inplace(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
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

// ---------------------------------------------------------------- training kernels
// The scalar originals above call expf/exp per element; at the vocabulary and FFN sizes of a training step
// (V = 49152, N·F = 1.5M per layer) that costs more than the GEMMs around it, hence these 8-lane versions.

double pk_cross_entropy_row_vec(const float *logits, size_t v, int32_t target, float *dlogits, float gscale) {
    const float xt = logits[target];  // read before dlogits (which may alias logits) is written
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 8 <= v; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(logits + j));
    float mx = hmax256(vmax);
    for (; j < v; j++) if (logits[j] > mx) mx = logits[j];
    // Sum of exp(x - max): 8 float lanes per block, blocks added into double lanes.
    __m256 vm = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    j = 0;
    for (; j + 8 <= v; j += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(logits + j), vm));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; j < v; j++) sum += exp((double)logits[j] - mx);
    double lse = (double)mx + log(sum);
    if (dlogits) {
        // softmax · gscale = exp(x - lse) · gscale
        __m256 vl = _mm256_set1_ps((float)lse), vg = _mm256_set1_ps(gscale);
        j = 0;
        for (; j + 8 <= v; j += 8)
            _mm256_storeu_ps(dlogits + j, _mm256_mul_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(logits + j), vl)), vg));
        for (; j < v; j++) dlogits[j] = (float)exp((double)logits[j] - lse) * gscale;
        dlogits[target] -= gscale;
    }
    return lse - (double)xt;
}

void pk_silu_mul_backward_vec(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i), vu = _mm256_loadu_ps(u + i), vd = _mm256_loadu_ps(dh + i);
        __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, vg))));
        __m256 silu = _mm256_mul_ps(vg, sig);
        _mm256_storeu_ps(du + i, _mm256_mul_ps(vd, silu));
        // d silu/dg = sig · (1 + g · (1 − sig))
        __m256 dsilu = _mm256_mul_ps(sig, _mm256_fmadd_ps(vg, _mm256_sub_ps(one, sig), one));
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(vd, vu), dsilu));
    }
    for (; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * sig;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

void pk_causal_softmax_backward(const float *p, float *dp, size_t t, size_t s_len, size_t q0, float scale) {
    for (size_t i = 0; i < t; i++) {
        const float *pr = p + i * s_len;
        float *dr = dp + i * s_len;
        size_t n = q0 + i + 1;
        if (n > s_len) n = s_len;
        __m256 acc = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 8 <= n; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(pr + j), _mm256_loadu_ps(dr + j), acc);
        float dot = hsum256(acc);
        for (; j < n; j++) dot += pr[j] * dr[j];
        __m256 vd = _mm256_set1_ps(dot), vs = _mm256_set1_ps(scale);
        j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(dr + j), vd);
            _mm256_storeu_ps(dr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(pr + j), d), vs));
        }
        for (; j < n; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
        if (n < s_len) memset(dr + n, 0, (s_len - n) * sizeof(float));
    }
}

// Skinny products: R (a LoRA rank) is small, so blocks of 8 rows of R live in 8 ymm accumulators while the
// long dimension streams through once. Ranks that are not a multiple of 8 finish with a plain loop.

void pk_skinny_nt(const float *x, size_t ldx, const float *a, size_t r, size_t k, float *h, size_t ldh,
                  size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) {
        const float *xr = x + i * ldx;
        float *hr = h + i * ldh;
        size_t j0 = 0;
        for (; j0 + 8 <= r; j0 += 8) {
            const float *a0 = a + j0 * k;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
            size_t p = 0;
            for (; p + 8 <= k; p += 8) {
                __m256 xv = _mm256_loadu_ps(xr + p);
                c0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + p), xv, c0);
                c1 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + k + p), xv, c1);
                c2 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 2 * k + p), xv, c2);
                c3 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 3 * k + p), xv, c3);
                c4 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 4 * k + p), xv, c4);
                c5 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 5 * k + p), xv, c5);
                c6 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 6 * k + p), xv, c6);
                c7 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + 7 * k + p), xv, c7);
            }
            float s[8] = {hsum256(c0), hsum256(c1), hsum256(c2), hsum256(c3),
                          hsum256(c4), hsum256(c5), hsum256(c6), hsum256(c7)};
            for (; p < k; p++)
                for (size_t jj = 0; jj < 8; jj++) s[jj] += a0[jj * k + p] * xr[p];
            for (size_t jj = 0; jj < 8; jj++) hr[j0 + jj] = alpha * s[jj];
        }
        for (; j0 < r; j0++) {
            const float *aj = a + j0 * k;
            __m256 c = _mm256_setzero_ps();
            size_t p = 0;
            for (; p + 8 <= k; p += 8) c = _mm256_fmadd_ps(_mm256_loadu_ps(aj + p), _mm256_loadu_ps(xr + p), c);
            float s = hsum256(c);
            for (; p < k; p++) s += aj[p] * xr[p];
            hr[j0] = alpha * s;
        }
    }
}

void pk_skinny_nn_acc(const float *c, size_t ldc, size_t r, const float *m, size_t k, float *y, size_t ldy,
                      size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) {
        const float *cr = c + i * ldc;
        float *yr = y + i * ldy;
        size_t j0 = 0;
        for (; j0 + 8 <= r; j0 += 8) {
            const float *m0 = m + j0 * k;
            __m256 b0 = _mm256_set1_ps(alpha * cr[j0]), b1 = _mm256_set1_ps(alpha * cr[j0 + 1]);
            __m256 b2 = _mm256_set1_ps(alpha * cr[j0 + 2]), b3 = _mm256_set1_ps(alpha * cr[j0 + 3]);
            __m256 b4 = _mm256_set1_ps(alpha * cr[j0 + 4]), b5 = _mm256_set1_ps(alpha * cr[j0 + 5]);
            __m256 b6 = _mm256_set1_ps(alpha * cr[j0 + 6]), b7 = _mm256_set1_ps(alpha * cr[j0 + 7]);
            size_t p = 0;
            for (; p + 8 <= k; p += 8) {
                __m256 yv = _mm256_loadu_ps(yr + p);
                yv = _mm256_fmadd_ps(b0, _mm256_loadu_ps(m0 + p), yv);
                yv = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m0 + k + p), yv);
                yv = _mm256_fmadd_ps(b2, _mm256_loadu_ps(m0 + 2 * k + p), yv);
                yv = _mm256_fmadd_ps(b3, _mm256_loadu_ps(m0 + 3 * k + p), yv);
                yv = _mm256_fmadd_ps(b4, _mm256_loadu_ps(m0 + 4 * k + p), yv);
                yv = _mm256_fmadd_ps(b5, _mm256_loadu_ps(m0 + 5 * k + p), yv);
                yv = _mm256_fmadd_ps(b6, _mm256_loadu_ps(m0 + 6 * k + p), yv);
                yv = _mm256_fmadd_ps(b7, _mm256_loadu_ps(m0 + 7 * k + p), yv);
                _mm256_storeu_ps(yr + p, yv);
            }
            for (; p < k; p++) {
                float s = 0;
                for (size_t jj = 0; jj < 8; jj++) s += cr[j0 + jj] * m0[jj * k + p];
                yr[p] += alpha * s;
            }
        }
        for (; j0 < r; j0++) {
            const float *mj = m + j0 * k;
            float cj = alpha * cr[j0];
            __m256 b = _mm256_set1_ps(cj);
            size_t p = 0;
            for (; p + 8 <= k; p += 8)
                _mm256_storeu_ps(yr + p, _mm256_fmadd_ps(b, _mm256_loadu_ps(mj + p), _mm256_loadu_ps(yr + p)));
            for (; p < k; p++) yr[p] += cj * mj[p];
        }
    }
}

void pk_skinny_tn_acc(const float *c, size_t ldc, size_t r, const float *z, size_t ldz, size_t k,
                      float *g, size_t ldg, size_t n, float alpha) {
    __m256 va = _mm256_set1_ps(alpha);
    size_t j0 = 0;
    for (; j0 + 8 <= r; j0 += 8) {
        size_t p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (size_t i = 0; i < n; i++) {
                const float *cr = c + i * ldc + j0;
                __m256 zv = _mm256_loadu_ps(z + i * ldz + p);
                a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr), zv, a0);
                a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 1), zv, a1);
                a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 2), zv, a2);
                a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 3), zv, a3);
                a4 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 4), zv, a4);
                a5 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 5), zv, a5);
                a6 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 6), zv, a6);
                a7 = _mm256_fmadd_ps(_mm256_broadcast_ss(cr + 7), zv, a7);
            }
            float *g0 = g + j0 * ldg + p;
            _mm256_storeu_ps(g0, _mm256_fmadd_ps(va, a0, _mm256_loadu_ps(g0)));
            _mm256_storeu_ps(g0 + ldg, _mm256_fmadd_ps(va, a1, _mm256_loadu_ps(g0 + ldg)));
            _mm256_storeu_ps(g0 + 2 * ldg, _mm256_fmadd_ps(va, a2, _mm256_loadu_ps(g0 + 2 * ldg)));
            _mm256_storeu_ps(g0 + 3 * ldg, _mm256_fmadd_ps(va, a3, _mm256_loadu_ps(g0 + 3 * ldg)));
            _mm256_storeu_ps(g0 + 4 * ldg, _mm256_fmadd_ps(va, a4, _mm256_loadu_ps(g0 + 4 * ldg)));
            _mm256_storeu_ps(g0 + 5 * ldg, _mm256_fmadd_ps(va, a5, _mm256_loadu_ps(g0 + 5 * ldg)));
            _mm256_storeu_ps(g0 + 6 * ldg, _mm256_fmadd_ps(va, a6, _mm256_loadu_ps(g0 + 6 * ldg)));
            _mm256_storeu_ps(g0 + 7 * ldg, _mm256_fmadd_ps(va, a7, _mm256_loadu_ps(g0 + 7 * ldg)));
        }
        for (; p < k; p++) {
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t i = 0; i < n; i++) {
                float zv = z[i * ldz + p];
                for (size_t jj = 0; jj < 8; jj++) s[jj] += c[i * ldc + j0 + jj] * zv;
            }
            for (size_t jj = 0; jj < 8; jj++) g[(j0 + jj) * ldg + p] += alpha * s[jj];
        }
    }
    for (; j0 < r; j0++) {
        size_t p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t i = 0; i < n; i++)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(c + i * ldc + j0), _mm256_loadu_ps(z + i * ldz + p), acc);
            float *gp = g + j0 * ldg + p;
            _mm256_storeu_ps(gp, _mm256_fmadd_ps(va, acc, _mm256_loadu_ps(gp)));
        }
        for (; p < k; p++) {
            float s = 0;
            for (size_t i = 0; i < n; i++) s += c[i * ldc + j0] * z[i * ldz + p];
            g[j0 * ldg + p] += alpha * s;
        }
    }
}

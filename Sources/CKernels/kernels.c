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

void pk_softmax_backward(const float *p, float *dp, size_t t, size_t s_len, float scale) {
    for (size_t i = 0; i < t; i++) {
        const float *pr = p + i * s_len;
        float *dr = dp + i * s_len;
        double dot = 0;
        for (size_t j = 0; j < s_len; j++) dot += (double)pr[j] * dr[j];
        float d = (float)dot;
        for (size_t j = 0; j < s_len; j++) dr[j] = pr[j] * (dr[j] - d) * scale;
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

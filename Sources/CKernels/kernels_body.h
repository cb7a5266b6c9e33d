// The kernels, written once against a small lane vocabulary (V, VLOAD, VFMA, ...) that each ISA file
// defines before including this body: kernels_scalar.c (1 lane, any x86-64), kernels_avx2.c (8 lanes,
// AVX2 + FMA + F16C), kernels_avx512.c (16 lanes, AVX-512 F/BW/VL/DQ). Every function here is static;
// each ISA file exports one pk_kernel_table (dispatch.c picks the table at run time).
//
// Lane vocabulary expected from the includer:
//   V, W (lanes), VLOAD(p), VSTORE(p, v), VSET1(x), VZERO(), VADD, VSUB, VMUL, VDIV, VMAX, VMIN,
//   VFMA(a, b, c) = a*b + c, VFNMA(a, b, c) = c - a*b, VFLOOR(v), VPOW2(v) (2^v for integral v),
//   VHSUM(v), VHMAX(v) (float), VD (a double accumulator of W lanes), VD_ZERO, VD_ADD(acc, v), VD_SUM(acc),
//   F16_TO_F32(src, dst, n) and F32_TO_F16(src, dst, n) (whole-array half conversions).

#include <math.h>
#include <string.h>

// exp on W lanes (Cephes-style range reduction + degree-6 polynomial; max rel. error ~2e-7).
static inline V vexp(V x) {
    x = VMIN(VMAX(x, VSET1(-87.3365447504f)), VSET1(88.3762626647949f));
    V fx = VFLOOR(VFMA(x, VSET1(1.44269504088896341f), VSET1(0.5f)));
    x = VFNMA(fx, VSET1(0.693359375f), x);
    x = VFNMA(fx, VSET1(-2.12194440e-4f), x);
    V y = VSET1(1.9875691500E-4f);
    y = VFMA(y, x, VSET1(1.3981999507E-3f));
    y = VFMA(y, x, VSET1(8.3334519073E-3f));
    y = VFMA(y, x, VSET1(4.1665795894E-2f));
    y = VFMA(y, x, VSET1(1.6666665459E-1f));
    y = VFMA(y, x, VSET1(5.0000001201E-1f));
    y = VFMA(y, VMUL(x, x), VADD(x, VSET1(1.0f)));
    return VMUL(y, VPOW2(fx));
}

// ---------------------------------------------------------------- dtype conversion
static void bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    uint32_t *d = (uint32_t *)dst;
    for (size_t i = 0; i < n; i++) d[i] = ((uint32_t)src[i]) << 16;
}

static void f16_to_f32(const uint16_t *src, float *dst, size_t n) { F16_TO_F32(src, dst, n); }

static void f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    const uint32_t *s = (const uint32_t *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = s[i];
        if ((u & 0x7fffffffu) > 0x7f800000u) { dst[i] = (uint16_t)((u >> 16) | 0x40); continue; } // quiet NaN
        uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)((u + rounding) >> 16);
    }
}

static void f32_to_f16(const float *src, uint16_t *dst, size_t n) { F32_TO_F16(src, dst, n); }

// ---------------------------------------------------------------- RMSNorm
static void rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, size_t rows, size_t cols, float eps) {
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

static void rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
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
static void rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t,
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

// ---------------------------------------------------------------- blockwise attention
// One (query block, key block) tile of flash-style attention: the scores never exist beyond one tile.
// Row i of a tile sees its first clamp(first_visible + i, 0, cols) keys (the causal mask); the rest is 0.
static inline size_t visible_keys(ptrdiff_t first_visible, size_t i, size_t cols) {
    ptrdiff_t v = first_visible + (ptrdiff_t)i;
    return v <= 0 ? 0 : (size_t)v < cols ? (size_t)v : cols;
}

// The last n < W elements of a row as lanes (the rest `pad`), and back: causal rows end anywhere, and a
// libm exp per tail element cost as much as the vector body on short rows.
static inline V vload_tail(const float *p, size_t n, float pad) {
    float b[W];
    for (size_t i = 0; i < W; i++) b[i] = i < n ? p[i] : pad;
    return VLOAD(b);
}

static inline void vstore_tail(float *p, V v, size_t n) {
    float b[W];
    VSTORE(b, v);
    memcpy(p, b, n * sizeof(float));
}

static void attention_block_softmax(float *s, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible, float scale,
                                    float *m, float *l, float *acc, size_t ldacc, size_t dim) {
    for (size_t i = 0; i < rows; i++) {
        float *row = s + i * ld;
        size_t n = visible_keys(first_visible, i, cols);
        if (n < cols) memset(row + n, 0, (cols - n) * sizeof(float));
        if (n == 0) continue;   // nothing new for this row: its max, sum and accumulator stand
        V vs = VSET1(scale), vmax = VSET1(-INFINITY);
        size_t j = 0;
        for (; j + W <= n; j += W) {
            V v = VMUL(VLOAD(row + j), vs);
            VSTORE(row + j, v);
            vmax = VMAX(vmax, v);
        }
        float mx = VHMAX(vmax);
        for (; j < n; j++) { row[j] *= scale; if (row[j] > mx) mx = row[j]; }
        float m_old = m[i], m_new = m_old > mx ? m_old : mx;
        V vm = VSET1(m_new), vsum = VZERO();
        j = 0;
        for (; j + W <= n; j += W) {
            V e = vexp(VSUB(VLOAD(row + j), vm));
            VSTORE(row + j, e);
            vsum = VADD(vsum, e);
        }
        float sum = VHSUM(vsum);
        if (j < n) {
            vstore_tail(row + j, vexp(VSUB(vload_tail(row + j, n - j, 0), vm)), n - j);
            for (; j < n; j++) sum += row[j];
        }
        // Earlier tiles were weighed against the old max: bring their sum and output to the new one.
        float c = expf(m_old - m_new);   // 0 on a row's first tile (m_old = -inf)
        l[i] = l[i] * c + sum;
        m[i] = m_new;
        if (!acc || c == 1.0f) continue;
        float *a = acc + i * ldacc;
        V vc = VSET1(c);
        size_t d = 0;
        for (; d + W <= dim; d += W) VSTORE(a + d, VMUL(VLOAD(a + d), vc));
        for (; d < dim; d++) a[d] *= c;
    }
}

static void attention_block_backward(float *s, float *dp, size_t rows, size_t cols, size_t ld, ptrdiff_t first_visible,
                                     float scale, const float *lse, const float *delta) {
    for (size_t i = 0; i < rows; i++) {
        float *sr = s + i * ld, *dr = dp + i * ld;
        size_t n = visible_keys(first_visible, i, cols);
        V vs = VSET1(scale), vl = VSET1(-lse[i]), vd = VSET1(delta[i]);
        size_t j = 0;
        for (; j + W <= n; j += W) {
            V p = vexp(VFMA(VLOAD(sr + j), vs, vl));
            VSTORE(sr + j, p);
            VSTORE(dr + j, VMUL(VMUL(p, VSUB(VLOAD(dr + j), vd)), vs));
        }
        if (j < n) {
            V p = vexp(VFMA(vload_tail(sr + j, n - j, 0), vs, vl));
            vstore_tail(sr + j, p, n - j);
            vstore_tail(dr + j, VMUL(VMUL(p, VSUB(vload_tail(dr + j, n - j, 0), vd)), vs), n - j);
        }
        if (n < cols) {
            memset(sr + n, 0, (cols - n) * sizeof(float));
            memset(dr + n, 0, (cols - n) * sizeof(float));
        }
    }
}

static void row_dot(const float *a, size_t lda, const float *b, size_t ldb, size_t rows, size_t cols, float *out) {
    for (size_t i = 0; i < rows; i++) {
        const float *ar = a + i * lda, *br = b + i * ldb;
        V acc = VZERO();
        size_t j = 0;
        for (; j + W <= cols; j += W) acc = VFMA(VLOAD(ar + j), VLOAD(br + j), acc);
        float sum = VHSUM(acc);
        for (; j < cols; j++) sum += ar[j] * br[j];
        out[i] = sum;
    }
}

// ---------------------------------------------------------------- SwiGLU
static inline V vsigmoid(V g) { return VDIV(VSET1(1.0f), VADD(VSET1(1.0f), vexp(VSUB(VZERO(), g)))); }

static void silu_mul(const float *g, const float *u, float *h, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) {
        V vg = VLOAD(g + i);
        VSTORE(h + i, VMUL(VMUL(vg, vsigmoid(vg)), VLOAD(u + i)));
    }
    // The tail on padded lanes too: each element's result then does not depend on where it sits, so a row of
    // several gives what it gives alone (decoding's verification rows).
    if (i < n) {
        V vg = vload_tail(g + i, n - i, 0.0f);
        vstore_tail(h + i, VMUL(VMUL(vg, vsigmoid(vg)), vload_tail(u + i, n - i, 0.0f)), n - i);
    }
}

static void silu_mul_backward(const float *g, const float *u, const float *dh, float *dg, float *du, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) {
        V vg = VLOAD(g + i), vu = VLOAD(u + i), vd = VLOAD(dh + i);
        V sig = vsigmoid(vg);
        VSTORE(du + i, VMUL(vd, VMUL(vg, sig)));
        // d silu/dg = sig · (1 + g · (1 − sig))
        V dsilu = VMUL(sig, VFMA(vg, VSUB(VSET1(1.0f), sig), VSET1(1.0f)));
        VSTORE(dg + i, VMUL(VMUL(vd, vu), dsilu));
    }
    for (; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * sig;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

// ---------------------------------------------------------------- helpers
static void add_inplace(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

// Cross-entropy of one row: at the vocabulary sizes of a training step (V = 49152) a per-element libm exp
// costs more than the GEMM around it, hence lanes; the sum of exponentials is kept in double lanes.
static double cross_entropy_row(const float *logits, size_t v, int32_t target, float *dlogits, float gscale) {
    const float xt = logits[target];  // read before dlogits (which may alias logits) is written
    V vmax = VSET1(-INFINITY);
    size_t j = 0;
    for (; j + W <= v; j += W) vmax = VMAX(vmax, VLOAD(logits + j));
    float mx = VHMAX(vmax);
    for (; j < v; j++) if (logits[j] > mx) mx = logits[j];
    V vm = VSET1(mx);
    VD acc = VD_ZERO;
    j = 0;
    for (; j + W <= v; j += W) VD_ADD(acc, vexp(VSUB(VLOAD(logits + j), vm)));
    double sum = VD_SUM(acc);
    for (; j < v; j++) sum += exp((double)logits[j] - mx);
    double lse = (double)mx + log(sum);
    if (dlogits) {
        // softmax · gscale = exp(x - lse) · gscale
        V vl = VSET1((float)lse), vg = VSET1(gscale);
        j = 0;
        for (; j + W <= v; j += W) VSTORE(dlogits + j, VMUL(vexp(VSUB(VLOAD(logits + j), vl)), vg));
        for (; j < v; j++) dlogits[j] = (float)exp((double)logits[j] - lse) * gscale;
        dlogits[target] -= gscale;
    }
    return lse - (double)xt;
}

// The distillation loss of one row (Hinton et al., 2015) for student logits z and teacher logits t:
// (1 − α)·CE(z, target) + α·τ²·KL(softmax(t/τ) ‖ softmax(z/τ)), with the gradient
// ((1 − α)·(softmax(z) − onehot) + α·τ·(softmax(z/τ) − softmax(t/τ)))·gscale written into dlogits (which may
// alias z). Its CE part is cross_entropy_row's arithmetic step for step, so that α = 0 gives that kernel's
// loss and gradient bit for bit. The KL is Σ p·((t − max t) − (z − max z))/τ − log Σ_t + log Σ_z/τ over the
// shifted exponentials: rows where student and teacher agree give exactly 0. Sums are kept in double lanes.
static double distill_row(const float *z, const float *t, size_t v, int32_t target, double alpha, double tau,
                          float *dlogits, float gscale, double *parts) {
    const float zy = z[target];  // read before dlogits (which may alias z) is written
    V vzmax = VSET1(-INFINITY), vtmax = VSET1(-INFINITY);
    size_t j = 0;
    for (; j + W <= v; j += W) {
        vzmax = VMAX(vzmax, VLOAD(z + j));
        vtmax = VMAX(vtmax, VLOAD(t + j));
    }
    float mz = VHMAX(vzmax), mt = VHMAX(vtmax);
    for (; j < v; j++) {
        if (z[j] > mz) mz = z[j];
        if (t[j] > mt) mt = t[j];
    }
    const float inv = (float)(1.0 / tau);
    V vmz = VSET1(mz), vmt = VSET1(mt), vinv = VSET1(inv);
    // Σ exp(z − mz), Σ exp((z − mz)/τ), Σ exp((t − mt)/τ) and Σ exp((t − mt)/τ)·((t − mt) − (z − mz)).
    VD acc = VD_ZERO, accz = VD_ZERO, acct = VD_ZERO, accd = VD_ZERO;
    j = 0;
    for (; j + W <= v; j += W) {
        V sz = VSUB(VLOAD(z + j), vmz), st = VSUB(VLOAD(t + j), vmt);
        V et = vexp(VMUL(st, vinv));
        VD_ADD(acc, vexp(sz));
        VD_ADD(accz, vexp(VMUL(sz, vinv)));
        VD_ADD(acct, et);
        VD_ADD(accd, VMUL(et, VSUB(st, sz)));
    }
    double sum = VD_SUM(acc), sumz = VD_SUM(accz), sumt = VD_SUM(acct), dot = VD_SUM(accd);
    for (; j < v; j++) {
        sum += exp((double)z[j] - mz);
        double sz = (double)z[j] - mz, st = (double)t[j] - mt, et = exp(st / tau);
        sumz += exp(sz / tau);
        sumt += et;
        dot += et * (st - sz);
    }
    double lse = (double)mz + log(sum), logz = log(sumz), logt = log(sumt);
    double ce = lse - (double)zy, kl = dot / (sumt * tau) - logt + logz;
    if (dlogits) {
        // (1 − α)·softmax(z) + α·τ·(q − p), all times gscale; the onehot after the loop.
        float g1 = (float)(1.0 - alpha) * gscale, g2 = (float)(alpha * tau) * gscale;
        V vl = VSET1((float)lse), vg1 = VSET1(g1), vg2 = VSET1(g2), vlz = VSET1((float)logz), vlt = VSET1((float)logt);
        j = 0;
        for (; j + W <= v; j += W) {
            V zj = VLOAD(z + j), tj = VLOAD(t + j);
            V q = vexp(VSUB(VMUL(VSUB(zj, vmz), vinv), vlz)), p = vexp(VSUB(VMUL(VSUB(tj, vmt), vinv), vlt));
            VSTORE(dlogits + j, VFMA(VSUB(q, p), vg2, VMUL(vexp(VSUB(zj, vl)), vg1)));
        }
        for (; j < v; j++) {
            float q = (float)exp(((double)z[j] - mz) / tau - logz), p = (float)exp(((double)t[j] - mt) / tau - logt);
            dlogits[j] = (float)exp((double)z[j] - lse) * g1 + (q - p) * g2;
        }
        dlogits[target] -= g1;
    }
    if (parts) { parts[0] = ce; parts[1] = kl; }
    return (1.0 - alpha) * ce + alpha * tau * tau * kl;
}

// ---------------------------------------------------------------- skinny products
// R (a LoRA rank) is small, so blocks of 8 rows of R live in 8 accumulators while the long dimension
// streams through once. Ranks that are not a multiple of 8 finish with one row at a time.

static void skinny_nt(const float *x, size_t ldx, const float *a, size_t r, size_t k, float *h, size_t ldh,
                      size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) {
        const float *xr = x + i * ldx;
        float *hr = h + i * ldh;
        size_t j0 = 0;
        for (; j0 + 8 <= r; j0 += 8) {
            const float *a0 = a + j0 * k;
            V c[8];
            for (int q = 0; q < 8; q++) c[q] = VZERO();
            size_t p = 0;
            for (; p + W <= k; p += W) {
                V xv = VLOAD(xr + p);
                for (int q = 0; q < 8; q++) c[q] = VFMA(VLOAD(a0 + q * k + p), xv, c[q]);
            }
            float s[8];
            for (int q = 0; q < 8; q++) s[q] = VHSUM(c[q]);
            for (; p < k; p++)
                for (size_t q = 0; q < 8; q++) s[q] += a0[q * k + p] * xr[p];
            for (size_t q = 0; q < 8; q++) hr[j0 + q] = alpha * s[q];
        }
        for (; j0 < r; j0++) {
            const float *aj = a + j0 * k;
            V c = VZERO();
            size_t p = 0;
            for (; p + W <= k; p += W) c = VFMA(VLOAD(aj + p), VLOAD(xr + p), c);
            float s = VHSUM(c);
            for (; p < k; p++) s += aj[p] * xr[p];
            hr[j0] = alpha * s;
        }
    }
}

static void skinny_nn_acc(const float *c, size_t ldc, size_t r, const float *m, size_t k, float *y, size_t ldy,
                          size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) {
        const float *cr = c + i * ldc;
        float *yr = y + i * ldy;
        size_t j0 = 0;
        for (; j0 + 8 <= r; j0 += 8) {
            const float *m0 = m + j0 * k;
            V b[8];
            for (int q = 0; q < 8; q++) b[q] = VSET1(alpha * cr[j0 + q]);
            size_t p = 0;
            for (; p + W <= k; p += W) {
                V yv = VLOAD(yr + p);
                for (int q = 0; q < 8; q++) yv = VFMA(b[q], VLOAD(m0 + q * k + p), yv);
                VSTORE(yr + p, yv);
            }
            for (; p < k; p++) {
                float s = 0;
                for (size_t q = 0; q < 8; q++) s += cr[j0 + q] * m0[q * k + p];
                yr[p] += alpha * s;
            }
        }
        for (; j0 < r; j0++) {
            const float *mj = m + j0 * k;
            float cj = alpha * cr[j0];
            V b = VSET1(cj);
            size_t p = 0;
            for (; p + W <= k; p += W) VSTORE(yr + p, VFMA(b, VLOAD(mj + p), VLOAD(yr + p)));
            for (; p < k; p++) yr[p] += cj * mj[p];
        }
    }
}

static void skinny_tn_acc(const float *c, size_t ldc, size_t r, const float *z, size_t ldz, size_t k,
                          float *g, size_t ldg, size_t n, float alpha) {
    V va = VSET1(alpha);
    size_t j0 = 0;
    for (; j0 + 8 <= r; j0 += 8) {
        size_t p = 0;
        for (; p + W <= k; p += W) {
            V acc[8];
            for (int q = 0; q < 8; q++) acc[q] = VZERO();
            for (size_t i = 0; i < n; i++) {
                const float *cr = c + i * ldc + j0;
                V zv = VLOAD(z + i * ldz + p);
                for (int q = 0; q < 8; q++) acc[q] = VFMA(VSET1(cr[q]), zv, acc[q]);
            }
            for (int q = 0; q < 8; q++) {
                float *gq = g + (j0 + q) * ldg + p;
                VSTORE(gq, VFMA(va, acc[q], VLOAD(gq)));
            }
        }
        for (; p < k; p++) {
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t i = 0; i < n; i++) {
                float zv = z[i * ldz + p];
                for (size_t q = 0; q < 8; q++) s[q] += c[i * ldc + j0 + q] * zv;
            }
            for (size_t q = 0; q < 8; q++) g[(j0 + q) * ldg + p] += alpha * s[q];
        }
    }
    for (; j0 < r; j0++) {
        size_t p = 0;
        for (; p + W <= k; p += W) {
            V acc = VZERO();
            for (size_t i = 0; i < n; i++) acc = VFMA(VSET1(c[i * ldc + j0]), VLOAD(z + i * ldz + p), acc);
            float *gp = g + j0 * ldg + p;
            VSTORE(gp, VFMA(va, acc, VLOAD(gp)));
        }
        for (; p < k; p++) {
            float s = 0;
            for (size_t i = 0; i < n; i++) s += c[i * ldc + j0] * z[i * ldz + p];
            g[j0 * ldg + p] += alpha * s;
        }
    }
}

// ---------------------------------------------------------------- the table
#define PK_TABLE_ENTRIES                                                                                    \
    .name = PK_ISA_NAME, .lanes = W,                                                                        \
    .bf16_to_f32 = bf16_to_f32, .f16_to_f32 = f16_to_f32, .f32_to_bf16 = f32_to_bf16, .f32_to_f16 = f32_to_f16, \
    .rmsnorm_forward = rmsnorm_forward, .rmsnorm_backward = rmsnorm_backward, .rope = rope,                \
    .attention_block_softmax = attention_block_softmax, .attention_block_backward = attention_block_backward, \
    .row_dot = row_dot,                                                                                     \
    .silu_mul = silu_mul, .silu_mul_backward = silu_mul_backward, .add_inplace = add_inplace,              \
    .cross_entropy_row = cross_entropy_row, .distill_row = distill_row,                                     \
    .skinny_nt = skinny_nt, .skinny_nn_acc = skinny_nn_acc, .skinny_tn_acc = skinny_tn_acc

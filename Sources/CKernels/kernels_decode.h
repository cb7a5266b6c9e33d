// The decoding kernels, included by each ISA file after kernels_body.h (same lane vocabulary, plus
// VLOAD_BF16(p) and VLOAD_F16(p): W 16-bit weights widened to Float32 lanes, exactly).
// A decoding step multiplies M ≤ 16 rows (one token, or a verification pass of K+1 tokens) by every weight:
// there the cost is reading the weights, so these read each weight row once for all M rows and widen 16-bit
// elements inside the dot product, with no Float32 copy of the weight.
//
// Row independence, by construction: every output element (row i, output o) is one dot product summed in one
// fixed order, whatever M, the output range, the blocking or the thread: lanes accumulate k in steps of W from
// k = 0 (a last partial step padded with zeros), then one horizontal sum. Attention for a query depends only on
// the query, the keys it sees and their count. So a verification row equals what a one-token step gives it.
// Dimension glossary: M rows, K shared (in) dimension, O outputs, S keys, D head dim.

#define MV_U 4          // accumulators per dot product (lanes of k steps U·W apart): independent FMA chains
#ifndef MV_M
#define MV_M 4          // input rows per pass (MV_M × MV_U accumulators must fit the register file)
#endif

static inline V vload_tail_bf16(const uint16_t *p, size_t n) {
    uint16_t b[W];
    for (size_t i = 0; i < W; i++) b[i] = i < n ? p[i] : 0;
    return VLOAD_BF16(b);
}
static inline V vload_tail_f16(const uint16_t *p, size_t n) {
    uint16_t b[W];
    for (size_t i = 0; i < W; i++) b[i] = i < n ? p[i] : 0;
    return VLOAD_F16(b);
}
#define VLOAD_F32(p) VLOAD(p)
static inline V vload_tail_f32(const float *p, size_t n) { return vload_tail(p, n, 0.0f); }

static inline void mv_store(float *y, float v, float alpha, int accumulate) {
    *y = accumulate ? alpha * v + *y : alpha * v;
}

// y[i·ldy + o] = alpha · (x_i · w_o) (+ y when accumulate) for i < m, o0 ≤ o < o1; w (O, K) at ldw.
// One weight row at a time, front to back (a single sequential stream, as the hardware prefetcher likes it),
// for MV_M input rows at once. The dot product's order is a function of k alone: vector step j (k = j·W…) goes
// to accumulator j mod MV_U, a last partial step padded with zeros goes where the next step would, and the
// accumulators are summed as (a0 + a1) + (a2 + a3) before one horizontal sum.
#define DEFINE_MATVEC(NAME, T, LOADW, TAILW)                                                                      \
static inline float NAME##_finish(V a[MV_U]) { return VHSUM(VADD(VADD(a[0], a[1]), VADD(a[2], a[3]))); }          \
static void NAME(const float *x, size_t ldx, size_t m, const T *w, size_t ldw, size_t k, size_t o0, size_t o1,    \
                 float *y, size_t ldy, float alpha, int accumulate) {                                              \
    const size_t kv = k / W * W, kt = k - kv, steps = kv / W;                                                     \
    for (size_t o = o0; o < o1; o++) {                                                                             \
        const T *wo = w + o * ldw;                                                                                 \
        size_t i0 = 0;                                                                                             \
        for (; i0 + MV_M <= m; i0 += MV_M) {                                                                       \
            V acc[MV_M][MV_U];                                                                                     \
            for (int i = 0; i < MV_M; i++) for (int u = 0; u < MV_U; u++) acc[i][u] = VZERO();                     \
            size_t j = 0;                                                                                          \
            for (; j + MV_U <= steps; j += MV_U) {                                                                 \
                for (int u = 0; u < MV_U; u++) {                                                                   \
                    V wv = LOADW(wo + (j + u) * W);                                                                \
                    for (int i = 0; i < MV_M; i++)                                                                 \
                        acc[i][u] = VFMA(VLOAD(x + (i0 + i) * ldx + (j + u) * W), wv, acc[i][u]);                  \
                }                                                                                                  \
            }                                                                                                      \
            /* the last < MV_U steps and the padded tail, with constant indices (registers, not the stack) */     \
            for (int u = 0; u < MV_U; u++) {                                                                       \
                if (j + u < steps) {                                                                               \
                    V wv = LOADW(wo + (j + u) * W);                                                                \
                    for (int i = 0; i < MV_M; i++)                                                                 \
                        acc[i][u] = VFMA(VLOAD(x + (i0 + i) * ldx + (j + u) * W), wv, acc[i][u]);                  \
                } else if (j + u == steps && kt) {                                                                 \
                    V wv = TAILW(wo + kv, kt);                                                                     \
                    for (int i = 0; i < MV_M; i++)                                                                 \
                        acc[i][u] = VFMA(vload_tail(x + (i0 + i) * ldx + kv, kt, 0.0f), wv, acc[i][u]);            \
                }                                                                                                  \
            }                                                                                                      \
            for (int i = 0; i < MV_M; i++) mv_store(y + (i0 + i) * ldy + o, NAME##_finish(acc[i]), alpha, accumulate); \
        }                                                                                                          \
        for (; i0 < m; i0++) {                                                                                     \
            const float *xr = x + i0 * ldx;                                                                        \
            V acc[MV_U];                                                                                           \
            for (int u = 0; u < MV_U; u++) acc[u] = VZERO();                                                       \
            size_t j = 0;                                                                                          \
            for (; j + MV_U <= steps; j += MV_U)                                                                   \
                for (int u = 0; u < MV_U; u++) acc[u] = VFMA(VLOAD(xr + (j + u) * W), LOADW(wo + (j + u) * W), acc[u]); \
            for (int u = 0; u < MV_U; u++) {                                                                       \
                if (j + u < steps) acc[u] = VFMA(VLOAD(xr + (j + u) * W), LOADW(wo + (j + u) * W), acc[u]);       \
                else if (j + u == steps && kt) acc[u] = VFMA(vload_tail(xr + kv, kt, 0.0f), TAILW(wo + kv, kt), acc[u]); \
            }                                                                                                      \
            mv_store(y + i0 * ldy + o, NAME##_finish(acc), alpha, accumulate);                                     \
        }                                                                                                          \
    }                                                                                                              \
}

DEFINE_MATVEC(matvec_f32, float, VLOAD_F32, vload_tail_f32)
DEFINE_MATVEC(matvec_bf16, uint16_t, VLOAD_BF16, vload_tail_bf16)
DEFINE_MATVEC(matvec_f16, uint16_t, VLOAD_F16, vload_tail_f16)

static void matvec(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                   size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    switch (element) {
    case PK_ELEMENT_BF16: matvec_bf16(x, ldx, m, (const uint16_t *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    case PK_ELEMENT_F16: matvec_f16(x, ldx, m, (const uint16_t *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    default: matvec_f32(x, ldx, m, (const float *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    }
}

// Per row i: the largest x_i · w_o over o0 ≤ o < o1 (the lowest o among equals) into best_value[i], best_index[i],
// and the first o whose product is not finite into first_nonfinite[i] (-1 if none). The products are matvec's,
// computed a block of outputs at a time into a small buffer: the (O) logits are never written out.
#define MV_ARGMAX_BLOCK 64
static void matvec_argmax(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                          size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite) {
    float block[PK_MATVEC_MAX_ROWS * MV_ARGMAX_BLOCK];
    for (size_t i = 0; i < m; i++) { best_value[i] = -INFINITY; best_index[i] = -1; first_nonfinite[i] = -1; }
    for (size_t b0 = o0; b0 < o1; b0 += MV_ARGMAX_BLOCK) {
        size_t n = o1 - b0 < MV_ARGMAX_BLOCK ? o1 - b0 : MV_ARGMAX_BLOCK;
        for (size_t i0 = 0; i0 < m; i0 += PK_MATVEC_MAX_ROWS) {
            size_t mb = m - i0 < PK_MATVEC_MAX_ROWS ? m - i0 : PK_MATVEC_MAX_ROWS;
            const char *wb = (const char *)w + b0 * ldw * (element == PK_ELEMENT_F32 ? 4 : 2);
            matvec(x + i0 * ldx, ldx, mb, wb, element, ldw, k, 0, n, block, n, 1.0f, 0);
            for (size_t i = 0; i < mb; i++) {
                const float *row = block + i * n;
                size_t at = i0 + i;
                for (size_t j = 0; j < n; j++) {
                    float v = row[j];
                    if (v - v != 0.0f) { if (first_nonfinite[at] < 0) first_nonfinite[at] = (int32_t)(b0 + j); continue; }
                    if (v > best_value[at] || best_index[at] < 0) { best_value[at] = v; best_index[at] = (int32_t)(b0 + j); }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- attention of one query over cached keys
// out (D) = softmax(scale · q·kⱼ over j < s) · v: q (D); keys and values s rows at leading dimension ld;
// scores holds s floats of scratch. No tiles: a decoding query sees every key once.
static void attention_query(const float *q, const float *keys, const float *values, size_t ld, size_t s, size_t d,
                            float scale, float *scores, float *out) {
    const size_t dv = d / W * W, dt = d - dv;
    float mx = -INFINITY;
    for (size_t j = 0; j < s; j++) {
        const float *kj = keys + j * ld;
        V acc = VZERO();
        for (size_t p = 0; p < dv; p += W) acc = VFMA(VLOAD(q + p), VLOAD(kj + p), acc);
        if (dt) acc = VFMA(vload_tail(q + dv, dt, 0.0f), vload_tail(kj + dv, dt, 0.0f), acc);
        float sc = scale * VHSUM(acc);
        scores[j] = sc;
        if (sc > mx) mx = sc;
    }
    const size_t sv = s / W * W, st = s - sv;
    V vmx = VSET1(mx), vsum = VZERO();
    for (size_t j = 0; j < sv; j += W) {
        V p = vexp(VSUB(VLOAD(scores + j), vmx));
        VSTORE(scores + j, p);
        vsum = VADD(vsum, p);
    }
    if (st) {
        V p = vexp(VSUB(vload_tail(scores + sv, st, mx), vmx));
        vstore_tail(scores + sv, p, st);
        vsum = VADD(vsum, vload_tail(scores + sv, st, 0.0f));
    }
    float inverse = (float)(1.0 / (double)VHSUM(vsum));
    for (size_t p = 0; p < d; p++) out[p] = 0.0f;
    for (size_t j = 0; j < s; j++) {
        const float *vj = values + j * ld;
        V pj = VSET1(scores[j]);
        for (size_t p = 0; p < dv; p += W) VSTORE(out + p, VFMA(pj, VLOAD(vj + p), VLOAD(out + p)));
        for (size_t p = dv; p < d; p++) out[p] += scores[j] * vj[p];
    }
    for (size_t p = 0; p < d; p++) out[p] *= inverse;
}

#define PK_DECODE_TABLE_ENTRIES .matvec = matvec, .matvec_argmax = matvec_argmax, .attention_query = attention_query

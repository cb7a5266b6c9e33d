// The decoding kernels, included by each ISA file after kernels_body.h (same lane vocabulary, plus
// PAIR_F32(p, e, o), PAIR_BF16(p, e, o) and PAIR_F16(p, e, o): from 2W weights at p, the W even-indexed ones in e
// and the W odd-indexed ones in o, as Float32 lanes, exactly).
// A decoding step multiplies M ≤ 16 rows (one token, or a verification pass of K+1 tokens) by every weight:
// there the cost is reading the weights, so these read each weight row once for all M rows and widen 16-bit
// elements inside the dot product, with no Float32 copy of the weight.
//
// Row independence, by construction: every output element (row i, output o) is one dot product summed in one
// fixed order, a function of k alone, whatever M, the output range, the blocking, the thread or the element type.
// Attention for a query depends only on the query, the keys it sees and their count. So a verification row equals
// what a one-token step gives it, and a bf16 weight gives what its Float32 values give.
// Dimension glossary: M rows, K shared (in) dimension, O outputs, S keys, D head dim.
#include <stdlib.h>

#ifndef MV_M
#define MV_M 4          // input rows per pass (MV_M × 4 accumulators must fit the register file)
#endif

static inline void mv_store(float *y, float v, float alpha, int accumulate) {
    *y = accumulate ? alpha * v + *y : alpha * v;
}

// The order: x and w go in blocks of 2W; each block splits into its even- and odd-indexed elements (for bf16 a
// shift and a mask of one load, no shuffle: that is what makes it fast; f32 and f16 permute to the same split so
// that every type sums alike). Block s goes to accumulators (even, odd) = (0, 1) for even s, (2, 3) for odd s, a
// last partial block (zero-padded) where the next block would, then (a0 + a1) + (a2 + a3) and one horizontal sum.
// x is laid out to match once per call (per block its even elements, then its odd ones, zeros past k).
#define MV_PAIR (2 * W)

static _Thread_local float *pair_scratch;
static _Thread_local size_t pair_scratch_count;

/// x (m, k) at ldx in the paired layout, ld = k rounded up to 2W (a per-thread buffer, grown when needed).
static float *pair_input(const float *x, size_t ldx, size_t m, size_t k, size_t *ld) {
    size_t ldd = (k + MV_PAIR - 1) / MV_PAIR * MV_PAIR;
    if (pair_scratch_count < m * ldd) {
        free(pair_scratch);
        pair_scratch = malloc(m * ldd * sizeof(float));
        pair_scratch_count = pair_scratch ? m * ldd : 0;
        if (!pair_scratch) return NULL;
    }
    for (size_t i = 0; i < m; i++) {
        const float *xr = x + i * ldx;
        float *d = pair_scratch + i * ldd;
        for (size_t b = 0; b < ldd; b += MV_PAIR)
            for (size_t j = 0; j < W; j++) {
                size_t e = b + 2 * j, o = e + 1;
                d[b + j] = e < k ? xr[e] : 0.0f;
                d[b + W + j] = o < k ? xr[o] : 0.0f;
            }
    }
    *ld = ldd;
    return pair_scratch;
}

static inline float pair_finish(V a[4]) { return VHSUM(VADD(VADD(a[0], a[1]), VADD(a[2], a[3]))); }

#define DEFINE_PAIRED_MATVEC(NAME, T, PAIR)                                                                           \
static void NAME(const float *xd, size_t ldd, size_t m, const T *w, size_t ldw, size_t k,                             \
                 size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {                           \
    const size_t kp = k / MV_PAIR * MV_PAIR, kt = k - kp, steps = kp / MV_PAIR;                                       \
    T tail[MV_PAIR];                                                                                                  \
    for (size_t o = o0; o < o1; o++) {                                                                                \
        const T *wo = w + o * ldw;                                                                                    \
        if (kt) for (size_t j = 0; j < MV_PAIR; j++) tail[j] = j < kt ? wo[kp + j] : 0;                               \
        size_t i0 = 0;                                                                                                \
        for (; i0 + MV_M <= m; i0 += MV_M) {                                                                          \
            V acc[MV_M][4];                                                                                           \
            for (int i = 0; i < MV_M; i++) for (int u = 0; u < 4; u++) acc[i][u] = VZERO();                           \
            size_t st = 0;                                                                                            \
            for (; st + 2 <= steps; st += 2) {                                                                        \
                const T *w0 = wo + st * MV_PAIR, *w1 = w0 + MV_PAIR;                                                  \
                V e0, d0, e1, d1;                                                                                     \
                PAIR(w0, e0, d0);                                                                                     \
                PAIR(w1, e1, d1);                                                                                     \
                for (int i = 0; i < MV_M; i++) {                                                                      \
                    const float *xr = xd + (i0 + i) * ldd + st * MV_PAIR;                                             \
                    acc[i][0] = VFMA(VLOAD(xr), e0, acc[i][0]);                                                       \
                    acc[i][1] = VFMA(VLOAD(xr + W), d0, acc[i][1]);                                                   \
                    acc[i][2] = VFMA(VLOAD(xr + 2 * W), e1, acc[i][2]);                                               \
                    acc[i][3] = VFMA(VLOAD(xr + 3 * W), d1, acc[i][3]);                                               \
                }                                                                                                     \
            }                                                                                                         \
            /* An odd last step into (0, 1), then the padded tail where the next step would go. */                                \
            int odd = st < steps;                                                                                     \
            if (odd) {                                                                                                \
                const T *w0 = wo + st * MV_PAIR;                                                                      \
                V e0, d0;                                                                                             \
                PAIR(w0, e0, d0);                                                                                     \
                for (int i = 0; i < MV_M; i++) {                                                                      \
                    const float *xr = xd + (i0 + i) * ldd + st * MV_PAIR;                                             \
                    acc[i][0] = VFMA(VLOAD(xr), e0, acc[i][0]);                                                       \
                    acc[i][1] = VFMA(VLOAD(xr + W), d0, acc[i][1]);                                                   \
                }                                                                                                     \
            }                                                                                                         \
            if (kt) {                                                                                                 \
                V e0, d0;                                                                                             \
                PAIR(tail, e0, d0);                                                                                   \
                for (int i = 0; i < MV_M; i++) {                                                                      \
                    const float *xr = xd + (i0 + i) * ldd + kp;                                                       \
                    if (odd) { acc[i][2] = VFMA(VLOAD(xr), e0, acc[i][2]); acc[i][3] = VFMA(VLOAD(xr + W), d0, acc[i][3]); }\
                    else { acc[i][0] = VFMA(VLOAD(xr), e0, acc[i][0]); acc[i][1] = VFMA(VLOAD(xr + W), d0, acc[i][1]); }\
                }                                                                                                     \
            }                                                                                                         \
            for (int i = 0; i < MV_M; i++) mv_store(y + (i0 + i) * ldy + o, pair_finish(acc[i]), alpha, accumulate);  \
        }                                                                                                             \
        for (; i0 < m; i0++) {                                                                                        \
            const float *xr0 = xd + i0 * ldd;                                                                         \
            V acc[4] = { VZERO(), VZERO(), VZERO(), VZERO() };                                                        \
            size_t st = 0;                                                                                            \
            for (; st + 2 <= steps; st += 2) {                                                                        \
                const T *w0 = wo + st * MV_PAIR, *w1 = w0 + MV_PAIR;                                                  \
                const float *xr = xr0 + st * MV_PAIR;                                                                 \
                V e0, d0, e1, d1;                                                                                     \
                PAIR(w0, e0, d0);                                                                                     \
                PAIR(w1, e1, d1);                                                                                     \
                acc[0] = VFMA(VLOAD(xr), e0, acc[0]);                                                                 \
                acc[1] = VFMA(VLOAD(xr + W), d0, acc[1]);                                                             \
                acc[2] = VFMA(VLOAD(xr + 2 * W), e1, acc[2]);                                                         \
                acc[3] = VFMA(VLOAD(xr + 3 * W), d1, acc[3]);                                                         \
            }                                                                                                         \
            int odd = st < steps;                                                                                     \
            if (odd) {                                                                                                \
                const T *w0 = wo + st * MV_PAIR;                                                                      \
                const float *xr = xr0 + st * MV_PAIR;                                                                 \
                V e0, d0;                                                                                             \
                PAIR(w0, e0, d0);                                                                                     \
                acc[0] = VFMA(VLOAD(xr), e0, acc[0]);                                                                 \
                acc[1] = VFMA(VLOAD(xr + W), d0, acc[1]);                                                             \
            }                                                                                                         \
            if (kt) {                                                                                                 \
                const float *xr = xr0 + kp;                                                                           \
                V e0, d0;                                                                                             \
                PAIR(tail, e0, d0);                                                                                   \
                if (odd) { acc[2] = VFMA(VLOAD(xr), e0, acc[2]); acc[3] = VFMA(VLOAD(xr + W), d0, acc[3]); }          \
                else { acc[0] = VFMA(VLOAD(xr), e0, acc[0]); acc[1] = VFMA(VLOAD(xr + W), d0, acc[1]); }              \
            }                                                                                                         \
            mv_store(y + i0 * ldy + o, pair_finish(acc), alpha, accumulate);                                          \
        }                                                                                                             \
    }                                                                                                                 \
}

// xd: m rows in the paired layout at ldd (pair_input); y[i·ldy + o] = alpha · (x_i · w_o) (+ y when accumulate).
DEFINE_PAIRED_MATVEC(matvec_f32_paired, float, PAIR_F32)
DEFINE_PAIRED_MATVEC(matvec_bf16_paired, uint16_t, PAIR_BF16)
DEFINE_PAIRED_MATVEC(matvec_f16_paired, uint16_t, PAIR_F16)

static void matvec_paired(const float *xd, size_t ldd, size_t m, const void *w, int element, size_t ldw, size_t k,
                          size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    switch (element) {
    case PK_ELEMENT_BF16: matvec_bf16_paired(xd, ldd, m, (const uint16_t *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    case PK_ELEMENT_F16: matvec_f16_paired(xd, ldd, m, (const uint16_t *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    default: matvec_f32_paired(xd, ldd, m, (const float *)w, ldw, k, o0, o1, y, ldy, alpha, accumulate); break;
    }
}

// y[i·ldy + o] = alpha · (x_i · w_o) (+ y when accumulate) for i < m, o0 ≤ o < o1; w (O, K) at ldw in `element` type.
static void matvec(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                   size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    size_t ldd;
    const float *xd = pair_input(x, ldx, m, k, &ldd);
    if (xd) matvec_paired(xd, ldd, m, w, element, ldw, k, o0, o1, y, ldy, alpha, accumulate);
}

// Per row i: the largest x_i · w_o over o0 ≤ o < o1 (the lowest o among equals) into best_value[i], best_index[i],
// and the first o whose product is not finite into first_nonfinite[i] (-1 if none). The products are matvec's,
// computed a block of outputs at a time into a small buffer: the (O) logits are never written out.
#define MV_ARGMAX_BLOCK 64
static void matvec_argmax(const float *x, size_t ldx, size_t m, const void *w, int element, size_t ldw, size_t k,
                          size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite) {
    float block[PK_MATVEC_MAX_ROWS * MV_ARGMAX_BLOCK];
    for (size_t i = 0; i < m; i++) { best_value[i] = -INFINITY; best_index[i] = -1; first_nonfinite[i] = -1; }
    size_t ldd = 0;
    const float *xd = pair_input(x, ldx, m, k, &ldd);  // once, not per block
    if (!xd) return;
    for (size_t b0 = o0; b0 < o1; b0 += MV_ARGMAX_BLOCK) {
        size_t n = o1 - b0 < MV_ARGMAX_BLOCK ? o1 - b0 : MV_ARGMAX_BLOCK;
        for (size_t i0 = 0; i0 < m; i0 += PK_MATVEC_MAX_ROWS) {
            size_t mb = m - i0 < PK_MATVEC_MAX_ROWS ? m - i0 : PK_MATVEC_MAX_ROWS;
            const char *wb = (const char *)w + b0 * ldw * (element == PK_ELEMENT_F32 ? 4 : 2);
            matvec_paired(xd + i0 * ldd, ldd, mb, wb, element, ldw, k, 0, n, block, n, 1.0f, 0);
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

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

#ifndef MV_G
#define MV_G 4          // input rows per tile (MV_G × 2 outputs × 2 accumulators must fit the register file)
#endif

static inline void mv_store(float *y, float v, float alpha, int accumulate) {
    *y = accumulate ? alpha * v + *y : alpha * v;
}

// The order: x and w go in blocks of 2W; each block splits into its even- and odd-indexed elements (for bf16 a
// shift and a mask of one load, no shuffle: that is what makes it fast; f32 and f16 permute to the same split so
// that every type sums alike). Every block, the last partial one zero-padded, adds into the accumulators (even,
// odd); then one horizontal sum of even + odd. x is laid out to match once per call (per block its even
// elements, then its odd ones, zeros past k).
// The tiles: up to MV_G rows × 2 outputs at a time, so that each weight vector loaded serves MV_G rows and each
// input vector 2 outputs (the verification pass's cost is FMAs and loads, not memory).
#define MV_PAIR (2 * W)
#ifndef MV_PREFETCH_ROWS
#define MV_PREFETCH_ROWS 4   // two rows read side by side defeat the hardware prefetcher: ask for the rows ahead
#endif

static _Thread_local float *pair_scratch;
static _Thread_local size_t pair_scratch_count;

/// The length of a row of x in the paired layout: k rounded up to 2W.
static size_t pair_stride(size_t k) { return (k + MV_PAIR - 1) / MV_PAIR * MV_PAIR; }

/// x (m, k) at ldx into d (m, pair_stride(k)) in the paired layout.
static void pair_layout(const float *x, size_t ldx, size_t m, size_t k, float *d) {
    size_t ldd = pair_stride(k);
    for (size_t i = 0; i < m; i++) {
        const float *xr = x + i * ldx;
        float *di = d + i * ldd;
        size_t b = 0;
        for (; b + MV_PAIR <= k; b += MV_PAIR)
            for (size_t j = 0; j < W; j++) { di[b + j] = xr[b + 2 * j]; di[b + W + j] = xr[b + 2 * j + 1]; }
        for (; b < ldd; b += MV_PAIR)
            for (size_t j = 0; j < W; j++) {
                size_t e = b + 2 * j, o = e + 1;
                di[b + j] = e < k ? xr[e] : 0.0f;
                di[b + W + j] = o < k ? xr[o] : 0.0f;
            }
    }
}

/// x (m, k) at ldx in the paired layout, in the calling thread's buffer (grown when needed; valid until this thread
/// prepares again), or NULL when it cannot be allocated. Rows are pair_stride(k) apart.
static const float *matvec_prepare(const float *x, size_t ldx, size_t m, size_t k) {
    size_t ldd = pair_stride(k);
    if (pair_scratch_count < m * ldd) {
        free(pair_scratch);
        pair_scratch = malloc(m * ldd * sizeof(float));
        pair_scratch_count = pair_scratch ? m * ldd : 0;
        if (!pair_scratch) return NULL;
    }
    pair_layout(x, ldx, m, k, pair_scratch);
    return pair_scratch;
}

// One tile: rows i0…i0+G−1 of xd against outputs wo[0…NO−1] (NO ≤ 2), whole k; G and NO are constants where it
// is inlined, so the accumulators stay in registers. tail[n] holds output n's last partial block, zero-padded.
#define DEFINE_PAIRED_TILE(NAME, T, PAIR)                                                                             \
static inline __attribute__((always_inline)) void NAME(const float *xd, size_t ldd, const int G, const int NO,        \
        const T *const *wo, size_t ldw, const T (*tail)[MV_PAIR], size_t steps, int has_tail, float *y, size_t ldy,   \
        float alpha, int accumulate) {                                                                                \
    V acc[MV_G][2][2];                                                                                                \
    for (int i = 0; i < G; i++) for (int n = 0; n < NO; n++) { acc[i][n][0] = VZERO(); acc[i][n][1] = VZERO(); }     \
    for (size_t st = 0; st < steps; st++) {                                                                           \
        V e[2], d[2];                                                                                                 \
        for (int n = 0; n < NO; n++) {                                                                                \
            __builtin_prefetch(wo[n] + MV_PREFETCH_ROWS * ldw + st * MV_PAIR);                                        \
            PAIR(wo[n] + st * MV_PAIR, e[n], d[n]);                                                                   \
        }                                                                                                             \
        for (int i = 0; i < G; i++) {                                                                                 \
            const float *xr = xd + (size_t)i * ldd + st * MV_PAIR;                                                    \
            V xe = VLOAD(xr), xo = VLOAD(xr + W);                                                                     \
            for (int n = 0; n < NO; n++) {                                                                            \
                acc[i][n][0] = VFMA(xe, e[n], acc[i][n][0]);                                                          \
                acc[i][n][1] = VFMA(xo, d[n], acc[i][n][1]);                                                          \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    if (has_tail) {                                                                                                   \
        V e[2], d[2];                                                                                                 \
        for (int n = 0; n < NO; n++) PAIR(tail[n], e[n], d[n]);                                                       \
        for (int i = 0; i < G; i++) {                                                                                 \
            const float *xr = xd + (size_t)i * ldd + steps * MV_PAIR;                                                 \
            V xe = VLOAD(xr), xo = VLOAD(xr + W);                                                                     \
            for (int n = 0; n < NO; n++) {                                                                            \
                acc[i][n][0] = VFMA(xe, e[n], acc[i][n][0]);                                                          \
                acc[i][n][1] = VFMA(xo, d[n], acc[i][n][1]);                                                          \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    for (int i = 0; i < G; i++)                                                                                       \
        for (int n = 0; n < NO; n++)                                                                                  \
            mv_store(y + (size_t)i * ldy + n, VHSUM(VADD(acc[i][n][0], acc[i][n][1])), alpha, accumulate);            \
}

#define MV_TILE_CASE(TILE, g, no) case g: TILE(xd + i0 * ldd, ldd, g, no, wp, ldw, tails, steps, kt != 0, yo, ldy, alpha, accumulate); break;

#define MV_TILE_CASES2(TILE, no) MV_TILE_CASE(TILE, 1, no) MV_TILE_CASE(TILE, 2, no)
#define MV_TILE_CASES4(TILE, no) MV_TILE_CASES2(TILE, no) MV_TILE_CASE(TILE, 3, no) MV_TILE_CASE(TILE, 4, no)
#define MV_TILE_CASES5(TILE, no) MV_TILE_CASES4(TILE, no) MV_TILE_CASE(TILE, 5, no)
#define MV_TILE_CASES6(TILE, no) MV_TILE_CASES5(TILE, no) MV_TILE_CASE(TILE, 6, no)
#if MV_G == 2
#define MV_TILE_CASES MV_TILE_CASES2
#elif MV_G == 4
#define MV_TILE_CASES MV_TILE_CASES4
#elif MV_G == 5
#define MV_TILE_CASES MV_TILE_CASES5
#elif MV_G == 6
#define MV_TILE_CASES MV_TILE_CASES6
#else
#error "MV_G is 2, 4, 5 or 6"
#endif

#define DEFINE_PAIRED_MATVEC(NAME, T, PAIR)                                                                           \
DEFINE_PAIRED_TILE(NAME##_tile, T, PAIR)                                                                              \
static void NAME(const float *xd, size_t ldd, size_t m, const T *w, size_t ldw, size_t k,                             \
                 size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {                           \
    const size_t kp = k / MV_PAIR * MV_PAIR, kt = k - kp, steps = kp / MV_PAIR;                                       \
    T tails[2][MV_PAIR];                                                                                              \
    for (size_t o = o0; o < o1; o += 2) {                                                                             \
        const int no = o + 1 < o1 ? 2 : 1;                                                                            \
        const T *wp[2] = { w + o * ldw, w + (o + no - 1) * ldw };                                                     \
        if (kt) for (int n = 0; n < no; n++) for (size_t j = 0; j < MV_PAIR; j++) tails[n][j] = j < kt ? wp[n][kp + j] : 0;\
        float *yo = y + o;                                                                                            \
        for (size_t i0 = 0; i0 < m; ) {                                                                               \
            /* Row groups as even as the tile allows: 6 rows in tiles of 4 go 3 + 3, not 4 + 2. */                    \
            size_t left = m - i0, groups = (left + MV_G - 1) / MV_G, g = (left + groups - 1) / groups;                \
            if (no == 2) switch (g) { MV_TILE_CASES(NAME##_tile, 2) }                                                 \
            else switch (g) { MV_TILE_CASES(NAME##_tile, 1) }                                                         \
            i0 += g;                                                                                                  \
            yo += g * ldy;                                                                                            \
        }                                                                                                             \
    }                                                                                                                 \
}

// xd: m rows in the paired layout at ldd (matvec_prepare); y[i·ldy + o] = alpha · (x_i · w_o) (+ y when accumulate).
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

// y[i·ldy + o] = alpha · (x_i · w_o) (+ y when accumulate) for i < m, o0 ≤ o < o1; w (O, K) at ldw in `element` type;
// xd is x as matvec_prepare lays it out (once per product, however many threads share its outputs).
static void matvec_prepared(const float *xd, size_t m, const void *w, int element, size_t ldw, size_t k,
                            size_t o0, size_t o1, float *y, size_t ldy, float alpha, int accumulate) {
    matvec_paired(xd, pair_stride(k), m, w, element, ldw, k, o0, o1, y, ldy, alpha, accumulate);
}

// Per row i: the largest x_i · w_o over o0 ≤ o < o1 (the lowest o among equals) into best_value[i], best_index[i],
// and the first o whose product is not finite into first_nonfinite[i] (-1 if none). The products are matvec_prepared's,
// computed a block of outputs at a time into a small buffer: the (O) logits are never written out.
#define MV_ARGMAX_BLOCK 64
static void matvec_argmax_prepared(const float *xd, size_t m, const void *w, int element, size_t ldw, size_t k,
                                   size_t o0, size_t o1, float *best_value, int32_t *best_index, int32_t *first_nonfinite) {
    float block[PK_MATVEC_MAX_ROWS * MV_ARGMAX_BLOCK];
    const size_t ldd = pair_stride(k);
    for (size_t i = 0; i < m; i++) { best_value[i] = -INFINITY; best_index[i] = -1; first_nonfinite[i] = -1; }
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
    V inverse = VSET1((float)(1.0 / (double)VHSUM(vsum)));
    // The weighted sum, 4W dimensions at a time held in registers over every key (a sum kept in `out` made each key
    // wait for the previous key's store), even and odd keys in separate sums (two FMA chains), added at the end.
    for (size_t p0 = 0; p0 < d; p0 += 4 * W) {
        const size_t n = d - p0 < 4 * W ? d - p0 : 4 * W;
        V even[4] = { VZERO(), VZERO(), VZERO(), VZERO() }, odd[4] = { VZERO(), VZERO(), VZERO(), VZERO() };
        if (n == 4 * W) {
            size_t j = 0;
            for (; j + 2 <= s; j += 2) {
                const float *v0 = values + j * ld + p0, *v1 = v0 + ld;
                V s0 = VSET1(scores[j]), s1 = VSET1(scores[j + 1]);
                for (int c = 0; c < 4; c++) { even[c] = VFMA(s0, VLOAD(v0 + c * W), even[c]); odd[c] = VFMA(s1, VLOAD(v1 + c * W), odd[c]); }
            }
            if (j < s) {
                const float *v0 = values + j * ld + p0;
                V s0 = VSET1(scores[j]);
                for (int c = 0; c < 4; c++) even[c] = VFMA(s0, VLOAD(v0 + c * W), even[c]);
            }
            for (int c = 0; c < 4; c++) VSTORE(out + p0 + c * W, VMUL(VADD(even[c], odd[c]), inverse));
        } else {
            // The last, partial chunk: the same sums with padded loads.
            const int vectors = (int)((n + W - 1) / W);
            for (size_t j = 0; j < s; j++) {
                const float *vj = values + j * ld + p0;
                V sj = VSET1(scores[j]);
                for (int c = 0; c < vectors; c++) {
                    size_t left = n - (size_t)c * W;
                    V x = left >= W ? VLOAD(vj + c * W) : vload_tail(vj + c * W, left, 0.0f);
                    if (j % 2 == 0) even[c] = VFMA(sj, x, even[c]); else odd[c] = VFMA(sj, x, odd[c]);
                }
            }
            for (int c = 0; c < vectors; c++) {
                size_t left = n - (size_t)c * W;
                V r = VMUL(VADD(even[c], odd[c]), inverse);
                if (left >= W) VSTORE(out + p0 + c * W, r); else vstore_tail(out + p0 + c * W, r, left);
            }
        }
    }
}

// ---------------------------------------------------------------- a streaming read, for decoding's bound
// The sum of n floats read in order with full-width loads into four independent sums: the read rate the kernels'
// weight loads can reach (prune bench --decode's bound). A narrower read (one 64-bit word a load) measured 40 % less
// than this on a Xeon whose decoding then ran past its "bound". The caller fills the buffer with ordinary floats, so
// no add meets a denormal.
static float stream_read(const float *p, size_t n) {
    V a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        a0 = VADD(a0, VLOAD(p + i));
        a1 = VADD(a1, VLOAD(p + i + W));
        a2 = VADD(a2, VLOAD(p + i + 2 * W));
        a3 = VADD(a3, VLOAD(p + i + 3 * W));
    }
    float sum = VHSUM(VADD(VADD(a0, a1), VADD(a2, a3)));
    for (; i < n; i++) sum += p[i];
    return sum;
}

#define PK_DECODE_TABLE_ENTRIES .matvec_prepare = matvec_prepare, .matvec_prepared = matvec_prepared, \
    .matvec_argmax_prepared = matvec_argmax_prepared, .attention_query = attention_query, .stream_read = stream_read

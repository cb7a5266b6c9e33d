// The kernels on one lane, for any x86-64 (and the reference the vector variants are tested against).
#include "kernels.h"

typedef float V;
#define W 1
#define PK_ISA_NAME "scalar"
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) ((float)(x))
#define VZERO() 0.0f
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VFNMA(a, b, c) ((c) - (a) * (b))
#define VFLOOR(v) floorf(v)
#define VHSUM(v) (v)
#define VHMAX(v) (v)
typedef double VD;
#define VD_ZERO 0.0
#define VD_ADD(acc, v) ((acc) += (double)(v))
#define VD_SUM(acc) (acc)
static inline float VPOW2(float fx) {
    union { uint32_t u; float f; } e = { .u = (uint32_t)((int32_t)fx + 127) << 23 };
    return e.f;
}

// IEEE half <-> single without F16C (round to nearest even, subnormals, inf and NaN kept).
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {  // subnormal: normalise
        int e = -1;
        do { e++; mant <<= 1; } while ((mant & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    union { uint32_t u; float f; } r = { .u = bits };
    return r.f;
}

static uint16_t float_to_half(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    uint32_t u = v.u, sign = (u >> 16) & 0x8000u, abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);                    // NaN
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                   // overflow → inf
    if (abs < 0x38800000u) {                                                     // subnormal or zero
        if (abs < 0x33000000u) return (uint16_t)sign;
        uint32_t e = abs >> 23, mant = (abs & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t half = mant >> shift, rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

#define F16_TO_F32(src, dst, n) for (size_t i_ = 0; i_ < (n); i_++) (dst)[i_] = half_to_float((src)[i_])
#define F32_TO_F16(src, dst, n) for (size_t i_ = 0; i_ < (n); i_++) (dst)[i_] = float_to_half((src)[i_])

#include "kernels_body.h"
static inline float bf16_lane(const uint16_t *p) {
    union { uint32_t u; float f; } e = { .u = (uint32_t)*p << 16 };
    return e.f;
}
#define PAIR_F32(p, e, o) do { (e) = (p)[0]; (o) = (p)[1]; } while (0)
#define PAIR_BF16(p, e, o) do { (e) = bf16_lane(p); (o) = bf16_lane((p) + 1); } while (0)
#define PAIR_F16(p, e, o) do { (e) = half_to_float((p)[0]); (o) = half_to_float((p)[1]); } while (0)
#include "kernels_decode.h"

const pk_kernel_table pk_kernels_scalar = { PK_TABLE_ENTRIES, PK_DECODE_TABLE_ENTRIES };

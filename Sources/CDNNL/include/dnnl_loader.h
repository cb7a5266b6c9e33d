// oneDNN's bf16 matrix multiply, loaded at run time (dlopen of libdnnl.so.2) so that the package builds and runs
// where oneDNN is absent. Built against oneDNN's headers when they are present at build time (Debian's
// libdnnl-dev); without them every call reports that bf16 compute was not built in.
#ifndef PK_DNNL_LOADER_H
#define PK_DNNL_LOADER_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int loaded;
    char error[512];
    char library[512];
    char version[32];
    /// The instruction set oneDNN runs on this CPU ("avx512_core_amx", "avx512_core_bf16", ...).
    char isa[48];
} pk_dnnl_info;

/// Loads oneDNN once (thread-safe); `loaded` or `error` says how it went.
const pk_dnnl_info *pk_dnnl_load(void);

/// One matrix multiply shape: dst (m, n) f32 = src (m, k) bf16 · B (k, n) bf16, plus dst when `accumulate`, with
/// Float32 accumulation; B held in the layout this primitive prefers ("packed", reordered once).
typedef struct pk_bf16_gemm pk_bf16_gemm;

/// A primitive for this shape (kept for the life of the process), or NULL with the reason in `error`.
pk_bf16_gemm *pk_bf16_gemm_create(int64_t m, int64_t k, int64_t n, int accumulate, char *error, size_t error_size);
/// Bytes of B in the packed layout.
size_t pk_bf16_gemm_packed_size(const pk_bf16_gemm *gemm);
/// Whether two primitives take B in the same packed layout (then one packed copy serves both).
int pk_bf16_gemm_same_layout(const pk_bf16_gemm *a, const pk_bf16_gemm *b);
/// Packs B, whose element (i, j) (i < k, j < n) lies at b + i·stride_k + j·stride_n, elements Float32
/// (b_is_bf16 = 0, rounded to nearest even) or bf16 (copied), into `packed` (packed_size bytes). 0 on success.
int pk_bf16_gemm_pack(const pk_bf16_gemm *gemm, const void *b, int b_is_bf16, int64_t stride_k, int64_t stride_n,
                      void *packed, int threads);
/// Runs the product on `threads` threads (src rows contiguous, k apart; dst rows n apart). 0 on success.
int pk_bf16_gemm_run(const pk_bf16_gemm *gemm, const uint16_t *src, const void *packed, float *dst, int threads);

#endif

// OpenBLAS, loaded at run time rather than linked: OpenBLAS picks its kernels (OPENBLAS_CORETYPE or its own
// CPU detection) in its load-time constructor, so loading it ourselves is the one way a process can give it
// the right core on a CPU its build does not know, without re-executing itself.
#ifndef PRUNE_BLAS_LOADER_H
#define PRUNE_BLAS_LOADER_H

typedef struct {
    int loaded;             ///< 1 when cblas_sgemm and cblas_dgemm are usable
    char library[256];      ///< the file that was loaded
    char corename[64];      ///< openblas_get_corename(): the kernel set OpenBLAS runs
    char config[256];       ///< openblas_get_config()
    char coretype_set[64];  ///< the OPENBLAS_CORETYPE we set for the load ("" when we set none)
    char error[512];        ///< why loading failed
} pk_blas_info;

/// Loads OpenBLAS once (later calls return the first result). When `coretype` is non-NULL and the
/// environment has no OPENBLAS_CORETYPE, it is set to `coretype` for the load and removed afterwards
/// (children of this process do not inherit it). OpenBLAS then runs single-threaded: we split products
/// over our own threads.
const pk_blas_info *pk_blas_load(const char *coretype);

/// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major (cblas_sgemm). pk_blas_load must have succeeded.
void pk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

/// The same in Float64 (cblas_dgemm): least squares accumulate their normal equations with it.
void pk_dgemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
              const double *b, int ldb, double beta, double *c, int ldc);

#endif

#define _GNU_SOURCE
#include "blas_loader.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// cblas.h's values, so that no OpenBLAS header is needed at build time.
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double, double *, int);

static pk_blas_info info;
static sgemm_fn sgemm;
static dgemm_fn dgemm;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

const pk_blas_info *pk_blas_load(const char *coretype) {
    pthread_mutex_lock(&load_lock);
    if (info.loaded || info.error[0]) { pthread_mutex_unlock(&load_lock); return &info; }
    int set_env = coretype && *coretype && !getenv("OPENBLAS_CORETYPE");
    if (set_env) { setenv("OPENBLAS_CORETYPE", coretype, 1); copy(info.coretype_set, sizeof info.coretype_set, coretype); }
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", NULL};
    void *handle = NULL;
    const char *last_error = "";
    for (int i = 0; names[i] && !handle; i++) {
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle) last_error = dlerror();
    }
    if (set_env) unsetenv("OPENBLAS_CORETYPE");
    if (!handle) {
        snprintf(info.error, sizeof info.error, "OpenBLAS could not be loaded (install libopenblas0 or libopenblas-dev): %s", last_error);
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    dgemm = (dgemm_fn)dlsym(handle, "cblas_dgemm");
    void (*set_threads)(int) = (void (*)(int))dlsym(handle, "openblas_set_num_threads");
    char *(*corename)(void) = (char *(*)(void))dlsym(handle, "openblas_get_corename");
    char *(*config)(void) = (char *(*)(void))dlsym(handle, "openblas_get_config");
    if (!sgemm || !dgemm) {
        snprintf(info.error, sizeof info.error, "the loaded BLAS has no %s", sgemm ? "cblas_dgemm" : "cblas_sgemm");
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    if (set_threads) set_threads(1);
    copy(info.corename, sizeof info.corename, corename ? corename() : "unknown");
    copy(info.config, sizeof info.config, config ? config() : "");
    Dl_info where;
    copy(info.library, sizeof info.library, dladdr((void *)sgemm, &where) && where.dli_fname ? where.dli_fname : "libopenblas.so.0");
    info.loaded = 1;
    pthread_mutex_unlock(&load_lock);
    return &info;
}

void pk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
    sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void pk_dgemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
              const double *b, int ldb, double beta, double *c, int ldc) {
    dgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

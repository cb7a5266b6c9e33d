#define _GNU_SOURCE
#include "dnnl_loader.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pk_dnnl_info info;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>

// The entry points we call, resolved from the loaded library (their types from the header).
#define PK_DNNL_FUNCTIONS(X)                                                                                      \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_wait) X(dnnl_memory_desc_init_by_strides)          \
    X(dnnl_memory_desc_init_by_tag) X(dnnl_memory_desc_get_size) X(dnnl_memory_desc_equal) X(dnnl_matmul_desc_init) \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_desc_query_md)                  \
    X(dnnl_primitive_create) X(dnnl_primitive_destroy) X(dnnl_primitive_execute)  \
    X(dnnl_memory_create) X(dnnl_memory_destroy)                                                                 \
    X(dnnl_reorder_primitive_desc_create) X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy)           \
    X(dnnl_primitive_attr_set_post_ops) X(dnnl_post_ops_create) X(dnnl_post_ops_destroy)                          \
    X(dnnl_post_ops_append_sum) X(dnnl_get_effective_cpu_isa) X(dnnl_version)

#define PK_DECLARE(name) static __typeof__(&name) p_##name;
PK_DNNL_FUNCTIONS(PK_DECLARE)
static void (*p_omp_set_num_threads)(int);
static dnnl_engine_t engine;
static dnnl_stream_t stream;
// oneDNN primitives may run from any thread, but one stream serves them all: one product at a time.
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch ((int)isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "other";
    }
}

const pk_dnnl_info *pk_dnnl_load(void) {
    pthread_mutex_lock(&load_lock);
    if (info.loaded || info.error[0]) { pthread_mutex_unlock(&load_lock); return &info; }
    // oneDNN's OpenMP threads would otherwise spin for a while after each product, taking the cores our own
    // parallel loops run on next; a user's own setting is kept.
    if (!getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "passive", 1);
    static const char *names[] = {"libdnnl.so.2", "libdnnl.so", NULL};
    void *handle = NULL;
    const char *last_error = "";
    for (int i = 0; names[i] && !handle; i++) {
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle) last_error = dlerror();
    }
    if (!handle) {
        snprintf(info.error, sizeof info.error, "oneDNN could not be loaded (install libdnnl2 or libdnnl-dev): %s", last_error);
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    const char *missing = NULL;
#define PK_RESOLVE(name) if (!(p_##name = (__typeof__(&name))dlsym(handle, #name)) && !missing) missing = #name;
    PK_DNNL_FUNCTIONS(PK_RESOLVE)
    p_omp_set_num_threads = (void (*)(int))dlsym(handle, "omp_set_num_threads");
    if (missing) {
        snprintf(info.error, sizeof info.error, "the loaded oneDNN has no %s (oneDNN 2.x is needed)", missing);
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success
        || p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(info.error, sizeof info.error, "oneDNN could not create its CPU engine");
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    const dnnl_version_t *v = p_dnnl_version();
    snprintf(info.version, sizeof info.version, "%d.%d.%d", v->major, v->minor, v->patch);
    snprintf(info.isa, sizeof info.isa, "%s", isa_name(p_dnnl_get_effective_cpu_isa()));
    Dl_info where;
    snprintf(info.library, sizeof info.library, "%s",
             dladdr((void *)p_dnnl_version, &where) && where.dli_fname ? where.dli_fname : "libdnnl.so.2");
    info.loaded = 1;
    pthread_mutex_unlock(&load_lock);
    return &info;
}

struct pk_bf16_gemm {
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t src, weights, dst;
    int64_t k, n;
};

static void set_error(char *error, size_t size, const char *what, dnnl_status_t status) {
    if (error && size) snprintf(error, size, "oneDNN %s failed (status %d)", what, (int)status);
}

pk_bf16_gemm *pk_bf16_gemm_create(int64_t m, int64_t k, int64_t n, int accumulate, char *error, size_t error_size) {
    if (!pk_dnnl_load()->loaded) { if (error && error_size) snprintf(error, error_size, "%s", info.error); return NULL; }
    pk_bf16_gemm *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->k = k; g->n = n;
    dnnl_dims_t src_dims = {m, k}, src_strides = {k, 1};
    dnnl_dims_t w_dims = {k, n};
    dnnl_dims_t dst_dims = {m, n}, dst_strides = {n, 1};
    dnnl_status_t s;
    dnnl_memory_desc_t wanted_weights;
    if ((s = p_dnnl_memory_desc_init_by_strides(&g->src, 2, src_dims, dnnl_bf16, src_strides))
        || (s = p_dnnl_memory_desc_init_by_tag(&wanted_weights, 2, w_dims, dnnl_bf16, dnnl_format_tag_any))
        || (s = p_dnnl_memory_desc_init_by_strides(&g->dst, 2, dst_dims, dnnl_f32, dst_strides))) {
        set_error(error, error_size, "memory descriptor", s); free(g); return NULL;
    }
    dnnl_matmul_desc_t desc;
    if ((s = p_dnnl_matmul_desc_init(&desc, &g->src, &wanted_weights, NULL, &g->dst))) {
        set_error(error, error_size, "matmul descriptor", s); free(g); return NULL;
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    if (accumulate) {
        p_dnnl_primitive_attr_create(&attr);
        p_dnnl_post_ops_create(&ops);
        p_dnnl_post_ops_append_sum(ops, 1.0f);
        p_dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_primitive_desc_t pd;
    s = p_dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    if (ops) p_dnnl_post_ops_destroy(ops);
    if (attr) p_dnnl_primitive_attr_destroy(attr);
    if (s) { set_error(error, error_size, "matmul primitive descriptor", s); free(g); return NULL; }
    g->weights = *p_dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    s = p_dnnl_primitive_create(&g->primitive, pd);
    p_dnnl_primitive_desc_destroy(pd);
    if (s) { set_error(error, error_size, "matmul primitive", s); free(g); return NULL; }
    return g;
}

size_t pk_bf16_gemm_packed_size(const pk_bf16_gemm *g) { return p_dnnl_memory_desc_get_size(&g->weights); }

int pk_bf16_gemm_same_layout(const pk_bf16_gemm *a, const pk_bf16_gemm *b) {
    return p_dnnl_memory_desc_equal(&a->weights, &b->weights);
}

static void use_threads(int threads) {
    if (p_omp_set_num_threads) p_omp_set_num_threads(threads < 1 ? 1 : threads);
}

int pk_bf16_gemm_pack(const pk_bf16_gemm *g, const void *b, int b_is_bf16, int64_t stride_k, int64_t stride_n,
                      void *packed, int threads) {
    dnnl_dims_t dims = {g->k, g->n}, strides = {stride_k, stride_n};
    dnnl_memory_desc_t plain;
    dnnl_status_t s;
    if ((s = p_dnnl_memory_desc_init_by_strides(&plain, 2, dims, b_is_bf16 ? dnnl_bf16 : dnnl_f32, strides))) return (int)s;
    dnnl_primitive_desc_t pd;
    if ((s = p_dnnl_reorder_primitive_desc_create(&pd, &plain, engine, &g->weights, engine, NULL))) return (int)s;
    dnnl_primitive_t reorder;
    s = p_dnnl_primitive_create(&reorder, pd);
    p_dnnl_primitive_desc_destroy(pd);
    if (s) return (int)s;
    dnnl_memory_t from = NULL, to = NULL;
    if (!(s = p_dnnl_memory_create(&from, &plain, engine, (void *)b))
        && !(s = p_dnnl_memory_create(&to, &g->weights, engine, packed))) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        pthread_mutex_lock(&run_lock);
        use_threads(threads);
        s = p_dnnl_primitive_execute(reorder, stream, 2, args);
        if (!s) s = p_dnnl_stream_wait(stream);
        pthread_mutex_unlock(&run_lock);
    }
    if (from) p_dnnl_memory_destroy(from);
    if (to) p_dnnl_memory_destroy(to);
    p_dnnl_primitive_destroy(reorder);
    return (int)s;
}

int pk_bf16_gemm_run(const pk_bf16_gemm *g, const uint16_t *src, const void *packed, float *dst, int threads) {
    dnnl_memory_t a = NULL, w = NULL, c = NULL;
    dnnl_status_t s;
    if (!(s = p_dnnl_memory_create(&a, &g->src, engine, (void *)src))
        && !(s = p_dnnl_memory_create(&w, &g->weights, engine, (void *)packed))
        && !(s = p_dnnl_memory_create(&c, &g->dst, engine, dst))) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}};
        pthread_mutex_lock(&run_lock);
        use_threads(threads);
        s = p_dnnl_primitive_execute(g->primitive, stream, 3, args);
        if (!s) s = p_dnnl_stream_wait(stream);
        pthread_mutex_unlock(&run_lock);
    }
    if (a) p_dnnl_memory_destroy(a);
    if (w) p_dnnl_memory_destroy(w);
    if (c) p_dnnl_memory_destroy(c);
    return (int)s;
}

#else  // built without oneDNN's headers

const pk_dnnl_info *pk_dnnl_load(void) {
    pthread_mutex_lock(&load_lock);
    snprintf(info.error, sizeof info.error,
             "this build has no bf16 compute: oneDNN's headers were absent when it was built (apt-get install libdnnl-dev, then rebuild)");
    pthread_mutex_unlock(&load_lock);
    return &info;
}
pk_bf16_gemm *pk_bf16_gemm_create(int64_t m, int64_t k, int64_t n, int accumulate, char *error, size_t error_size) {
    (void)m; (void)k; (void)n; (void)accumulate;
    if (error && error_size) snprintf(error, error_size, "%s", pk_dnnl_load()->error);
    return NULL;
}
size_t pk_bf16_gemm_packed_size(const pk_bf16_gemm *g) { (void)g; return 0; }
int pk_bf16_gemm_same_layout(const pk_bf16_gemm *a, const pk_bf16_gemm *b) { (void)a; (void)b; return 0; }
int pk_bf16_gemm_pack(const pk_bf16_gemm *g, const void *b, int b_is_bf16, int64_t stride_k, int64_t stride_n, void *packed, int threads) {
    (void)g; (void)b; (void)b_is_bf16; (void)stride_k; (void)stride_n; (void)packed; (void)threads; return -1;
}
int pk_bf16_gemm_run(const pk_bf16_gemm *g, const uint16_t *src, const void *packed, float *dst, int threads) {
    (void)g; (void)src; (void)packed; (void)dst; (void)threads; return -1;
}
#endif

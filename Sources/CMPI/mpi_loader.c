#define _GNU_SOURCE
#include "mpi_loader.h"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// OpenMPI's values and handle types, so that no MPI header is needed at build time.
typedef void *handle_t;                        // MPI_Comm, MPI_Datatype, MPI_Op: pointers to predefined objects
#define IN_PLACE ((void *)1)                   // MPI_IN_PLACE
enum { THREAD_FUNNELED = 1, MAX_LIBRARY_VERSION = 256 };

static int (*init_thread)(int *, char ***, int, int *);
static int (*comm_rank)(handle_t, int *);
static int (*comm_size)(handle_t, int *);
static int (*allreduce)(const void *, void *, int, handle_t, handle_t, handle_t);
static int (*bcast)(void *, int, handle_t, int, handle_t);
static int (*barrier)(handle_t);
static int (*abort_)(handle_t, int);
static int (*finalize)(void);
static double (*wtime)(void);
static int (*library_version)(char *, int *);
static handle_t comm_world, type_float, type_double, type_int64, type_byte, op_sum, op_max;

static pk_mpi_info info;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

const pk_mpi_info *pk_mpi_load(void) {
    pthread_mutex_lock(&load_lock);
    if (info.loaded || info.error[0]) { pthread_mutex_unlock(&load_lock); return &info; }
    static const char *names[] = {"libmpi.so.40", "libmpi.so", NULL};
    void *h = NULL;
    const char *last_error = "";
    // RTLD_GLOBAL: OpenMPI's own plugins (mca_*.so) resolve libmpi's symbols from the global scope.
    for (int i = 0; names[i] && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
        if (!h) last_error = dlerror();
    }
    if (!h) {
        snprintf(info.error, sizeof info.error, "OpenMPI could not be loaded (install openmpi-bin libopenmpi3): %s", last_error);
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    const char *missing = NULL;
#define SYM(var, name) do { *(void **)&var = dlsym(h, name); if (!var && !missing) missing = name; } while (0)
    SYM(init_thread, "MPI_Init_thread"); SYM(comm_rank, "MPI_Comm_rank"); SYM(comm_size, "MPI_Comm_size");
    SYM(allreduce, "MPI_Allreduce"); SYM(bcast, "MPI_Bcast"); SYM(barrier, "MPI_Barrier"); SYM(abort_, "MPI_Abort");
    SYM(finalize, "MPI_Finalize"); SYM(wtime, "MPI_Wtime"); SYM(library_version, "MPI_Get_library_version");
    SYM(comm_world, "ompi_mpi_comm_world"); SYM(type_float, "ompi_mpi_float"); SYM(type_double, "ompi_mpi_double");
    SYM(type_int64, "ompi_mpi_long_long_int"); SYM(type_byte, "ompi_mpi_byte");
    SYM(op_sum, "ompi_mpi_op_sum"); SYM(op_max, "ompi_mpi_op_max");
#undef SYM
    Dl_info where;
    snprintf(info.library, sizeof info.library, "%s",
             init_thread && dladdr((void *)init_thread, &where) && where.dli_fname ? where.dli_fname : "libmpi.so.40");
    if (missing) {
        snprintf(info.error, sizeof info.error, "%s has no %s (only OpenMPI is supported)", info.library, missing);
        pthread_mutex_unlock(&load_lock);
        return &info;
    }
    char version[4096] = "";   // MPI_MAX_LIBRARY_VERSION_STRING is 256 in OpenMPI; room to spare
    int length = 0;
    if (library_version(version, &length) == 0) {
        version[sizeof version - 1] = 0;
        char *newline = strchr(version, '\n');
        if (newline) *newline = 0;
        snprintf(info.version, sizeof info.version, "%s", version);
    }
    info.loaded = 1;
    pthread_mutex_unlock(&load_lock);
    return &info;
}

int pk_mpi_init(int *rank, int *size) {
    int provided = 0;
    int rc = init_thread(NULL, NULL, THREAD_FUNNELED, &provided);
    if (rc) return rc;
    if ((rc = comm_rank(comm_world, rank))) return rc;
    return comm_size(comm_world, size);
}

static int reduce(void *buffer, size_t count, size_t width, handle_t type, handle_t op) {
    char *p = buffer;
    while (count > 0) {
        int n = count > INT_MAX ? INT_MAX : (int)count;
        int rc = allreduce(IN_PLACE, p, n, type, op, comm_world);
        if (rc) return rc;
        p += (size_t)n * width;
        count -= (size_t)n;
    }
    return 0;
}

int pk_mpi_allreduce_sum_float(float *b, size_t n) { return reduce(b, n, sizeof *b, type_float, op_sum); }
int pk_mpi_allreduce_sum_double(double *b, size_t n) { return reduce(b, n, sizeof *b, type_double, op_sum); }
int pk_mpi_allreduce_sum_int64(long long *b, size_t n) { return reduce(b, n, sizeof *b, type_int64, op_sum); }
int pk_mpi_allreduce_max_double(double *b, size_t n) { return reduce(b, n, sizeof *b, type_double, op_max); }

int pk_mpi_broadcast(void *buffer, size_t bytes, int root) {
    char *p = buffer;
    while (bytes > 0) {
        int n = bytes > INT_MAX ? INT_MAX : (int)bytes;
        int rc = bcast(p, n, type_byte, root, comm_world);
        if (rc) return rc;
        p += n;
        bytes -= (size_t)n;
    }
    return 0;
}

int pk_mpi_barrier(void) { return barrier(comm_world); }
void pk_mpi_abort(int code) { abort_(comm_world, code); }
int pk_mpi_finalize(void) { return finalize(); }
double pk_mpi_wtime(void) { return wtime(); }

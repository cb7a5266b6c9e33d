// MPI, loaded at run time rather than linked: the package builds and runs without any MPI installed, and
// uses OpenMPI's libmpi (Debian's libopenmpi3) when a job runs under mpirun. Only OpenMPI's ABI is known
// here (its handles are the addresses of exported predefined objects: ompi_mpi_comm_world, ompi_mpi_float, …).
#ifndef PRUNE_MPI_LOADER_H
#define PRUNE_MPI_LOADER_H

#include <stddef.h>

typedef struct {
    int loaded;            ///< 1 when every function and handle below was found
    char library[256];     ///< the file that was loaded
    char version[256];     ///< MPI_Get_library_version's first line
    char error[512];       ///< why loading failed
} pk_mpi_info;

/// Loads libmpi once (later calls return the first result). Does not initialise MPI.
const pk_mpi_info *pk_mpi_load(void);

/// MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that initialised calls MPI) on MPI_COMM_WORLD;
/// returns MPI's error code (0 = success).
int pk_mpi_init(int *rank, int *size);

/// In-place sums over every rank (MPI_IN_PLACE, MPI_SUM); counts above INT_MAX go in pieces. 0 = success.
int pk_mpi_allreduce_sum_float(float *buffer, size_t count);
int pk_mpi_allreduce_sum_double(double *buffer, size_t count);
int pk_mpi_allreduce_sum_int64(long long *buffer, size_t count);
/// In-place maximum over every rank.
int pk_mpi_allreduce_max_double(double *buffer, size_t count);

/// Copies `bytes` bytes from `root`'s buffer into every rank's.
int pk_mpi_broadcast(void *buffer, size_t bytes, int root);

int pk_mpi_barrier(void);

/// MPI_Abort on MPI_COMM_WORLD: ends every rank of the job with `code`.
void pk_mpi_abort(int code);

int pk_mpi_finalize(void);

/// MPI_Wtime.
double pk_mpi_wtime(void);

#endif

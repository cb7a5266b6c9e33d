#include <hdf5.h>

// Swift cannot import these C macros; the accessors return them (valid after H5open()).
static inline hid_t prune_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t prune_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t prune_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t prune_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t prune_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t prune_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t prune_h5s_all(void) { return H5S_ALL; }
static inline size_t prune_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned prune_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned prune_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }

// Accessors used by ModelIO's HDF5File.swift: explicit little-endian file types (so files are the same on
// every host), the link-creation property class (intermediate groups) and the default error stack.
static inline hid_t prune_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t prune_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t prune_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t prune_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t prune_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t prune_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned prune_h5f_obj_all(void) { return H5F_OBJ_ALL; }

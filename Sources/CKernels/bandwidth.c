// A streaming read of a buffer, for the memory-bandwidth bound decoding is measured against (prune bench
// --decode): every 64-bit word is loaded once and folded in, so the compiler can neither skip nor cache it.
#include "kernels.h"

uint64_t pk_stream_read(const uint64_t *p, size_t words) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t i = 0;
    for (; i + 8 <= words; i += 8) {
        a0 ^= p[i]; a1 ^= p[i + 1]; a2 ^= p[i + 2]; a3 ^= p[i + 3];
        a4 ^= p[i + 4]; a5 ^= p[i + 5]; a6 ^= p[i + 6]; a7 ^= p[i + 7];
    }
    for (; i < words; i++) a0 ^= p[i];
    return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

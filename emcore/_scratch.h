/* Carving one thread's scratch memory into parts (see _tile.pxd).
 *
 * emc_take is declared malloc-like and kept out of line: the compiler then knows
 * that each part it returns overlaps no other object the kernel reads or writes
 * (the other parts, the caller's arrays), as it would for separate malloc()
 * calls, and vectorises loops over the parts without run-time overlap checks.
 * That is true of the parts: they never overlap and hold no pointers. The block
 * they come from is never accessed other than through them. */
#ifndef EMCORE_SCRATCH_H
#define EMCORE_SCRATCH_H
#include <stddef.h>

#define EMC_CACHE_LINE 64  /* every part starts on its own cache line */

#if defined(__GNUC__) || defined(__clang__)
#define EMC_MALLOC_LIKE __attribute__((malloc, noinline, unused))
#elif defined(_MSC_VER)
#define EMC_MALLOC_LIKE __declspec(restrict) __declspec(noinline)
#else
#define EMC_MALLOC_LIKE
#endif

static inline ptrdiff_t emc_padded(ptrdiff_t n_bytes) {
    return (n_bytes + EMC_CACHE_LINE - 1) / EMC_CACHE_LINE * EMC_CACHE_LINE;
}

/* The next n_bytes of a thread's scratch; moves *cursor past them. */
static EMC_MALLOC_LIKE void *emc_take(char **cursor, ptrdiff_t n_bytes) {
    char *part = *cursor;
    *cursor = part + emc_padded(n_bytes);
    return part;
}
#endif

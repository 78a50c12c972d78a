// Counts heap allocations for the benchmarks: the executable's own malloc, calloc and realloc
// take precedence over glibc's for every library in the process, count, and hand over to glibc's
// internal entry points. free needs no wrapper: the memory still comes from glibc.
#include "CAllocationCounter.h"
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);

static atomic_uint_fast64_t allocations;

void *malloc(size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_realloc(pointer, size);
}

uint64_t tunnel_allocation_count(void) {
    return atomic_load_explicit(&allocations, memory_order_relaxed);
}

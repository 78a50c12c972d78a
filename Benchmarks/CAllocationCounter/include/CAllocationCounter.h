#ifndef TUNNEL_ALLOCATION_COUNTER_H
#define TUNNEL_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc) made by the whole process so far.
uint64_t tunnel_allocation_count(void);

#endif

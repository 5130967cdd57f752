#include "backends/posix/heap.h"

// Any C library header defines __GLIBC__ when the library is glibc.
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace acceptpool {

void ReturnFreedHeapMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace acceptpool

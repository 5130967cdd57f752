// The C allocator's freed memory, handed back to the OS.
#ifndef ACCEPTPOOL_BACKENDS_POSIX_HEAP_H_
#define ACCEPTPOOL_BACKENDS_POSIX_HEAP_H_

namespace acceptpool {

// glibc keeps freed heap memory mapped for reuse and returns only the top of
// each heap by itself, so after a burst a process keeps most of its peak even
// once every buffer is freed. malloc_trim(0) gives every whole free page of
// every arena back. Elsewhere (musl, the BSDs' jemalloc) the allocator
// returns memory itself and this does nothing.
void ReturnFreedHeapMemory();

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_POSIX_HEAP_H_

/* The replaceable host allocator. */
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE */
#include <stddef.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "internal.h"

/*
 * Large buffers (element data of fresh tensors) are aligned to 2 MiB and
 * advised for transparent huge pages, where Linux offers them (THP in
 * "madvise" or "always" mode; the advice is ignored otherwise), so that
 * filling a fresh 64 MiB result takes 32 page faults instead of 16k. NumPy
 * asks the same for its large arrays. A user's allocator is never advised.
 */
#define TB_HUGE_PAGE ((size_t)2 << 20)
#define TB_HUGE_THRESHOLD ((size_t)4 << 20)

static void *tb_alloc_huge(size_t size) {
  size_t rounded = (size + TB_HUGE_PAGE - 1) & ~(TB_HUGE_PAGE - 1);
  if (rounded < size) return NULL;
  void *p = aligned_alloc(TB_HUGE_PAGE, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p != NULL) (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
  return p;
}

static void *tb_default_alloc(void *user_data, size_t size, size_t alignment) {
  (void)user_data;
  /* malloc already aligns to max_align_t and is faster than glibc's aligned
   * path: headers and records take it; element data (64) does not. */
  if (alignment <= _Alignof(max_align_t)) return malloc(size == 0 ? 1 : size);
  if (size >= TB_HUGE_THRESHOLD && alignment <= TB_HUGE_PAGE) return tb_alloc_huge(size);
  /* aligned_alloc wants a size that is a multiple of the alignment. */
  size_t rounded = (size + alignment - 1) & ~(alignment - 1);
  if (rounded < size) return NULL;
  return aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
}

static void tb_default_free(void *user_data, void *ptr, size_t size) {
  (void)user_data;
  (void)size;
  free(ptr);
}

static const tb_allocator tb_default_allocator = {tb_default_alloc, tb_default_free, NULL};

/*
 * The current allocator, read on every allocation and set rarely: a
 * sequence lock. Readers take no lock: they load the sequence, the three
 * fields and the sequence again, and retry if a writer was in between (odd
 * sequence, or a changed one). Writers serialise on a spin lock and make the
 * sequence odd while they store. The fields are atomics, so a reader racing
 * a writer reads stale or new values, never torn ones, and then retries.
 */
typedef void *(*tb_alloc_fn)(void *, size_t, size_t);
typedef void (*tb_free_fn)(void *, void *, size_t);

static _Atomic(tb_alloc_fn) tb_current_alloc = tb_default_alloc;
static _Atomic(tb_free_fn) tb_current_free = tb_default_free;
static _Atomic(void *) tb_current_user = NULL;
static atomic_uint tb_current_seq;
static atomic_flag tb_writer_lock = ATOMIC_FLAG_INIT;

TB_API tb_status tb_set_allocator(const tb_allocator *allocator) {
  if (allocator != NULL && (allocator->alloc == NULL || allocator->free == NULL)) {
    return tb__fail(TB_ERR_INVALID, "set_allocator: allocator->%s is NULL; alloc and free must both be set",
                    allocator->alloc == NULL ? "alloc" : "free");
  }
  const tb_allocator *a = allocator != NULL ? allocator : &tb_default_allocator;
  while (atomic_flag_test_and_set_explicit(&tb_writer_lock, memory_order_acquire)) {
  }
  atomic_fetch_add_explicit(&tb_current_seq, 1, memory_order_relaxed); /* odd: writing */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&tb_current_alloc, a->alloc, memory_order_relaxed);
  atomic_store_explicit(&tb_current_free, a->free, memory_order_relaxed);
  atomic_store_explicit(&tb_current_user, a->user_data, memory_order_relaxed);
  atomic_fetch_add_explicit(&tb_current_seq, 1, memory_order_release); /* even: done */
  atomic_flag_clear_explicit(&tb_writer_lock, memory_order_release);
  return TB_OK;
}

TB_API void tb_get_allocator(tb_allocator *out) { tb__allocator_current(out); }

void tb__allocator_current(tb_allocator *out) {
  for (;;) {
    unsigned before = atomic_load_explicit(&tb_current_seq, memory_order_acquire);
    if (before & 1u) continue;
    out->alloc = atomic_load_explicit(&tb_current_alloc, memory_order_relaxed);
    out->free = atomic_load_explicit(&tb_current_free, memory_order_relaxed);
    out->user_data = atomic_load_explicit(&tb_current_user, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&tb_current_seq, memory_order_relaxed) == before) return;
  }
}

void *tb__alloc(const tb_allocator *a, size_t size, size_t alignment, const char *what) {
  void *p = a->alloc(a->user_data, size, alignment);
  if (p == NULL) {
    tb__fail(TB_ERR_NOMEM, "%s: allocation of %zu bytes failed", what, size);
  }
  return p;
}

void tb__free(const tb_allocator *a, void *ptr, size_t size) {
  if (ptr != NULL) a->free(a->user_data, ptr, size);
}

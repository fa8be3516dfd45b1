/* The replaceable host allocator. */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

static void *tb_default_alloc(void *user_data, size_t size, size_t alignment) {
  (void)user_data;
  /* malloc already aligns to max_align_t and is faster than glibc's aligned
   * path: headers and records take it; element data (64) does not. */
  if (alignment <= _Alignof(max_align_t)) return malloc(size == 0 ? 1 : size);
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

/* The current allocator, guarded by a spin lock: a copy of three pointers
 * is all that ever happens under it. */
static tb_allocator tb_current = {tb_default_alloc, tb_default_free, NULL};
static atomic_flag tb_current_lock = ATOMIC_FLAG_INIT;

static void tb_lock(void) {
  while (atomic_flag_test_and_set_explicit(&tb_current_lock, memory_order_acquire)) {
  }
}
static void tb_unlock(void) { atomic_flag_clear_explicit(&tb_current_lock, memory_order_release); }

TB_API tb_status tb_set_allocator(const tb_allocator *allocator) {
  if (allocator != NULL && (allocator->alloc == NULL || allocator->free == NULL)) {
    return tb__fail(TB_ERR_INVALID, "set_allocator: allocator->%s is NULL; alloc and free must both be set",
                    allocator->alloc == NULL ? "alloc" : "free");
  }
  tb_lock();
  tb_current = allocator != NULL ? *allocator : tb_default_allocator;
  tb_unlock();
  return TB_OK;
}

TB_API void tb_get_allocator(tb_allocator *out) { tb__allocator_current(out); }

void tb__allocator_current(tb_allocator *out) {
  tb_lock();
  *out = tb_current;
  tb_unlock();
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

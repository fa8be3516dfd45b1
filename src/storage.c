/* Reference-counted storage: the one place memory is freed. */
#include "device.h"

void tb__storage_init(tb_storage *s, const tb_allocator *allocator, void *block,
                      size_t block_size) {
  /* Field by field: a compound literal zeroes the record with `rep stos`,
   * which costs more than the rest of a construction. */
  atomic_init(&s->refcount, 1);
  s->data = NULL;
  s->nbytes = 0;
  s->device = (DLDevice){kDLCPU, 0};
  s->deleter = NULL;
  s->deleter_data = NULL;
  s->deleter_ctx = NULL;
  s->backend = NULL;
  s->allocator = *allocator;
  s->block = block;
  s->block_size = block_size;
}

tb_status tb__storage_alloc_data(tb_storage *s, DLDevice device, uint64_t nbytes) {
  const tb_device_vtable *backend;
  tb_status st = tb__device_lookup("alloc", device, &backend);
  if (st != TB_OK) return st;
  st = backend->alloc(backend, device.device_id, nbytes, &s->allocator, &s->data);
  if (st != TB_OK) return st;
  s->nbytes = nbytes;
  s->device = device;
  s->backend = backend;
  return TB_OK;
}

void tb__storage_retain(tb_storage *s) {
  atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
}

void tb__storage_release(tb_storage *s) {
  if (s == NULL) return;
  /* Release ordering publishes this thread's writes; the acquire fence makes
   * every other thread's writes visible to whichever thread frees. */
  /* acq_rel rather than release + a standalone acquire fence: the same
   * ordering, in a form ThreadSanitizer models. */
  if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
  if (s->backend != NULL) {
    s->backend->free(s->backend, s->device.device_id, s->data, s->nbytes, &s->allocator);
  } else if (s->deleter != NULL) {
    s->deleter(s->deleter_data, s->deleter_ctx);
  }
  tb_allocator allocator = s->allocator;
  tb__free(&allocator, s->block, s->block_size);
}

/* Reference-counted storage: the one place memory is freed. */
#include "device.h"

static tb_status tb_storage_new(tb_storage **out) {
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  tb_storage *s = tb__alloc(&allocator, sizeof *s, _Alignof(tb_storage), "storage");
  if (s == NULL) return TB_ERR_NOMEM;
  *s = (tb_storage){.allocator = allocator};
  atomic_init(&s->refcount, 1);
  *out = s;
  return TB_OK;
}

tb_status tb__storage_alloc(DLDevice device, uint64_t nbytes, tb_storage **out) {
  const tb_device_vtable *backend;
  tb_status st = tb__device_lookup("alloc", device, &backend);
  if (st != TB_OK) return st;
  tb_storage *s;
  st = tb_storage_new(&s);
  if (st != TB_OK) return st;
  st = backend->alloc(backend, device.device_id, nbytes, &s->allocator, &s->data);
  if (st != TB_OK) {
    tb__free(&s->allocator, s, sizeof *s);
    return st;
  }
  s->nbytes = nbytes;
  s->device = device;
  s->backend = backend;
  *out = s;
  return TB_OK;
}

tb_status tb__storage_wrap(void *data, uint64_t nbytes, DLDevice device, tb_deleter_fn deleter,
                           void *ctx, tb_storage **out) {
  tb_storage *s;
  tb_status st = tb_storage_new(&s);
  if (st != TB_OK) return st;
  s->data = data;
  s->nbytes = nbytes;
  s->device = device;
  s->deleter = deleter;
  s->deleter_data = data;
  s->deleter_ctx = ctx;
  *out = s;
  return TB_OK;
}

void tb__storage_retain(tb_storage *s) {
  atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
}

void tb__storage_release(tb_storage *s) {
  if (s == NULL) return;
  /* Release ordering publishes this thread's writes; the acquire fence makes
   * every other thread's writes visible to whichever thread frees. */
  if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_release) != 1) return;
  atomic_thread_fence(memory_order_acquire);
  if (s->backend != NULL) {
    s->backend->free(s->backend, s->device.device_id, s->data, s->nbytes, &s->allocator);
  } else if (s->deleter != NULL) {
    s->deleter(s->deleter_data, s->deleter_ctx);
  }
  tb_allocator allocator = s->allocator;
  tb__free(&allocator, s, sizeof *s);
}

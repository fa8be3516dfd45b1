/* The CPU backend: host memory from the library's allocator, copies through
 * the host strided copy engine. */
#include "../device.h"

static tb_status tb_cpu_alloc(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                              const tb_allocator *allocator, void **out) {
  (void)self;
  (void)device_id;
  if (nbytes == 0) {
    *out = NULL;
    return TB_OK;
  }
  if (nbytes > SIZE_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "cpu alloc: nbytes = %llu exceeds the address space",
                    (unsigned long long)nbytes);
  }
  void *p = tb__alloc(allocator, (size_t)nbytes, TB_DATA_ALIGNMENT, "cpu alloc");
  if (p == NULL) return TB_ERR_NOMEM;
  *out = p;
  return TB_OK;
}

static void tb_cpu_free(const tb_device_vtable *self, int32_t device_id, void *ptr,
                        uint64_t nbytes, const tb_allocator *allocator) {
  (void)self;
  (void)device_id;
  tb__free(allocator, ptr, (size_t)nbytes);
}

static tb_status tb_cpu_copy(const tb_device_vtable *self, const tb_copy_desc *desc,
                             void *stream) {
  (void)self;
  (void)stream;
  return tb__copy_host(desc);
}

static tb_status tb_cpu_synchronize(const tb_device_vtable *self, int32_t device_id,
                                    void *stream) {
  (void)self;
  (void)device_id;
  (void)stream;
  return TB_OK;
}

const tb_device_vtable tb__cpu_backend = {
    .device_type = TB_DL_CPU,
    .name = "cpu",
    .alloc = tb_cpu_alloc,
    .free = tb_cpu_free,
    .copy = tb_cpu_copy,
    .synchronize = tb_cpu_synchronize,
};

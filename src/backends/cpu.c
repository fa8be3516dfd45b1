/* The CPU backend: host memory from the library's allocator, copies through
 * the host strided copy engine. */
#include <string.h>

#include "../device.h"

static int32_t tb_cpu_count(const tb_device_vtable *self) {
  (void)self;
  return 1;
}

static tb_status tb_cpu_alloc(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                              const tb_allocator *host, void **out) {
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
  void *p = tb__alloc(host, (size_t)nbytes, TB_DATA_ALIGNMENT, "cpu alloc");
  if (p == NULL) return TB_ERR_NOMEM;
  *out = p;
  return TB_OK;
}

static void tb_cpu_free(const tb_device_vtable *self, int32_t device_id, void *ptr,
                        uint64_t nbytes, const tb_allocator *host) {
  (void)self;
  (void)device_id;
  tb__free(host, ptr, (size_t)nbytes);
}

static tb_status tb_cpu_copy_bytes(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                                   DLDevice dst_device, const void *src, uint64_t src_offset,
                                   DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self;
  (void)dst_device;
  (void)src_device;
  (void)stream;
  if (nbytes > 0) memcpy((char *)dst + dst_offset, (const char *)src + src_offset, (size_t)nbytes);
  return TB_OK;
}

static tb_status tb_cpu_copy_strided(const tb_device_vtable *self, const tb_copy_desc *desc,
                                     void *stream) {
  (void)self;
  (void)stream;
  return tb__copy_host(desc);
}

const tb_device_vtable tb__cpu_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = TB_DL_CPU,
    .name = "cpu",
    .device_count = tb_cpu_count,
    .alloc = tb_cpu_alloc,
    .free = tb_cpu_free,
    .copy_bytes = tb_cpu_copy_bytes,
    .copy_strided = tb_cpu_copy_strided,
};

#include "fake_devices.h"

#include "tensorbridge/backend.h"

static int32_t fake_count(const tb_device_vtable *self) {
  (void)self;
  return 2;
}

static tb_status fake_alloc(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                            const tb_allocator *host, void **out) {
  (void)device_id;
  (void)nbytes;
  (void)host;
  (void)out;
  return tb_set_error(TB_ERR_UNSUPPORTED, self->device_type == TB_DL_VPI
                                              ? "fake vpi backend: no memory"
                                              : "fake vulkan backend: no memory");
}

static void fake_free(const tb_device_vtable *self, int32_t device_id, void *ptr, uint64_t nbytes,
                      const tb_allocator *host) {
  (void)self;
  (void)device_id;
  (void)ptr;
  (void)nbytes;
  (void)host;
}

static tb_status fake_copy_bytes(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                                 DLDevice dst_device, const void *src, uint64_t src_offset,
                                 DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self;
  (void)dst;
  (void)dst_offset;
  (void)dst_device;
  (void)src;
  (void)src_offset;
  (void)src_device;
  (void)nbytes;
  (void)stream;
  return tb_set_error(TB_ERR_UNSUPPORTED, "fake backend: no copies");
}

static const tb_device_vtable fake_address_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = TB_DL_VPI,
    .name = "fake vpi",
    .device_count = fake_count,
    .alloc = fake_alloc,
    .free = fake_free,
    .copy_bytes = fake_copy_bytes,
};

static const tb_device_vtable fake_handle_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = TB_DL_VULKAN,
    .name = "fake vulkan",
    .device_count = fake_count,
    .alloc = fake_alloc,
    .free = fake_free,
    .copy_bytes = fake_copy_bytes,
};

tb_status fake_devices_register(void) {
  tb_status st = tb_register_backend(&fake_address_backend);
  return st != TB_OK ? st : tb_register_backend(&fake_handle_backend);
}

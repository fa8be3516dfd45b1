/* The device registry and the facts about DLPack device types. */
#include "device.h"

static const struct {
  int32_t type;
  const char *name;
  bool host_accessible;
} tb_device_types[] = {
    {TB_DL_CPU, "cpu", true},
    {TB_DL_CUDA, "cuda", false},
    {TB_DL_CUDA_HOST, "cuda_host", true},
    {TB_DL_OPENCL, "opencl", false},
    {TB_DL_VULKAN, "vulkan", false},
    {TB_DL_METAL, "metal", false},
    {TB_DL_VPI, "vpi", false},
    {TB_DL_ROCM, "rocm", false},
    {TB_DL_ROCM_HOST, "rocm_host", true},
    {TB_DL_EXT_DEV, "ext_dev", false},
    {TB_DL_CUDA_MANAGED, "cuda_managed", true},
    {TB_DL_ONEAPI, "oneapi", false},
    {TB_DL_WEBGPU, "webgpu", false},
    {TB_DL_HEXAGON, "hexagon", false},
    {TB_DL_MAIA, "maia", false},
    {TB_DL_TRN, "trn", false},
};

#define TB_DEVICE_TYPE_COUNT (sizeof tb_device_types / sizeof tb_device_types[0])

static int tb_device_index(int32_t type) {
  for (size_t i = 0; i < TB_DEVICE_TYPE_COUNT; i++) {
    if (tb_device_types[i].type == type) return (int)i;
  }
  return -1;
}

bool tb__device_type_known(int32_t device_type) { return tb_device_index(device_type) >= 0; }

bool tb__device_is_host(DLDevice device) {
  int i = tb_device_index((int32_t)device.device_type);
  return i >= 0 && tb_device_types[i].host_accessible;
}

const char *tb__device_type_name(int32_t device_type) {
  int i = tb_device_index(device_type);
  return i >= 0 ? tb_device_types[i].name : "unknown";
}

/* Registered backends, indexed like tb_device_types. */
static const tb_device_vtable *const tb_backends[TB_DEVICE_TYPE_COUNT] = {
    [0] = &tb__cpu_backend,
};

const tb_device_vtable *tb__device_backend(int32_t device_type) {
  int i = tb_device_index(device_type);
  return i >= 0 ? tb_backends[i] : NULL;
}

tb_status tb__device_lookup(const char *what, DLDevice device, const tb_device_vtable **out) {
  const tb_device_vtable *backend = tb__device_backend((int32_t)device.device_type);
  if (backend == NULL) {
    return tb__fail(TB_ERR_DEVICE, "%s: device %s:%d (type %d) has no backend in this build", what,
                    tb__device_type_name((int32_t)device.device_type), (int)device.device_id,
                    (int)device.device_type);
  }
  *out = backend;
  return TB_OK;
}

tb_status tb__device_copy_backend(const char *what, DLDevice dst, DLDevice src,
                                  const tb_device_vtable **out) {
  if (tb__device_is_host(dst) && tb__device_is_host(src)) {
    *out = &tb__cpu_backend;
    return TB_OK;
  }
  return tb__fail(TB_ERR_DEVICE, "%s: no backend copies from %s:%d to %s:%d in this build", what,
                  tb__device_type_name((int32_t)src.device_type), (int)src.device_id,
                  tb__device_type_name((int32_t)dst.device_type), (int)dst.device_id);
}

/* The device registry and the facts about DLPack device types. */
#include "platform/thread.h"

#include "device.h"

static const struct {
  int32_t type;
  const char *name;
  bool host_accessible; /* the CPU can dereference data */
  bool data_is_handle;  /* data is an API object (cl_mem, VkBuffer, ...), not an address */
} tb_device_types[] = {
    {TB_DL_CPU, "cpu", true, false},
    {TB_DL_CUDA, "cuda", false, false},
    {TB_DL_CUDA_HOST, "cuda_host", true, false},
    {TB_DL_OPENCL, "opencl", false, true},
    {TB_DL_VULKAN, "vulkan", false, true},
    {TB_DL_METAL, "metal", false, true},
    {TB_DL_VPI, "vpi", false, false},
    {TB_DL_ROCM, "rocm", false, false},
    {TB_DL_ROCM_HOST, "rocm_host", true, false},
    {TB_DL_EXT_DEV, "ext_dev", false, false},
    {TB_DL_CUDA_MANAGED, "cuda_managed", true, false},
    {TB_DL_ONEAPI, "oneapi", false, false},
    {TB_DL_WEBGPU, "webgpu", false, true},
    {TB_DL_HEXAGON, "hexagon", false, false},
    {TB_DL_MAIA, "maia", false, false},
    {TB_DL_TRN, "trn", false, false},
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

bool tb__device_data_is_address(DLDevice device) {
  int i = tb_device_index((int32_t)device.device_type);
  return i >= 0 && !tb_device_types[i].data_is_handle;
}

const char *tb__device_type_name(int32_t device_type) {
  int i = tb_device_index(device_type);
  return i >= 0 ? tb_device_types[i].name : "unknown";
}

/* Registered backends, indexed like tb_device_types. Readers load with
 * acquire so that a table registered on another thread is seen whole. */
static _Atomic(const tb_device_vtable *) tb_backends[TB_DEVICE_TYPE_COUNT];
static tb__once_flag tb_builtins_once = TB__ONCE_INIT;

static void tb_store_backend(const tb_device_vtable *backend) {
  int i = tb_device_index(backend->device_type);
  atomic_store_explicit(&tb_backends[i], backend, memory_order_release);
}

static void tb_register_builtins(void) {
  tb_store_backend(&tb__cpu_backend);
  tb__register_builtin_backends();
}

/* Built-in backends register once, on first use of the registry (loading a
 * driver may take a while; other threads wait in tb__once meanwhile). */
static void tb_ensure_builtins(void) { tb__once(&tb_builtins_once, tb_register_builtins); }

TB_API tb_status tb_register_backend(const tb_device_vtable *b) {
  tb_ensure_builtins(); /* a user's backend replaces a built-in, never the reverse */
  return tb__backend_add(b);
}

tb_status tb__backend_add(const tb_device_vtable *b) {
  static const char what[] = "register_backend";
  if (b == NULL) return tb__fail(TB_ERR_INVALID, "%s: backend is NULL", what);
  if (b->abi_version != TB_BACKEND_ABI_VERSION) {
    return tb__fail(TB_ERR_VERSION, "%s: abi_version = %u, this library expects %d", what,
                    (unsigned)b->abi_version, TB_BACKEND_ABI_VERSION);
  }
  if (!tb__device_type_known(b->device_type)) {
    return tb__fail(TB_ERR_DEVICE, "%s: device_type = %d is not a DLPack device type", what,
                    (int)b->device_type);
  }
  const char *missing = b->device_count == NULL ? "device_count"
                        : b->alloc == NULL      ? "alloc"
                        : b->free == NULL       ? "free"
                        : b->copy_bytes == NULL ? "copy_bytes"
                                                : NULL;
  if (missing != NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: backend \"%s\" has no %s function", what,
                    b->name != NULL ? b->name : "?", missing);
  }
  tb_store_backend(b);
  return TB_OK;
}

TB_API const tb_device_vtable *tb_get_backend(int32_t device_type) {
  int i = tb_device_index(device_type);
  if (i < 0) return NULL;
  tb_ensure_builtins();
  return atomic_load_explicit(&tb_backends[i], memory_order_acquire);
}

TB_API int32_t tb_device_count(int32_t device_type) {
  const tb_device_vtable *b = tb_get_backend(device_type);
  if (b == NULL) return 0;
  int32_t n = b->device_count(b);
  return n > 0 ? n : 0;
}

TB_API bool tb_device_available(int32_t device_type) { return tb_device_count(device_type) > 0; }

TB_API const char *tb_device_type_name(int32_t device_type) {
  return tb__device_type_name(device_type);
}

TB_API tb_status tb_set_error(tb_status status, const char *message) {
  return tb__fail(status, "%s", message != NULL ? message : "");
}

tb_status tb__device_lookup(const char *what, DLDevice device, const tb_device_vtable **out) {
  const tb_device_vtable *backend = tb_get_backend((int32_t)device.device_type);
  const char *name = tb__device_type_name((int32_t)device.device_type);
  if (backend == NULL) {
    return tb__fail(TB_ERR_DEVICE, "%s: device %s:%d (type %d) has no backend in this build", what,
                    name, (int)device.device_id, (int)device.device_type);
  }
  int32_t count = backend->device_count(backend);
  if (device.device_id < 0 || device.device_id >= count) {
    return tb__fail(TB_ERR_DEVICE, "%s: device %s:%d is not present (%d %s device%s found)", what,
                    name, (int)device.device_id, (int)(count > 0 ? count : 0), name,
                    count == 1 ? "" : "s");
  }
  *out = backend;
  return TB_OK;
}

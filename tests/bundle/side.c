/*
 * One copy's side of tests/bundle/two_copies.c: compiled with
 * -DTENSORBRIDGE_NAMESPACE=alpha (or beta), the namespace of the
 * tensorbridge.o it is linked with, so that every tb_* call below goes to
 * that copy (alpha_tb_tensor_new, ...). Exports <namespace>_side.
 */
#include <stdlib.h>

#include "tensorbridge.h"
#include "side.h"

#if !defined(TENSORBRIDGE_NAMESPACE)
#error "compile with -DTENSORBRIDGE_NAMESPACE=alpha or =beta"
#endif
#define SIDE_PASTE(a, b) a##_##b
#define SIDE_NAME(ns, name) SIDE_PASTE(ns, name)
#define SIDE_STRING2(x) #x
#define SIDE_STRING(x) SIDE_STRING2(x)

static long side_allocs, side_frees;

static void *side_counting_alloc(void *user_data, size_t size, size_t alignment) {
  (void)user_data;
  /* aligned_alloc wants a multiple of the alignment. */
  size_t rounded = (size + alignment - 1) / alignment * alignment;
  void *p = aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (p != NULL) side_allocs++;
  return p;
}

static void side_counting_free(void *user_data, void *ptr, size_t size) {
  (void)user_data;
  (void)size;
  if (ptr != NULL) side_frees++;
  free(ptr);
}

static int side_count_allocations(int on) {
  tb_allocator a = {side_counting_alloc, side_counting_free, NULL};
  return tb_set_allocator(on ? &a : NULL) == TB_OK ? 0 : 1;
}

static long side_allocations(void) { return side_allocs; }
static long side_live_allocations(void) { return side_allocs - side_frees; }

static int side_allocator_is_counting(void) {
  tb_allocator a;
  tb_get_allocator(&a);
  return a.alloc == side_counting_alloc && a.free == side_counting_free;
}

static int side_provoke_error(void) {
  DLDataType f64 = {kDLFloat, 64, 1};
  int64_t n = 4;
  DLDevice cpu = {kDLCPU, 0};
  return (int)tb_tensor_zeros(f64, 1, &n, cpu, TB_ORDER_C, NULL);
}

static void *side_wrap(double *data, int64_t n, side_deleter_fn deleter, void *ctx) {
  DLDataType f64 = {kDLFloat, 64, 1};
  DLDevice cpu = {kDLCPU, 0};
  tb_tensor_t *t = NULL;
  if (tb_from_array(data, 0, f64, 1, &n, NULL, cpu, 0, deleter, ctx, &t) != TB_OK) return NULL;
  return t;
}

static void *side_zeros(int64_t n) {
  DLDataType f64 = {kDLFloat, 64, 1};
  DLDevice cpu = {kDLCPU, 0};
  tb_tensor_t *t = NULL;
  if (tb_tensor_zeros(f64, 1, &n, cpu, TB_ORDER_C, &t) != TB_OK) return NULL;
  return t;
}

static void *side_data(const void *t) { return tb_tensor_data(t); }
static int64_t side_numel(const void *t) { return tb_tensor_numel(t); }
static void side_release(void *t) { tb_tensor_release(t); }

static struct DLManagedTensorVersioned *side_export(const void *t) {
  DLManagedTensorVersioned *m = NULL;
  if (tb_to_dlpack_versioned(t, NULL, &m) != TB_OK) return NULL;
  return m;
}

static void *side_import(struct DLManagedTensorVersioned *m) {
  tb_import_options options = {0};
  options.copy = TB_COPY_NEVER;
  tb_tensor_t *t = NULL;
  if (tb_from_dlpack_versioned(m, &options, &t) != TB_OK) return NULL;
  return t;
}

const side_api SIDE_NAME(TENSORBRIDGE_NAMESPACE, side) = {
    SIDE_STRING(TENSORBRIDGE_NAMESPACE),
    tb_version,
    side_count_allocations,
    side_allocations,
    side_live_allocations,
    side_allocator_is_counting,
    side_provoke_error,
    tb_last_error,
    side_wrap,
    side_zeros,
    side_data,
    side_numel,
    side_release,
    side_export,
    side_import,
};

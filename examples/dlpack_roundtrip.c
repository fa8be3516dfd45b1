/*
 * DLPack, end to end: hand a tensor to a consumer as a DLManagedTensorVersioned,
 * take it back, and watch who frees the memory and when.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <tensorbridge/tensorbridge.h>

/* Runs when the last user of the wrapped memory is gone, whoever that is. */
static int g_freed;
static void free_counted(void *data, void *ctx) {
  (void)ctx;
  free(data);
  g_freed++;
}

static int check(tb_status st, const char *what) {
  if (st != TB_OK) fprintf(stderr, "%s: %s: %s\n", what, tb_status_name(st), tb_last_error());
  return st != TB_OK;
}

static void describe(const DLManagedTensorVersioned *m) {
  const DLTensor *dl = &m->dl_tensor;
  printf("  version %u.%u, flags 0x%" PRIx64 "%s%s\n", (unsigned)m->version.major,
         (unsigned)m->version.minor, m->flags,
         (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY) ? " READ_ONLY" : "",
         (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) ? " IS_COPIED" : "");
  printf("  %s, shape (", tb_dtype_name(dl->dtype));
  for (int32_t d = 0; d < dl->ndim; d++) printf(d ? ", %" PRId64 : "%" PRId64, dl->shape[d]);
  printf("), strides (");
  for (int32_t d = 0; d < dl->ndim; d++) printf(d ? ", %" PRId64 : "%" PRId64, dl->strides[d]);
  printf("), byte_offset %" PRIu64 "\n", dl->byte_offset);
}

int main(void) {
  /* 1. Our own memory, shared with the library: 2 x 3 float32. */
  float *mem = malloc(6 * sizeof *mem);
  if (mem == NULL) return 1;
  for (int i = 0; i < 6; i++) mem[i] = (float)i;
  int64_t shape[2] = {2, 3};
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0};
  tb_tensor_t *t, *col, *back;
  if (check(tb_from_array(mem, 0, f32, 2, shape, NULL, cpu, 0, free_counted, NULL, &t), "wrap"))
    return 1;

  /* 2. Export a view (columns 1 and 2): a consumer gets data at the view's
   *    first element, byte_offset 0, and strides in elements. */
  if (check(tb_tensor_slice(t, 1, 1, INT64_MAX, 1, &col), "slice")) return 1;
  DLManagedTensorVersioned *m;
  if (check(tb_to_dlpack_versioned(col, NULL, &m), "export")) return 1;
  printf("exported:\n");
  describe(m);

  /* 3. The consumer side: import the struct back. No copy is made. */
  if (check(tb_from_dlpack_versioned(m, NULL, &back), "import")) return 1;
  float *a = tb_tensor_data(col), *b = tb_tensor_data(back);
  int same = a == b;
  printf("same pointer: %s\n", same ? "yes" : "no");
  b[0] = 100.0f; /* write through the import ... */
  printf("mem[1] after writing through the import: %g\n", mem[1]);
  mem[5] = -5.0f; /* ... and through the original memory */
  printf("import[1][1] after writing mem[5]: %g\n", b[3 + 1]);

  /* 4. Release in an unusual order: the original first. The exported struct
   *    (owned by `back` now) keeps the memory alive. */
  tb_tensor_release(t);
  tb_tensor_release(col);
  printf("after releasing the original and the view: freed %d time(s)\n", g_freed);
  tb_tensor_release(back); /* runs the export's deleter, then ours */
  printf("after releasing the import: freed %d time(s)\n", g_freed);

  /* 5. A read-only tensor says so in the versioned struct's flags. The legacy
   *    struct cannot, so tb_to_dlpack refuses it unless told otherwise. */
  static const double table[4] = {1.0, 2.0, 4.0, 8.0};
  int64_t n = 4;
  DLDataType f64 = {kDLFloat, 64, 1};
  tb_tensor_t *ro;
  if (check(tb_from_array((void *)(uintptr_t)table, 0, f64, 1, &n, NULL, cpu, TB_FLAG_READONLY,
                          NULL, NULL, &ro),
            "wrap read-only"))
    return 1;
  if (check(tb_to_dlpack_versioned(ro, NULL, &m), "export read-only")) return 1;
  printf("read-only export:\n");
  describe(m);
  DLManagedTensor *legacy;
  tb_status st = tb_to_dlpack(ro, NULL, &legacy);
  printf("legacy export of it: %s\n", tb_status_name(st));
  m->deleter(m); /* a consumer that is done calls the deleter once */
  tb_tensor_release(ro);
  return g_freed == 1 && same && st == TB_ERR_READONLY ? 0 : 1;
}

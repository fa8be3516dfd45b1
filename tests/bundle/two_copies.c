/*
 * Two copies of the bundled library in one program (scripts/test-bundle):
 * tensorbridge.c compiled with -DTENSORBRIDGE_NAMESPACE=alpha and =beta,
 * each reached through its side.c table (side.h). Checks that they link
 * together, that their state is their own (the calling thread's last error,
 * the allocator), and that a tensor crosses from alpha to beta through
 * DLPack without a copy, its memory freed once, by alpha's deleter, when
 * beta lets go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "side.h"

static int failures;
#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "two_copies.c:%d: failed: %s\n", __LINE__, #cond); \
      failures++;                                                      \
    }                                                                  \
  } while (0)

static int freed;
static void free_counted(void *data, void *ctx) {
  EXPECT(ctx == &freed);
  free(data);
  freed++;
}

int main(void) {
  const side_api *a = &alpha_side, *b = &beta_side;
  EXPECT(strcmp(a->name, "alpha") == 0 && strcmp(b->name, "beta") == 0);
  EXPECT(strcmp(a->version(), b->version()) == 0);
  EXPECT(a->release != b->release && a->import_dlpack != b->import_dlpack);

  /* The last error is per copy (and per thread). */
  EXPECT(a->provoke_error() != 0);
  EXPECT(strstr(a->last_error(), "NULL") != NULL);
  EXPECT(strcmp(b->last_error(), "") == 0);
  EXPECT(b->provoke_error() != 0);
  EXPECT(strstr(b->last_error(), "NULL") != NULL);

  /* So is the allocator: alpha counts, beta keeps the default. */
  EXPECT(a->count_allocations(1) == 0);
  EXPECT(a->allocator_is_counting() && !b->allocator_is_counting());
  void *bz = b->zeros(1000);
  EXPECT(bz != NULL && a->allocations() == 0 && b->allocations() == 0);
  void *az = a->zeros(1000);
  EXPECT(az != NULL && a->allocations() > 0 && a->live_allocations() > 0);
  EXPECT(b->allocations() == 0);
  if (az != NULL) EXPECT(((double *)a->data(az))[999] == 0.0);
  a->release(az);
  b->release(bz);
  EXPECT(a->live_allocations() == 0);

  /* alpha -> DLPack -> beta: same memory, freed once, when beta is done. */
  const int64_t n = 8;
  double *mem = malloc((size_t)n * sizeof *mem);
  if (mem == NULL) return 1;
  for (int64_t i = 0; i < n; i++) mem[i] = (double)i;
  void *at = a->wrap(mem, n, free_counted, &freed);
  EXPECT(at != NULL);
  struct DLManagedTensorVersioned *capsule = at != NULL ? a->export_dlpack(at) : NULL;
  EXPECT(capsule != NULL);
  a->release(at); /* the capsule keeps the memory alive */
  EXPECT(freed == 0);
  const long alpha_live = a->live_allocations(); /* the capsule, made by alpha */
  EXPECT(alpha_live > 0);
  void *bt = capsule != NULL ? b->import_dlpack(capsule) : NULL;
  EXPECT(bt != NULL);
  if (bt != NULL) {
    EXPECT(b->data(bt) == mem);
    EXPECT(b->numel(bt) == n);
    EXPECT(((double *)b->data(bt))[7] == 7.0);
    mem[7] = 70.0; /* one buffer: seen through beta's tensor */
    EXPECT(((double *)b->data(bt))[7] == 70.0);
    EXPECT(a->live_allocations() == alpha_live); /* beta's header is beta's */
    EXPECT(freed == 0);
    b->release(bt);
  }
  EXPECT(freed == 1);
  EXPECT(a->live_allocations() == 0); /* the capsule went back through alpha */
  EXPECT(a->count_allocations(0) == 0 && !a->allocator_is_counting());

  if (failures != 0) {
    fprintf(stderr, "two_copies: %d check(s) failed\n", failures);
    return 1;
  }
  printf("two copies (alpha, beta): independent errors and allocators; DLPack alpha -> beta "
         "shares the memory, deleter ran once\n");
  return 0;
}

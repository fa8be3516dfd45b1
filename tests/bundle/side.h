/*
 * tests/bundle: one copy of the bundled library as two_copies.c sees it.
 *
 * side.c is compiled once per copy, each time with the TENSORBRIDGE_NAMESPACE
 * of that copy's tensorbridge.o, and exports one table, <namespace>_side.
 * This header needs no tensorbridge.h: two_copies.c includes none, so that
 * it can only reach each copy through its own table.
 */
#ifndef TB_BUNDLE_TEST_SIDE_H
#define TB_BUNDLE_TEST_SIDE_H

#include <stddef.h>
#include <stdint.h>

struct DLManagedTensorVersioned;

typedef void (*side_deleter_fn)(void *data, void *ctx);

typedef struct side_api {
  const char *name; /* the namespace: "alpha" or "beta" */
  const char *(*version)(void);
  /* Installs (or removes) an allocator that counts into this side's
   * counters; returns 0 on success. */
  int (*count_allocations)(int on);
  long (*allocations)(void);      /* calls to the counting allocator's alloc */
  long (*live_allocations)(void); /* allocs minus frees */
  /* 1 when this copy's current allocator is the counting one. */
  int (*allocator_is_counting)(void);
  /* Makes this copy record an error for the calling thread (a call with a
   * NULL output); returns the status it got. */
  int (*provoke_error)(void);
  const char *(*last_error)(void);
  /* A 1-D float64 tensor over the caller's memory (deleter runs when the
   * last user is gone), or NULL. */
  void *(*wrap)(double *data, int64_t n, side_deleter_fn deleter, void *ctx);
  void *(*zeros)(int64_t n); /* library-owned float64 tensor, or NULL */
  void *(*data)(const void *tensor);
  int64_t (*numel)(const void *tensor);
  void (*release)(void *tensor);
  /* DLPack: export a new versioned capsule (NULL on failure); import one,
   * without a copy (NULL on failure). */
  struct DLManagedTensorVersioned *(*export_dlpack)(const void *tensor);
  void *(*import_dlpack)(struct DLManagedTensorVersioned *managed);
} side_api;

extern const side_api alpha_side;
extern const side_api beta_side;

#endif

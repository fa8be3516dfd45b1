/*
 * The host strided copy engine: every host copy, with or without a dtype
 * conversion, goes through tb__copy_host.
 *
 * Plan (tb__copy_plan, shared with the device backends' kernels), then run:
 *   1. drop extent-1 dimensions (their stride never matters);
 *   2. make every destination stride non-negative by walking a dimension
 *      backwards when needed (order of visits is free: no overlap);
 *   3. sort dimensions so the destination's smallest stride is innermost;
 *   4. merge neighbours that step through memory as one longer dimension;
 *   5. run an odometer over the outer dimensions and one tight loop (or one
 *      memcpy, when both sides are dense and the dtype is unchanged; or a
 *      vector kernel from kernels/, when both sides are dense and the cast
 *      has one) inside.
 * Speed can grow inside step 5 (blocking for transposes, vector kernels)
 * without touching the interface.
 */
#include <string.h>

#include "cast.h"
#include "device.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "kernels/transpose.h"


typedef void (*tb_inner_fn)(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n,
                            tb_cast_loop_fn cast, size_t itemsize);

static void tb_inner_memcpy(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n,
                            tb_cast_loop_fn cast, size_t itemsize) {
  (void)ss;
  (void)ds;
  (void)cast;
  memcpy(dst, src, (size_t)n * itemsize);
}

#define TB_DEFINE_STRIDED_MOVE(bytes)                                                          \
  static void tb_inner_move##bytes(const char *src, int64_t ss, char *dst, int64_t ds,        \
                                   int64_t n, tb_cast_loop_fn cast, size_t itemsize) {        \
    (void)cast;                                                                                \
    (void)itemsize;                                                                            \
    for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds, src + i * ss, bytes);                 \
  }
TB_DEFINE_STRIDED_MOVE(1)
TB_DEFINE_STRIDED_MOVE(2)
TB_DEFINE_STRIDED_MOVE(4)
TB_DEFINE_STRIDED_MOVE(8)
TB_DEFINE_STRIDED_MOVE(16)

static void tb_inner_cast(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n,
                          tb_cast_loop_fn cast, size_t itemsize) {
  (void)itemsize;
  cast(src, ss, dst, ds, n);
}

static tb_inner_fn tb_strided_move(size_t itemsize) {
  switch (itemsize) {
    case 1: return tb_inner_move1;
    case 2: return tb_inner_move2;
    case 4: return tb_inner_move4;
    case 8: return tb_inner_move8;
    case 16: return tb_inner_move16;
    default: return NULL;
  }
}

static int64_t llabs_i64(int64_t v) { return v < 0 ? -v : v; }

/* True when stepping `inner` n times lands exactly on `outer`'s next step,
 * on both sides. */
static bool tb_dims_merge(const tb_copy_dim *outer, const tb_copy_dim *inner) {
  int64_t ss, ds;
  if (tb__mul_overflows(inner->ss, inner->n, &ss) || tb__mul_overflows(inner->ds, inner->n, &ds)) {
    return false;
  }
  return outer->ss == ss && outer->ds == ds;
}

/*
 * Overflow: the callers plan only copies with elements (an empty copy returns
 * first), between layouts that satisfy the reach invariant (core/layout.h).
 * Every dimension kept has extent >= 2, so stride * itemsize is at most
 * (extent - 1) * |stride| * itemsize and fits; each shift is a partial sum of
 * (extent - 1) * stride * itemsize terms of one side, and so are the offsets
 * the odometer and the tiles walk: all within that side's byte reach. */
int32_t tb__copy_plan(const tb_copy_desc *d, size_t src_item, size_t dst_item,
                      int64_t *src_shift, int64_t *dst_shift, tb_copy_dim *dims) {
  int32_t nd = 0;
  *src_shift = 0;
  *dst_shift = 0;
  for (int32_t i = 0; i < d->ndim; i++) {
    if (d->shape[i] == 1) continue;
    tb_copy_dim dim = {d->shape[i], d->src_strides[i] * (int64_t)src_item,
                       d->dst_strides[i] * (int64_t)dst_item};
    if (dim.ds < 0) {
      *src_shift += (dim.n - 1) * dim.ss;
      *dst_shift += (dim.n - 1) * dim.ds;
      dim.ss = -dim.ss;
      dim.ds = -dim.ds;
    }
    dims[nd++] = dim;
  }
  /* Insertion sort, outermost first: larger destination strides, then larger
   * source strides, go out. Stable, and nd is small. */
  for (int32_t i = 1; i < nd; i++) {
    tb_copy_dim key = dims[i];
    int32_t j = i - 1;
    while (j >= 0 && (dims[j].ds < key.ds ||
                      (dims[j].ds == key.ds && llabs_i64(dims[j].ss) < llabs_i64(key.ss)))) {
      dims[j + 1] = dims[j];
      j--;
    }
    dims[j + 1] = key;
  }
  int32_t merged = 0;
  for (int32_t i = 0; i < nd; i++) {
    if (merged > 0) {
      tb_copy_dim *outer = &dims[merged - 1];
      if (tb_dims_merge(outer, &dims[i])) {
        outer->n *= dims[i].n;
        outer->ss = dims[i].ss;
        outer->ds = dims[i].ds;
        continue;
      }
    }
    dims[merged++] = dims[i];
  }
  return merged;
}

/* The tight loop for the innermost dimension. */
static tb_status tb_choose_inner(const tb_copy_desc *d, const tb_dtype_info *si,
                                 const tb_dtype_info *di, const tb_copy_dim *inner,
                                 tb_inner_fn *fn, tb_cast_loop_fn *cast) {
  *cast = NULL;
  if (tb_dtype_equal(d->src_dtype, d->dst_dtype)) {
    bool dense = inner == NULL || (inner->ss == (int64_t)si->itemsize &&
                                   inner->ds == (int64_t)si->itemsize);
    *fn = dense ? tb_inner_memcpy : tb_strided_move(si->itemsize);
    return TB_OK;
  }
  if (si->cast_kind == TB_K_NONE || di->cast_kind == TB_K_NONE) {
    return tb__fail(TB_ERR_DTYPE, "copy: no conversion from %s to %s (float8/6/4 copy only to themselves)",
                    si->name, di->name);
  }
  tb_status st = tb__cast_loop(si->cast_kind, di->cast_kind, d->cast_flags, cast);
  if (st != TB_OK) return st;
  /* Both sides dense along the innermost dimension: a vector kernel, where
   * one exists for the pair (kernels.h; same bits as the scalar loop). It
   * ignores the strides, which is safe because every inner call (tiles
   * included) passes this dimension's strides. */
  const bool dense = inner == NULL || (inner->ss == (int64_t)si->itemsize &&
                                       inner->ds == (int64_t)di->itemsize);
  if (dense) {
    tb_cast_loop_fn fast = tb__contig_cast(si->cast_kind, di->cast_kind);
    if (fast != NULL) *cast = fast;
  }
  *fn = tb_inner_cast;
  return TB_OK;
}

/* Packed sub-byte dtypes: whole dense tensors of the same dtype only. The
 * layout rule and the byte count are tb__layout_extent's, as for any tensor. */
static tb_status tb_copy_packed(const tb_copy_desc *d, const tb_dtype_info *si) {
  if (!tb_dtype_equal(d->src_dtype, d->dst_dtype)) {
    return tb__fail(TB_ERR_DTYPE, "copy: %s is storage-only and cannot be converted",
                    si->name);
  }
  tb_extent src, dst;
  tb_status st = tb__layout_extent("copy source", d->src_dtype, d->ndim, d->shape, d->src_strides,
                                   &src);
  if (st == TB_OK) {
    st = tb__layout_extent("copy destination", d->dst_dtype, d->ndim, d->shape, d->dst_strides,
                           &dst);
  }
  if (st != TB_OK) return st;
  if (src.nbytes > 0) {
    memcpy((char *)d->dst + d->dst_byte_offset, (const char *)d->src + d->src_byte_offset,
           (size_t)src.nbytes);
  }
  return TB_OK;
}

/*
 * Tiling. When the innermost dimension (the destination's densest) steps
 * through the source by a cache line or more, every element read touches a
 * new line, as in a transpose. If another dimension walks the source more
 * closely, the two are copied together in TB_TILE x TB_TILE tiles: the
 * source lines a tile reads are reused across its rows. Tiles stay small
 * because each of their rows on either side may sit on its own page, and
 * 2 x 8 pages fit a 64-entry L1 TLB where 2 x 32 did not (measured:
 * benchmarks/README.md).
 */
#define TB_TILE 8
#define TB_TILE_MIN_STRIDE 64 /* bytes: a cache line */

/* Moves the dimension to tile with the innermost one next to it; false when
 * tiling would not help. */
static bool tb_plan_tiles(tb_copy_dim *dims, int32_t nd) {
  if (nd < 2) return false;
  const tb_copy_dim *in = &dims[nd - 1];
  if (llabs_i64(in->ss) < TB_TILE_MIN_STRIDE || in->n < TB_TILE / 2) return false;
  int32_t best = -1;
  for (int32_t k = 0; k < nd - 1; k++) {
    if (dims[k].n < 2 || llabs_i64(dims[k].ss) >= llabs_i64(in->ss)) continue;
    if (best < 0 || llabs_i64(dims[k].ss) < llabs_i64(dims[best].ss)) best = k;
  }
  if (best < 0) return false;
  tb_copy_dim row = dims[best];
  memmove(&dims[best], &dims[best + 1], (size_t)(nd - 2 - best) * sizeof *dims);
  dims[nd - 2] = row;
  return true;
}

/* Copies the 2-D block (row x in) tile by tile, each tile's rows through the
 * inner loop. */
static void tb_copy_tiles(char *src, char *dst, const tb_copy_dim *row, const tb_copy_dim *in,
                          tb_inner_fn inner, tb_cast_loop_fn cast, size_t itemsize) {
  for (int64_t i0 = 0; i0 < row->n; i0 += TB_TILE) {
    int64_t i1 = row->n - i0 < TB_TILE ? row->n : i0 + TB_TILE;
    for (int64_t j0 = 0; j0 < in->n; j0 += TB_TILE) {
      int64_t len = in->n - j0 < TB_TILE ? in->n - j0 : TB_TILE;
      for (int64_t i = i0; i < i1; i++) {
        inner(src + i * row->ss + j0 * in->ss, in->ss, dst + i * row->ds + j0 * in->ds, in->ds,
              len, cast, itemsize);
      }
    }
  }
}

/* A planned copy, ready to run whole or in chunks along dims[split]. */
typedef struct tb_copy_job {
  char *src, *dst;
  tb_copy_dim dims[TB_MAX_NDIM];
  int32_t nd;
  bool tiled;                /* dims[nd - 2] x dims[nd - 1] is one 2-D block */
  tb_transpose_fn transpose; /* for that block, when it is a plain transpose */
  tb_inner_fn inner;
  tb_cast_loop_fn cast;
  size_t itemsize; /* the source's */
  int32_t split;   /* the dimension the chunks divide */
  int64_t chunk;   /* its elements per chunk (the last one may have fewer) */
} tb_copy_job;

/* Runs the job over `dims` (the job's, or a chunk's narrower copy). Offsets
 * rather than moving pointers: no address is ever formed outside the
 * tensors, not even one step past an edge. */
static void tb_copy_run(const tb_copy_job *j, char *src, char *dst, const tb_copy_dim *dims) {
  const int32_t nd = j->nd;
  const tb_copy_dim in = dims[nd - 1];
  const int32_t outer = j->tiled ? nd - 2 : nd - 1; /* dimensions the odometer walks */
  int64_t index[TB_MAX_NDIM] = {0};
  int64_t soff = 0, doff = 0;
  for (;;) {
    if (j->transpose != NULL) {
      const tb_copy_dim *row = &dims[nd - 2];
      j->transpose(src + soff, in.ss, dst + doff, row->ds, row->n, in.n);
    } else if (j->tiled) {
      tb_copy_tiles(src + soff, dst + doff, &dims[nd - 2], &in, j->inner, j->cast, j->itemsize);
    } else {
      j->inner(src + soff, in.ss, dst + doff, in.ds, in.n, j->cast, j->itemsize);
    }
    int32_t k = outer - 1; /* odometer over the outer dimensions */
    for (; k >= 0; k--) {
      if (++index[k] < dims[k].n) {
        soff += dims[k].ss;
        doff += dims[k].ds;
        break;
      }
      soff -= dims[k].ss * (dims[k].n - 1);
      doff -= dims[k].ds * (dims[k].n - 1);
      index[k] = 0;
    }
    if (k < 0) return;
  }
}

static void tb_copy_chunk(void *arg, int64_t i) {
  const tb_copy_job *j = arg;
  tb_copy_dim dims[TB_MAX_NDIM];
  memcpy(dims, j->dims, (size_t)j->nd * sizeof *dims);
  tb_copy_dim *s = &dims[j->split];
  const int64_t begin = i * j->chunk;
  s->n = s->n - begin < j->chunk ? s->n - begin : j->chunk;
  tb_copy_run(j, j->src + begin * s->ss, j->dst + begin * s->ds, dims);
}

/*
 * Threads. A copy moving TB_PARALLEL_MIN_BYTES or more (read plus written)
 * is cut into chunks along one dimension: the outermost one with enough
 * units to go round, where a unit is one step of an outer dimension, a
 * transpose block or tile of the 2-D block, or TB_PARALLEL_RUN elements of
 * a plain inner run (whole cache lines on both sides). Several chunks per
 * thread, of at least TB_PARALLEL_CHUNK_BYTES each, let a thread that the
 * machine slows down take fewer. Only a destination whose elements are all
 * distinct is split (one with a zero stride, or overlapping strides, is
 * written in the odometer's order, the last write winning).
 */
#define TB_PARALLEL_MIN_BYTES (INT64_C(4) << 20)
#define TB_PARALLEL_CHUNK_BYTES (INT64_C(1) << 20)
#define TB_PARALLEL_CHUNKS_PER_THREAD 4
#define TB_PARALLEL_RUN 1024

/* True when no two elements of the planned destination share an address:
 * dims are sorted outermost first by destination stride (before tiling
 * reorders them), and each stride must clear everything inside it. */
static bool tb_dst_disjoint(const tb_copy_dim *dims, int32_t nd, size_t dst_item) {
  int64_t span = (int64_t)dst_item; /* bytes the inner dimensions cover */
  for (int32_t k = nd - 1; k >= 0; k--) {
    if (dims[k].ds < span) return false;
    span += (dims[k].n - 1) * dims[k].ds;
  }
  return true;
}

/* Chooses j->split and j->chunk; returns the number of chunks. */
static int64_t tb_plan_chunks(tb_copy_job *j, int64_t bytes, int32_t threads, size_t block) {
  int64_t want = bytes / TB_PARALLEL_CHUNK_BYTES;
  if (want > (int64_t)threads * TB_PARALLEL_CHUNKS_PER_THREAD) {
    want = (int64_t)threads * TB_PARALLEL_CHUNKS_PER_THREAD;
  }
  int32_t best = -1;
  int64_t best_units = 0, best_grain = 1;
  for (int32_t k = 0; k < j->nd; k++) {
    int64_t grain = 1;
    if (j->tiled && k >= j->nd - 2) {
      grain = (int64_t)block;
    } else if (!j->tiled && k == j->nd - 1) {
      grain = TB_PARALLEL_RUN;
    }
    const int64_t units = (j->dims[k].n + grain - 1) / grain;
    if (units > best_units) {
      best = k;
      best_units = units;
      best_grain = grain;
    }
    if (units >= want) break;
  }
  if (best < 0) return 1;
  const int64_t chunks = want < best_units ? want : best_units;
  if (chunks < 2) return 1;
  j->split = best;
  j->chunk = (best_units + chunks - 1) / chunks * best_grain;
  return (j->dims[best].n + j->chunk - 1) / j->chunk;
}

tb_status tb__copy_host(const tb_copy_desc *d) {
  /* Initialised for gcc, which in the single-file bundle inlines tb__dtype_lookup
   * and cannot tell that tb__fail returns a failure (maybe-uninitialized). */
  const tb_dtype_info *si = NULL, *di = NULL;
  tb_status st = tb__dtype_lookup("copy source", d->src_dtype, &si);
  if (st != TB_OK) return st;
  st = tb__dtype_lookup("copy destination", d->dst_dtype, &di);
  if (st != TB_OK) return st;
  if (d->ndim < 0 || d->ndim > TB_MAX_NDIM) {
    return tb__fail(TB_ERR_INVALID, "copy: ndim = %d is outside [0, %d]", (int)d->ndim,
                    TB_MAX_NDIM);
  }
  int64_t numel = 1;
  for (int32_t i = 0; i < d->ndim; i++) {
    if (d->shape[i] == 0) return TB_OK;
    numel *= d->shape[i]; /* within int64: the layouts were checked (core/layout.h) */
  }
  if (si->itemsize == 0 || di->itemsize == 0) return tb_copy_packed(d, si);

  /* Constness ends here: the source is only ever read through `src`. */
  tb_copy_job j;
  int64_t src_shift, dst_shift;
  j.nd = tb__copy_plan(d, si->itemsize, di->itemsize, &src_shift, &dst_shift, j.dims);
  j.src = (char *)(uintptr_t)d->src + d->src_byte_offset + src_shift;
  j.dst = (char *)d->dst + d->dst_byte_offset + dst_shift;
  j.itemsize = si->itemsize;
  j.transpose = NULL;
  st = tb_choose_inner(d, si, di, j.nd > 0 ? &j.dims[j.nd - 1] : NULL, &j.inner, &j.cast);
  if (st != TB_OK) return st;
  if (j.nd == 0) {
    j.inner(j.src, 0, j.dst, 0, 1, j.cast, si->itemsize);
    return TB_OK;
  }

  /* A destination whose elements alias keeps the plain odometer's order
   * (the last write wins, the same on every machine): no tiles, no kernel
   * with its own store order, no chunks. */
  const bool disjoint = tb_dst_disjoint(j.dims, j.nd, di->itemsize);
  j.tiled = disjoint && tb_plan_tiles(j.dims, j.nd);
  size_t block = TB_TILE;
  if (j.tiled && j.cast == NULL) {
    /* A plain transpose: unit steps on the source along the block's rows,
     * on the destination along its columns. */
    const tb_copy_dim *row = &j.dims[j.nd - 2], *in = &j.dims[j.nd - 1];
    if (row->ss == (int64_t)si->itemsize && in->ds == (int64_t)di->itemsize) {
      j.transpose = tb__transpose(si->itemsize);
      if (j.transpose != NULL) block = TB_TRANSPOSE_BLOCK_ROWS / si->itemsize;
    }
  }

  /* Each side's bytes fit int64 (core/layout.h); their sum saturates. */
  int64_t bytes;
  if (tb__add_overflows(numel * (int64_t)si->itemsize, numel * (int64_t)di->itemsize, &bytes)) {
    bytes = INT64_MAX;
  }
  int64_t chunks = 1;
  if (disjoint && bytes >= TB_PARALLEL_MIN_BYTES) {
    const int32_t threads = tb__parallel_threads();
    if (threads > 1) chunks = tb_plan_chunks(&j, bytes, threads, block);
  }
  if (chunks <= 1) {
    tb_copy_run(&j, j.src, j.dst, j.dims);
  } else {
    tb__parallel_for(chunks, tb_copy_chunk, &j);
  }
  return TB_OK;
}

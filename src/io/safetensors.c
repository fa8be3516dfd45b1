/*
 * safetensors files (see tensorbridge/safetensors.h): a reader that checks
 * the whole header once and hands out every entry as a view of one storage
 * over the file's mapping, and a writer that lays files out as the reference
 * implementation does.
 */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"
#include "io/map.h"

/* ------------------------------------------------------------------------ */
/* Dtypes                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct st_dtype {
  const char *name; /* as the header spells it */
  uint8_t length;   /* strlen(name): a header's dtype is matched without measuring each */
  uint8_t code, bits;
} st_dtype;
#define ST_DTYPE(name, code, bits) {name, sizeof(name) - 1, code, bits}

/* In the order of the reference implementation's Dtype enum, which is its
 * writer's sort key: entries go widest first (descending index), then by
 * name. */
static const st_dtype k_dtypes[] = {
    ST_DTYPE("BOOL", TB_DL_BOOL, 8),
    ST_DTYPE("F4", TB_DL_FLOAT4_E2M1FN, 4),
    ST_DTYPE("F6_E2M3", TB_DL_FLOAT6_E2M3FN, 6),
    ST_DTYPE("F6_E3M2", TB_DL_FLOAT6_E3M2FN, 6),
    ST_DTYPE("U8", TB_DL_UINT, 8),
    ST_DTYPE("I8", TB_DL_INT, 8),
    ST_DTYPE("F8_E5M2", TB_DL_FLOAT8_E5M2, 8),
    ST_DTYPE("F8_E4M3", TB_DL_FLOAT8_E4M3FN, 8),
    ST_DTYPE("F8_E8M0", TB_DL_FLOAT8_E8M0FNU, 8),
    ST_DTYPE("F8_E4M3FNUZ", TB_DL_FLOAT8_E4M3FNUZ, 8),
    ST_DTYPE("F8_E5M2FNUZ", TB_DL_FLOAT8_E5M2FNUZ, 8),
    ST_DTYPE("I16", TB_DL_INT, 16),
    ST_DTYPE("U16", TB_DL_UINT, 16),
    ST_DTYPE("F16", TB_DL_FLOAT, 16),
    ST_DTYPE("BF16", TB_DL_BFLOAT, 16),
    ST_DTYPE("I32", TB_DL_INT, 32),
    ST_DTYPE("U32", TB_DL_UINT, 32),
    ST_DTYPE("F32", TB_DL_FLOAT, 32),
    ST_DTYPE("C64", TB_DL_COMPLEX, 64),
    ST_DTYPE("F64", TB_DL_FLOAT, 64),
    ST_DTYPE("I64", TB_DL_INT, 64),
    ST_DTYPE("U64", TB_DL_UINT, 64),
};
#define ST_DTYPE_COUNT ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

static int st_dtype_by_name(const char *name, size_t length) {
  for (int i = 0; i < ST_DTYPE_COUNT; i++) {
    if (k_dtypes[i].length == length && memcmp(k_dtypes[i].name, name, length) == 0) {
      return i;
    }
  }
  return -1;
}

static int st_dtype_of(DLDataType dtype) {
  if (dtype.lanes != 1) return -1;
  for (int i = 0; i < ST_DTYPE_COUNT; i++) {
    if (k_dtypes[i].code == dtype.code && k_dtypes[i].bits == dtype.bits) return i;
  }
  return -1;
}

static DLDataType st_dl_dtype(int index) {
  return (DLDataType){k_dtypes[index].code, k_dtypes[index].bits, 1};
}

/* ------------------------------------------------------------------------ */
/* The handle                                                               */
/* ------------------------------------------------------------------------ */

typedef struct st_entry {
  const char *name; /* in the string arena */
  uint64_t begin, end;
  int64_t order;    /* its position in the header */
  size_t dims;      /* where its shape starts in the dims pool */
  int32_t ndim;
  int32_t dtype;    /* index in k_dtypes */
} st_entry;

typedef struct st_meta {
  const char *key, *value;
} st_meta;

struct tb_safetensors {
  tb_allocator allocator;
  tb_tensor_t *base;          /* uint8 over all the bytes; its storage owns the mapping */
  const unsigned char *bytes; /* the file's first byte */
  size_t size;
  uint64_t data_start; /* 8 + N */
  uint64_t data_size;
  st_entry *entries; /* by offset */
  int64_t count;
  size_t entries_cap;
  const st_entry **by_name; /* the entries sorted by name */
  int64_t *dims;
  size_t dims_len, dims_cap;
  st_meta *meta; /* sorted by key */
  int64_t meta_count;
  size_t meta_cap;
  char *strings; /* decoded names, keys and values, each '\0'-terminated */
  size_t strings_used, strings_cap;
};

/* Frees p (cap elements of elem bytes) when there is one. */
static void st_free_array(const tb_allocator *a, void *p, size_t cap, size_t elem) {
  if (p != NULL) tb__free(a, p, cap * elem);
}

/* Grows *p (*cap elements of elem bytes, len of them used) to hold at least
 * need elements. */
static bool st_grow(const tb_allocator *a, void **p, size_t *cap, size_t len, size_t elem,
                    size_t need, const char *what) {
  if (need <= *cap) return true;
  size_t n = *cap < 8 ? 8 : *cap;
  while (n < need) n *= 2;
  void *q = tb__alloc(a, n * elem, 16, what);
  if (q == NULL) return false;
  if (len > 0) memcpy(q, *p, len * elem);
  st_free_array(a, *p, *cap, elem);
  *p = q;
  *cap = n;
  return true;
}

static void st_free(tb_safetensors *f) {
  const tb_allocator *a = &f->allocator;
  st_free_array(a, f->entries, f->entries_cap, sizeof *f->entries);
  st_free_array(a, (void *)f->by_name, f->entries_cap, sizeof *f->by_name);
  st_free_array(a, f->dims, f->dims_cap, sizeof *f->dims);
  st_free_array(a, f->meta, f->meta_cap, sizeof *f->meta);
  st_free_array(a, f->strings, f->strings_cap, 1);
  tb_tensor_release(f->base);
  tb_allocator allocator = f->allocator;
  tb__free(&allocator, f, sizeof *f);
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* A name as messages show it: quoted, control characters escaped, cut
 * after about 64 bytes (at a character boundary when it is UTF-8; a
 * caller's lookup string need not be). */
#define ST_QUOTE_SIZE 96
static const char *st_quote(char buf[ST_QUOTE_SIZE], const char *s, size_t length) {
  size_t o = 0;
  buf[o++] = '\'';
  for (size_t i = 0; i < length; i++) {
    const unsigned char c = (unsigned char)s[i];
    if (o > 64 && ((c & 0xC0) != 0x80 || o > 80)) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (c < 0x20 || c == 0x7F) {
      o += (size_t)snprintf(buf + o, ST_QUOTE_SIZE - o, "\\u%04x", (unsigned)c);
    } else if (c == '\'' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o++] = '\'';
  buf[o] = '\0';
  return buf;
}

/* A number literal of the header as written, cut to 40 bytes. */
static const char *st_literal(char buf[48], const tb__json *j, const tb__json_number *n) {
  const size_t len = n->length > 40 ? 40 : n->length;
  memcpy(buf, j->start + n->at, len);
  strcpy(buf + len, n->length > 40 ? "..." : "");
  return buf;
}

/* "[2, 3]", cut to fit. */
static const char *st_shape_text(char buf[128], int32_t ndim, const int64_t *shape) {
  size_t o = 0;
  buf[o++] = '[';
  for (int32_t d = 0; d < ndim; d++) {
    if (o > 100) {
      strcpy(buf + o, ", ...");
      o += 5;
      break;
    }
    o += (size_t)snprintf(buf + o, 128 - o, "%s%" PRId64, d == 0 ? "" : ", ", shape[d]);
  }
  buf[o++] = ']';
  buf[o] = '\0';
  return buf;
}

/*
 * Where a value sits in the header, for messages ("entry 'a': shape[1]").
 * The parser hands this down rather than a worded subject and words it only
 * in a failure branch: a valid header is read without formatting anything
 * (wording each entry's subjects up front took a third of the time).
 */
typedef enum st_part {
  ST_AT_METADATA, /* "__metadata__" itself, or with a name its item */
  ST_AT_ENTRY,
  ST_AT_DTYPE,
  ST_AT_SHAPE,
  ST_AT_OFFSETS,
} st_part;

typedef struct st_at {
  const char *name; /* the entry's name or the metadata key; NULL for "__metadata__" */
  size_t length;
  st_part part;
  int index; /* the element of shape or data_offsets; -1 for the whole */
} st_at;

static st_at st_at_part(const st_at *entry, st_part part, int index) {
  return (st_at){entry->name, entry->length, part, index};
}

/* The subject as messages word it: "entry 'a'", "entry 'a': shape[1]",
 * "\"__metadata__\" item 'k'". The size holds the longest, a quoted name
 * with ": data_offsets[<int>]". */
#define ST_SUBJECT_SIZE (ST_QUOTE_SIZE + 48)
static const char *st_subject(char buf[ST_SUBJECT_SIZE], const st_at *at) {
  static const char *const fields[] = {
      [ST_AT_ENTRY] = "", [ST_AT_DTYPE] = ": dtype", [ST_AT_SHAPE] = ": shape",
      [ST_AT_OFFSETS] = ": data_offsets"};
  char q[ST_QUOTE_SIZE];
  if (at->part == ST_AT_METADATA) {
    if (at->name == NULL) return strcpy(buf, "\"__metadata__\"");
    snprintf(buf, ST_SUBJECT_SIZE, "\"__metadata__\" item %s", st_quote(q, at->name, at->length));
    return buf;
  }
  int n = snprintf(buf, ST_SUBJECT_SIZE, "entry %s%s", st_quote(q, at->name, at->length),
                   fields[at->part]);
  if (at->index >= 0) snprintf(buf + n, ST_SUBJECT_SIZE - (size_t)n, "[%d]", at->index);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* Reading the header                                                       */
/* ------------------------------------------------------------------------ */

typedef struct st_parser {
  tb_safetensors *f;
  const char *what;
  tb__json j;
} st_parser;

static tb_status st_json_error(st_parser *p) {
  return tb__fail(TB_ERR_FORMAT, "%s: the header is not valid JSON: %s (at header byte %zu)",
                  p->what, p->j.error != NULL ? p->j.error : "unexpected input", p->j.error_at);
}

/* Fails with "<what>: <the subject at `at`><fmt's text>". The text's buffer
 * is as large as the message's, so it is cut only where the message is. */
static tb_status st_fail_at(const st_parser *p, const st_at *at, tb_status status,
                            const char *fmt, ...) TB_PRINTF(4, 5);
static tb_status st_fail_at(const st_parser *p, const st_at *at, tb_status status,
                            const char *fmt, ...) {
  char subject[ST_SUBJECT_SIZE], text[TB__ERROR_SAVE_CAPACITY];
  va_list args;
  va_start(args, fmt);
  (void)vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  return tb__fail(status, "%s: %s%s", p->what, st_subject(subject, at), text);
}

/* Decodes the next string into the arena without keeping it (the next
 * decode overwrites it) unless st_keep follows. */
static tb_status st_string(st_parser *p, bool key, const char **out, size_t *length) {
  tb_safetensors *f = p->f;
  char *at = f->strings + f->strings_used;
  const size_t room = f->strings_cap - f->strings_used;
  bool ok = key ? tb__json_key(&p->j, at, room, length) : tb__json_string(&p->j, at, room, length);
  if (!ok) return st_json_error(p);
  *out = at;
  return TB_OK;
}

static void st_keep(st_parser *p, size_t length) { p->f->strings_used += length + 1; }

/* Fails unless the next value is of type want (described as `as`). */
static tb_status st_expect(st_parser *p, tb__json_type want, const st_at *at, const char *as) {
  tb__json_type t = tb__json_peek(&p->j);
  if (t == want) return TB_OK;
  if (t == TB__JSON_NONE) return st_json_error(p);
  return st_fail_at(p, at, TB_ERR_FORMAT, " is %s, not %s", tb__json_type_name(t), as);
}

static tb_status st_read_metadata(st_parser *p) {
  tb_safetensors *f = p->f;
  tb__json_type t = tb__json_peek(&p->j);
  if (t == TB__JSON_NULL) { /* the reference reads null as "no metadata" */
    return tb__json_skip(&p->j) ? TB_OK : st_json_error(p);
  }
  const st_at metadata = {NULL, 0, ST_AT_METADATA, -1};
  tb_status st = st_expect(p, TB__JSON_OBJECT, &metadata, "an object of strings");
  if (st != TB_OK) return st;
  if (!tb__json_begin(&p->j, '{')) return st_json_error(p);
  bool first = true, more;
  while (tb__json_next(&p->j, '}', &first, &more) && more) {
    /* Set by st_string on success; initialised for GCC's flow analysis. */
    const char *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0;
    char q[ST_QUOTE_SIZE], subject[ST_SUBJECT_SIZE];
    if ((st = st_string(p, true, &key, &key_len)) != TB_OK) return st;
    if (strlen(key) != key_len) {
      return tb__fail(TB_ERR_UNSUPPORTED,
                      "%s: the \"__metadata__\" key %s holds U+0000, which C strings cannot hold",
                      p->what, st_quote(q, key, key_len));
    }
    st_keep(p, key_len);
    const st_at item = {key, key_len, ST_AT_METADATA, -1};
    if ((st = st_expect(p, TB__JSON_STRING, &item, "a string")) != TB_OK) return st;
    if ((st = st_string(p, false, &value, &value_len)) != TB_OK) return st;
    if (strlen(value) != value_len) {
      return tb__fail(TB_ERR_UNSUPPORTED,
                      "%s: the value of %s holds U+0000, which C strings cannot hold", p->what,
                      st_subject(subject, &item));
    }
    st_keep(p, value_len);
    if (!st_grow(&f->allocator, (void **)&f->meta, &f->meta_cap, (size_t)f->meta_count,
                 sizeof *f->meta, (size_t)f->meta_count + 1, p->what)) {
      return TB_ERR_NOMEM;
    }
    f->meta[f->meta_count++] = (st_meta){key, value};
  }
  return p->j.error != NULL ? st_json_error(p) : TB_OK;
}

/* A non-negative integer of the header, in [0, max]. */
static tb_status st_integer(st_parser *p, const st_at *at, uint64_t max, tb_status too_big,
                            const char *too_big_text, uint64_t *out) {
  tb_status st = st_expect(p, TB__JSON_NUMBER, at, "an integer");
  if (st != TB_OK) return st;
  tb__json_number n;
  if (!tb__json_read_number(&p->j, &n)) return st_json_error(p);
  if (n.integer && !n.negative && n.fits && n.value <= max) {
    *out = n.value;
    return TB_OK;
  }
  char lit[48];
  st_literal(lit, &p->j, &n);
  if (!n.integer) return st_fail_at(p, at, TB_ERR_FORMAT, " = %s is not an integer", lit);
  if (n.negative) {
    return st_fail_at(p, at, TB_ERR_FORMAT, " = %s is %s", lit,
                      n.fits && n.value == 0 ? "not a plain 0 (it has a minus sign)" : "negative");
  }
  return st_fail_at(p, at, too_big, " = %s %s", lit, too_big_text);
}

typedef struct st_fields {
  int dtype;
  int32_t ndim;
  int64_t shape[TB_MAX_NDIM];
  int offsets_count;
  uint64_t offsets[2];
} st_fields;

static tb_status st_read_dtype(st_parser *p, const st_at *entry, st_fields *e) {
  const st_at at = st_at_part(entry, ST_AT_DTYPE, -1);
  tb_status st = st_expect(p, TB__JSON_STRING, &at, "a string");
  if (st != TB_OK) return st;
  const char *name = NULL;
  size_t length = 0;
  if ((st = st_string(p, false, &name, &length)) != TB_OK) return st;
  e->dtype = st_dtype_by_name(name, length);
  if (e->dtype < 0) {
    char dq[ST_QUOTE_SIZE];
    return st_fail_at(p, &at, TB_ERR_DTYPE, " %s is not a safetensors dtype this library knows",
                      st_quote(dq, name, length));
  }
  return TB_OK;
}

static tb_status st_read_shape(st_parser *p, const st_at *entry, st_fields *e) {
  const st_at at = st_at_part(entry, ST_AT_SHAPE, -1);
  tb_status st = st_expect(p, TB__JSON_ARRAY, &at, "an array of integers");
  if (st != TB_OK) return st;
  if (!tb__json_begin(&p->j, '[')) return st_json_error(p);
  bool first = true, more;
  e->ndim = 0;
  while (tb__json_next(&p->j, ']', &first, &more) && more) {
    if (e->ndim == TB_MAX_NDIM) {
      return st_fail_at(p, &at, TB_ERR_UNSUPPORTED,
                        " has more than %d dimensions (the library's TB_MAX_NDIM)", TB_MAX_NDIM);
    }
    const st_at element = st_at_part(entry, ST_AT_SHAPE, (int)e->ndim);
    uint64_t v;
    st = st_integer(p, &element, (uint64_t)INT64_MAX, TB_ERR_OVERFLOW, "does not fit in int64",
                    &v);
    if (st != TB_OK) return st;
    e->shape[e->ndim++] = (int64_t)v;
  }
  return p->j.error != NULL ? st_json_error(p) : TB_OK;
}

static tb_status st_read_offsets(st_parser *p, const st_at *entry, st_fields *e) {
  const st_at at = st_at_part(entry, ST_AT_OFFSETS, -1);
  tb_status st = st_expect(p, TB__JSON_ARRAY, &at, "an array [begin, end]");
  if (st != TB_OK) return st;
  if (!tb__json_begin(&p->j, '[')) return st_json_error(p);
  bool first = true, more;
  e->offsets_count = 0;
  while (tb__json_next(&p->j, ']', &first, &more) && more) {
    if (e->offsets_count == 2) {
      return st_fail_at(p, &at, TB_ERR_FORMAT,
                        " has more than 2 elements (it must be [begin, end])");
    }
    const st_at element = st_at_part(entry, ST_AT_OFFSETS, e->offsets_count);
    uint64_t v;
    st = st_integer(p, &element, UINT64_MAX, TB_ERR_FORMAT,
                    "lies beyond the data section (it does not fit in 64 bits)", &v);
    if (st != TB_OK) return st;
    e->offsets[e->offsets_count++] = v;
  }
  if (p->j.error != NULL) return st_json_error(p);
  if (e->offsets_count != 2) {
    return st_fail_at(p, &at, TB_ERR_FORMAT, " has %d element%s, not 2 (it must be [begin, end])",
                      e->offsets_count, e->offsets_count == 1 ? "" : "s");
  }
  return TB_OK;
}

/* The checks one entry passes on its own: its range, its layout, its size. */
static tb_status st_check_entry(st_parser *p, const st_at *entry, const st_fields *e) {
  const uint64_t begin = e->offsets[0], end = e->offsets[1];
  const uint64_t data_size = p->f->data_size;
  const st_at offsets = st_at_part(entry, ST_AT_OFFSETS, -1);
  if (begin > end) {
    return st_fail_at(p, &offsets, TB_ERR_FORMAT,
                      " = [%" PRIu64 ", %" PRIu64 "] end before they begin", begin, end);
  }
  if (end > data_size) {
    return st_fail_at(p, &offsets, TB_ERR_FORMAT,
                      " = [%" PRIu64 ", %" PRIu64 "] run past the data section (%" PRIu64
                      " bytes)",
                      begin, end, data_size);
  }
  const DLDataType dtype = st_dl_dtype(e->dtype);
  int64_t strides[TB_MAX_NDIM];
  tb__contiguous_strides(e->ndim, e->shape, TB_ORDER_C, strides);
  tb_extent x;
  if (tb__layout_extent(p->what, dtype, e->ndim, e->shape, strides, &x) != TB_OK) {
    /* It words its message with the `what` it is given: the entry's is
     * formatted only now, and the check run again to word the message. */
    char subject[ST_SUBJECT_SIZE], what[ST_QUOTE_SIZE + 320];
    snprintf(what, sizeof what, "%s: %s", p->what, st_subject(subject, entry));
    return tb__layout_extent(what, dtype, e->ndim, e->shape, strides, &x);
  }
  const int64_t bits = k_dtypes[e->dtype].bits;
  if (bits < 8 && (x.numel * bits) % 8 != 0) { /* numel * bits fits: layout checked it */
    return st_fail_at(p, entry, TB_ERR_FORMAT,
                      ": %" PRId64 " elements of %s make %" PRId64
                      " bits, not a whole number of bytes",
                      x.numel, k_dtypes[e->dtype].name, x.numel * bits);
  }
  if ((uint64_t)x.nbytes != end - begin) {
    char shape[128];
    return st_fail_at(p, &offsets, TB_ERR_FORMAT,
                      " = [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                      " bytes, but %s of shape %s takes %" PRId64,
                      begin, end, end - begin, k_dtypes[e->dtype].name,
                      st_shape_text(shape, e->ndim, e->shape), x.nbytes);
  }
  return TB_OK;
}

enum { ST_DTYPE = 1, ST_SHAPE = 2, ST_OFFSETS = 4 };

/* The field an entry's key names, or 0. The lengths tell the three apart,
 * so each key is compared with at most one of them. */
static int st_field_of(const char *key, size_t length) {
  if (length == 5 && memcmp(key, "dtype", 5) == 0) return ST_DTYPE;
  if (length == 5 && memcmp(key, "shape", 5) == 0) return ST_SHAPE;
  if (length == 12 && memcmp(key, "data_offsets", 12) == 0) return ST_OFFSETS;
  return 0;
}

static tb_status st_read_entry(st_parser *p, const char *name, size_t name_len, int64_t order) {
  tb_safetensors *f = p->f;
  const st_at entry = {name, name_len, ST_AT_ENTRY, -1};
  tb_status st = st_expect(p, TB__JSON_OBJECT, &entry,
                           "an object with dtype, shape and data_offsets");
  if (st != TB_OK) return st;
  if (!tb__json_begin(&p->j, '{')) return st_json_error(p);
  /* The shape is written up to ndim: zeroing all TB_MAX_NDIM of it for
   * every entry showed in profiles. */
  st_fields e;
  e.dtype = 0;
  e.ndim = 0;
  e.offsets_count = 0;
  int seen = 0;
  bool first = true, more;
  while (tb__json_next(&p->j, '}', &first, &more) && more) {
    const char *field = NULL;
    size_t field_len = 0;
    if ((st = st_string(p, true, &field, &field_len)) != TB_OK) return st;
    const int which = st_field_of(field, field_len);
    if (which == 0) {
      char fq[ST_QUOTE_SIZE];
      return st_fail_at(p, &entry, TB_ERR_FORMAT,
                        " has an unknown field %s (only dtype, shape and data_offsets are "
                        "allowed)",
                        st_quote(fq, field, field_len));
    }
    if (seen & which) {
      return st_fail_at(p, &entry, TB_ERR_FORMAT, " has the field '%s' twice", field);
    }
    seen |= which;
    st = which == ST_DTYPE ? st_read_dtype(p, &entry, &e)
         : which == ST_SHAPE ? st_read_shape(p, &entry, &e)
                             : st_read_offsets(p, &entry, &e);
    if (st != TB_OK) return st;
  }
  if (p->j.error != NULL) return st_json_error(p);
  if (seen != (ST_DTYPE | ST_SHAPE | ST_OFFSETS)) {
    return st_fail_at(p, &entry, TB_ERR_FORMAT, " has no %s",
                      !(seen & ST_DTYPE) ? "dtype" : !(seen & ST_SHAPE) ? "shape" : "data_offsets");
  }
  if ((st = st_check_entry(p, &entry, &e)) != TB_OK) return st;
  if (!st_grow(&f->allocator, (void **)&f->dims, &f->dims_cap, f->dims_len, sizeof *f->dims,
               f->dims_len + (size_t)e.ndim, p->what)) {
    return TB_ERR_NOMEM;
  }
  if (e.ndim > 0) memcpy(f->dims + f->dims_len, e.shape, (size_t)e.ndim * sizeof *f->dims);
  f->entries[f->count++] = (st_entry){
      .name = name,
      .begin = e.offsets[0],
      .end = e.offsets[1],
      .order = order,
      .dims = f->dims_len,
      .ndim = e.ndim,
      .dtype = e.dtype,
  };
  f->dims_len += (size_t)e.ndim;
  return TB_OK;
}

/* The members of the root object: "__metadata__" and the entries. */
static tb_status st_read_root(st_parser *p) {
  tb_safetensors *f = p->f;
  if (!tb__json_begin(&p->j, '{')) return st_json_error(p);
  bool first = true, more, has_metadata = false;
  int64_t order = 0;
  tb_status st;
  while (tb__json_next(&p->j, '}', &first, &more) && more) {
    const char *key = NULL;
    size_t key_len = 0;
    if ((st = st_string(p, true, &key, &key_len)) != TB_OK) return st;
    if (key_len == 12 && memcmp(key, "__metadata__", 12) == 0) {
      if (has_metadata) {
        return tb__fail(TB_ERR_FORMAT, "%s: the header has \"__metadata__\" twice", p->what);
      }
      has_metadata = true;
      if ((st = st_read_metadata(p)) != TB_OK) return st;
      continue;
    }
    if (strlen(key) != key_len) {
      char q[ST_QUOTE_SIZE];
      return tb__fail(TB_ERR_UNSUPPORTED,
                      "%s: the entry name %s holds U+0000, which C strings cannot hold", p->what,
                      st_quote(q, key, key_len));
    }
    st_keep(p, key_len);
    if (f->count == (int64_t)f->entries_cap) return st_json_error(p); /* validate counted them */
    if ((st = st_read_entry(p, key, key_len, order++)) != TB_OK) return st;
  }
  return p->j.error != NULL ? st_json_error(p) : TB_OK;
}

/* ---- sorting and the checks across entries ---- */

static int st_by_offset(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int st_by_name(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  int c = strcmp(x->name, y->name);
  if (c != 0) return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int st_by_key(const void *a, const void *b) {
  return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

/* qsort, skipped where the array is in order already: the reference writer
 * lists entries in offset order, and often in name order too. The entries'
 * orders are total (ties go by position), so nothing changes; metadata keys
 * that tie are an error either way. */
static void st_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  const char *b = base;
  for (size_t i = 1; i < n; i++) {
    if (cmp(b + (i - 1) * size, b + i * size) > 0) {
      qsort(base, n, size, cmp);
      return;
    }
  }
}

/* Sorted by offset, the entries must tile the data section. */
static tb_status st_check_coverage(st_parser *p) {
  const tb_safetensors *f = p->f;
  uint64_t reached = 0;
  const st_entry *prev = NULL;
  char q[ST_QUOTE_SIZE], pq[ST_QUOTE_SIZE];
  for (int64_t i = 0; i < f->count; i++) {
    const st_entry *e = &f->entries[i];
    if (e->begin < reached) {
      return tb__fail(TB_ERR_FORMAT,
                      "%s: entries %s [%" PRIu64 ", %" PRIu64 ") and %s [%" PRIu64 ", %" PRIu64
                      ") overlap",
                      p->what, st_quote(pq, prev->name, strlen(prev->name)), prev->begin,
                      prev->end, st_quote(q, e->name, strlen(e->name)), e->begin, e->end);
    }
    if (e->begin > reached) {
      return tb__fail(TB_ERR_FORMAT,
                      "%s: bytes [%" PRIu64 ", %" PRIu64
                      ") of the data section belong to no entry (a hole before entry %s)",
                      p->what, reached, e->begin, st_quote(q, e->name, strlen(e->name)));
    }
    reached = e->end;
    prev = e;
  }
  if (reached != f->data_size) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: bytes [%" PRIu64 ", %" PRIu64
                    ") of the data section belong to no entry (after the last)",
                    p->what, reached, f->data_size);
  }
  return TB_OK;
}

static tb_status st_sort(st_parser *p) {
  tb_safetensors *f = p->f;
  char q[ST_QUOTE_SIZE];
  st_qsort(f->meta, (size_t)f->meta_count, sizeof *f->meta, st_by_key);
  for (int64_t i = 1; i < f->meta_count; i++) {
    if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0) {
      return tb__fail(TB_ERR_FORMAT, "%s: \"__metadata__\" has the key %s twice", p->what,
                      st_quote(q, f->meta[i].key, strlen(f->meta[i].key)));
    }
  }
  st_qsort(f->entries, (size_t)f->count, sizeof *f->entries, st_by_offset);
  for (int64_t i = 0; i < f->count; i++) f->by_name[i] = &f->entries[i];
  st_qsort((void *)f->by_name, (size_t)f->count, sizeof *f->by_name, st_by_name);
  for (int64_t i = 1; i < f->count; i++) {
    const char *a = f->by_name[i - 1]->name, *b = f->by_name[i]->name;
    if (strcmp(a, b) == 0) {
      return tb__fail(TB_ERR_FORMAT, "%s: entry %s appears twice in the header", p->what,
                      st_quote(q, b, strlen(b)));
    }
  }
  return st_check_coverage(p);
}

/* The header length N of a file of `size` bytes, from its first 8 bytes
 * (`length`, read only when size >= 8), checked against the limit and the
 * size. */
static tb_status st_header_length(const char *what, const unsigned char *length, size_t size,
                                  uint64_t *out) {
  if (size < 8) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: %zu bytes are too few for a safetensors file (it starts with an 8-byte "
                    "header length)",
                    what, size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | length[i];
  if (n > TB_SAFETENSORS_MAX_HEADER) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the header length %" PRIu64 " is above the limit of %d bytes", what, n,
                    TB_SAFETENSORS_MAX_HEADER);
  }
  if (n > size - 8) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the header length %" PRIu64
                    " runs past the end of the file (%zu bytes after the length)",
                    what, n, size - 8);
  }
  *out = n;
  return TB_OK;
}

/* Reads and checks the n-byte header of f's f->size bytes, from `header`
 * (a copy of them or the bytes themselves: f keeps no pointer into it). */
static tb_status st_read(tb_safetensors *f, const char *what, const unsigned char *header,
                         uint64_t n) {
  f->data_start = 8 + n;
  f->data_size = (uint64_t)f->size - f->data_start;
  size_t bad;
  if (!tb__utf8_valid(header, (size_t)n, &bad)) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the header is not valid UTF-8 (byte 0x%02x at header byte %zu)", what,
                    (unsigned)header[bad], bad);
  }
  if (n == 0 || header[0] != '{') {
    return tb__fail(TB_ERR_FORMAT, "%s: the header does not start with '{' (%s)", what,
                    n == 0 ? "it is empty" : "a JSON object must come first");
  }
  st_parser p = {.f = f, .what = what};
  tb__json_init(&p.j, header, (size_t)n);
  size_t members;
  if (!tb__json_validate(&p.j, &members)) return st_json_error(&p);
  /* Every decoded string, with its '\0', is no longer than the string as
   * written, so the header's length holds them all. */
  f->strings = tb__alloc(&f->allocator, (size_t)n, 16, what);
  if (f->strings == NULL) return TB_ERR_NOMEM;
  f->strings_cap = (size_t)n;
  if (members > 0) {
    /* On failure st_free frees whichever of the two was allocated. */
    f->entries = tb__alloc(&f->allocator, members * sizeof *f->entries, 16, what);
    f->by_name = tb__alloc(&f->allocator, members * sizeof *f->by_name, 16, what);
    f->entries_cap = members;
    if (f->entries == NULL || f->by_name == NULL) return TB_ERR_NOMEM;
  }
  tb_status st = st_read_root(&p);
  if (st != TB_OK) return st;
  return st_sort(&p);
}

/* A new handle for `size` bytes, with the current allocator; no base and
 * nothing read yet. */
static tb_status st_new(const char *what, size_t size, tb_safetensors **out) {
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  if (size > (size_t)INT64_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: %zu bytes exceed int64", what, size);
  }
  tb_safetensors *f = tb__alloc(&allocator, sizeof *f, _Alignof(tb_safetensors), what);
  if (f == NULL) return TB_ERR_NOMEM;
  memset(f, 0, sizeof *f);
  f->allocator = allocator;
  f->size = size;
  *out = f;
  return TB_OK;
}

/* Gives f its bytes and base, a uint8 tensor over bytes[0, f->size) whose
 * storage owns `mapping` (for a file; NULL for a caller's buffer). On
 * failure the mapping is unmapped. */
static tb_status st_set_base(tb_safetensors *f, const char *what, const void *bytes,
                             tb__mapping *mapping) {
  f->bytes = bytes;
  const int64_t extent = (int64_t)f->size;
  tb_status st = tb__wrap(what, (void *)(uintptr_t)bytes, 0, tb_dtype(kDLUInt, 8), 1, &extent,
                          NULL, (DLDevice){kDLCPU, 0}, TB_FLAG_READONLY,
                          mapping != NULL ? tb__mapping_delete : NULL, mapping, &f->base);
  if (st != TB_OK && mapping != NULL) tb__mapping_delete(mapping->base, mapping);
  return st;
}

/* Reads and checks the header of `file` (of f->size bytes) with pread,
 * then maps the file as f's base. Nothing of the mapping is touched: the
 * entries' pages fault in only when their data is read. */
static tb_status st_open_file(tb_safetensors *f, const char *what, const tb__file *file) {
  unsigned char length[8];
  uint64_t n = 0;
  tb_status st = f->size < 8 ? TB_OK : tb__file_read(file, 0, length, sizeof length);
  if (st == TB_OK) st = st_header_length(what, length, f->size, &n);
  if (st != TB_OK) return st;
  const size_t cap = n > 0 ? (size_t)n : 1;
  unsigned char *header = tb__alloc(&f->allocator, cap, 16, what);
  if (header == NULL) return TB_ERR_NOMEM;
  st = tb__file_read(file, 8, header, (size_t)n);
  if (st == TB_OK) st = st_read(f, what, header, n);
  tb__free(&f->allocator, header, cap);
  if (st != TB_OK) return st;
  tb__mapping *m;
  st = tb__file_map(file, &m);
  if (st != TB_OK) return st;
  return st_set_base(f, what, m->base, m);
}

TB_API tb_status tb_safetensors_open(const char *path, tb_safetensors **out) {
  if (path == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "safetensors_open: %s is NULL", path == NULL ? "path" : "out");
  }
  char what[256];
  snprintf(what, sizeof what, "safetensors_open: %.200s", path);
  tb__file file;
  /* tb__file_open names the path itself. */
  tb_status st = tb__file_open("safetensors_open", path, TB_MAP_READ, &file);
  if (st != TB_OK) return st;
  tb_safetensors *f;
  st = st_new(what, (size_t)file.size, &f);
  if (st == TB_OK) {
    st = st_open_file(f, what, &file);
    if (st == TB_OK) {
      *out = f;
    } else {
      st_free(f); /* the last reference to the mapping, if any: it goes now */
    }
  }
  tb__file_close(&file);
  return st;
}

TB_API tb_status tb_safetensors_parse(const void *data, size_t size, tb_safetensors **out) {
  static const char what[] = "safetensors_parse";
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  if (data == NULL && size > 0) {
    return tb__fail(TB_ERR_INVALID, "%s: data is NULL but size = %zu", what, size);
  }
  tb_safetensors *f;
  tb_status st = st_new(what, size, &f);
  if (st != TB_OK) return st;
  uint64_t n = 0;
  st = st_set_base(f, what, data, NULL);
  if (st == TB_OK) st = st_header_length(what, f->bytes, size, &n);
  if (st == TB_OK) st = st_read(f, what, f->bytes + 8, n);
  if (st != TB_OK) {
    st_free(f);
    return st;
  }
  *out = f;
  return TB_OK;
}

TB_API void tb_safetensors_close(tb_safetensors *f) {
  if (f != NULL) st_free(f);
}

/* ------------------------------------------------------------------------ */
/* Queries and entries                                                      */
/* ------------------------------------------------------------------------ */

TB_API int64_t tb_safetensors_count(const tb_safetensors *f) { return f != NULL ? f->count : 0; }

TB_API const char *tb_safetensors_name(const tb_safetensors *f, int64_t index) {
  if (f == NULL || index < 0 || index >= f->count) return NULL;
  return f->entries[index].name;
}

/* bsearch's comparisons of a name with by_name's entries and of a key
 * with meta's. */
static int st_name_vs_entry(const void *name, const void *entry) {
  return strcmp(name, (*(const st_entry *const *)entry)->name);
}

static int st_key_vs_meta(const void *key, const void *meta) {
  return strcmp(key, ((const st_meta *)meta)->key);
}

static tb_status st_find(const char *what, const tb_safetensors *f, const char *name,
                         int64_t *index) {
  /* by_name is NULL when there is no entry. */
  const st_entry *const *hit =
      f->count == 0 ? NULL
                    : bsearch(name, f->by_name, (size_t)f->count, sizeof *f->by_name,
                              st_name_vs_entry);
  if (hit != NULL) {
    *index = *hit - f->entries;
    return TB_OK;
  }
  char q[ST_QUOTE_SIZE];
  return tb__fail(TB_ERR_INDEX, "%s: no entry is named %s (the file has %" PRId64 " entr%s)",
                  what, st_quote(q, name, strlen(name)), f->count, f->count == 1 ? "y" : "ies");
}

TB_API tb_status tb_safetensors_find(const tb_safetensors *f, const char *name, int64_t *index) {
  static const char what[] = "safetensors_find";
  if (f == NULL || name == NULL || index == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what,
                    f == NULL ? "f" : name == NULL ? "name" : "index");
  }
  return st_find(what, f, name, index);
}

/* The entry as a tensor: a view of the base storage, or for misaligned
 * data a read-only copy. */
static tb_status st_entry_tensor(const char *what, const tb_safetensors *f, const st_entry *e,
                                 tb_tensor_t **out) {
  /* No pool at all when every entry is a scalar. */
  const int64_t *shape = e->ndim > 0 ? f->dims + e->dims : NULL;
  int64_t strides[TB_MAX_NDIM];
  tb__contiguous_strides(e->ndim, shape, TB_ORDER_C, strides);
  const DLDataType dtype = st_dl_dtype(e->dtype);
  const uint64_t offset = f->data_start + e->begin;
  const size_t itemsize = tb_dtype_itemsize(dtype);
  const uintptr_t address = (uintptr_t)(f->bytes + offset);
  if (e->end > e->begin && itemsize > 1 && address % itemsize != 0) {
    tb_tensor_t *t;
    tb_status st = tb_tensor_empty(dtype, e->ndim, shape, (DLDevice){kDLCPU, 0}, TB_ORDER_C, &t);
    if (st != TB_OK) return st;
    memcpy(tb_tensor_data(t), f->bytes + offset, (size_t)(e->end - e->begin));
    t->flags |= TB_FLAG_READONLY;
    *out = t;
    return TB_OK;
  }
  return tb__tensor_make(what, f->base->storage, dtype, e->ndim, shape, strides, offset,
                         TB_FLAG_READONLY, false, out);
}

TB_API tb_status tb_safetensors_get(const tb_safetensors *f, const char *name,
                                    tb_tensor_t **out) {
  static const char what[] = "safetensors_get";
  if (f == NULL || name == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what,
                    f == NULL ? "f" : name == NULL ? "name" : "out");
  }
  int64_t index;
  tb_status st = st_find(what, f, name, &index);
  if (st != TB_OK) return st;
  return st_entry_tensor(what, f, &f->entries[index], out);
}

TB_API tb_status tb_safetensors_get_index(const tb_safetensors *f, int64_t index,
                                          tb_tensor_t **out) {
  static const char what[] = "safetensors_get_index";
  if (f == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, f == NULL ? "f" : "out");
  }
  if (index < 0 || index >= f->count) {
    return tb__fail(TB_ERR_INDEX, "%s: index = %" PRId64 " is outside [0, %" PRId64 ")", what,
                    index, f->count);
  }
  return st_entry_tensor(what, f, &f->entries[index], out);
}

TB_API int64_t tb_safetensors_metadata_count(const tb_safetensors *f) {
  return f != NULL ? f->meta_count : 0;
}

TB_API const char *tb_safetensors_metadata_key(const tb_safetensors *f, int64_t index) {
  if (f == NULL || index < 0 || index >= f->meta_count) return NULL;
  return f->meta[index].key;
}

TB_API const char *tb_safetensors_metadata_value(const tb_safetensors *f, int64_t index) {
  if (f == NULL || index < 0 || index >= f->meta_count) return NULL;
  return f->meta[index].value;
}

TB_API tb_status tb_safetensors_metadata_get(const tb_safetensors *f, const char *key,
                                             const char **value) {
  static const char what[] = "safetensors_metadata_get";
  if (f == NULL || key == NULL || value == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what,
                    f == NULL ? "f" : key == NULL ? "key" : "value");
  }
  /* meta is NULL when there is no metadata. */
  const st_meta *hit = f->meta_count == 0 ? NULL
                                          : bsearch(key, f->meta, (size_t)f->meta_count,
                                                    sizeof *f->meta, st_key_vs_meta);
  if (hit != NULL) {
    *value = hit->value;
    return TB_OK;
  }
  char q[ST_QUOTE_SIZE];
  return tb__fail(TB_ERR_INDEX, "%s: the metadata has no key %s", what,
                  st_quote(q, key, strlen(key)));
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

/* The header text, built twice: once to measure (p == NULL), once to
 * write. */
typedef struct st_text {
  char *p;
  size_t length;
} st_text;

static void st_put(st_text *t, const char *s, size_t n) {
  if (t->p != NULL) memcpy(t->p + t->length, s, n);
  t->length += n;
}

static void st_put_cstr(st_text *t, const char *s) { st_put(t, s, strlen(s)); }

/* A JSON string as serde_json writes it: '"' and '\\' escaped, the control
 * characters with a short escape where JSON has one and \u00xx otherwise,
 * everything else (UTF-8 included) as is. */
static void st_put_string(st_text *t, const char *s) {
  static const char hex[] = "0123456789abcdef";
  /* The letter of each short escape; 0 where there is none. */
  static const char short_escape['\\' + 1] = {
      ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
      ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
  st_put(t, "\"", 1);
  const char *run = s;
  for (; *s != '\0'; s++) {
    const unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    st_put(t, run, (size_t)(s - run));
    run = s + 1;
    /* c is a control character, '"' or '\\': all within the table. */
    if (short_escape[c] != 0) {
      const char e[2] = {'\\', short_escape[c]};
      st_put(t, e, 2);
    } else {
      const char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      st_put(t, e, 6);
    }
  }
  st_put(t, run, (size_t)(s - run));
  st_put(t, "\"", 1);
}

static void st_put_u64(st_text *t, uint64_t v) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
  st_put(t, buf, (size_t)n);
}

typedef struct st_save {
  int64_t n;
  const char *const *names;
  const tb_tensor_t *const *tensors;
  int64_t n_meta;
  const char *const *keys;
  const char *const *values;
  int64_t *order;    /* tensors in file order */
  int *dtypes;       /* each tensor's index in k_dtypes */
  uint64_t *offsets; /* begin of order[i], and the end in offsets[n] */
} st_save;

static void st_header_text(const st_save *s, st_text *t) {
  st_put(t, "{", 1);
  if (s->n_meta > 0) {
    st_put_cstr(t, "\"__metadata__\":{");
    for (int64_t i = 0; i < s->n_meta; i++) {
      if (i > 0) st_put(t, ",", 1);
      st_put_string(t, s->keys[i]);
      st_put(t, ":", 1);
      st_put_string(t, s->values[i]);
    }
    st_put(t, "}", 1);
    if (s->n > 0) st_put(t, ",", 1);
  }
  for (int64_t i = 0; i < s->n; i++) {
    const int64_t k = s->order[i];
    const tb_tensor_t *x = s->tensors[k];
    if (i > 0) st_put(t, ",", 1);
    st_put_string(t, s->names[k]);
    st_put_cstr(t, ":{\"dtype\":\"");
    st_put_cstr(t, k_dtypes[s->dtypes[k]].name);
    st_put_cstr(t, "\",\"shape\":[");
    const int32_t ndim = tb_tensor_ndim(x);
    const int64_t *shape = tb_tensor_shape(x);
    for (int32_t d = 0; d < ndim; d++) {
      if (d > 0) st_put(t, ",", 1);
      st_put_u64(t, (uint64_t)shape[d]);
    }
    st_put_cstr(t, "],\"data_offsets\":[");
    st_put_u64(t, s->offsets[i]);
    st_put(t, ",", 1);
    st_put_u64(t, s->offsets[i + 1]);
    st_put_cstr(t, "]}");
  }
  st_put(t, "}", 1);
}

/* A tensor's place in the file: the reference writer's order is widest
 * dtype first (the later in k_dtypes, the earlier), then by name. */
typedef struct st_place {
  int dtype;
  const char *name;
  int64_t index;
} st_place;

static int st_by_layout(const void *a, const void *b) {
  const st_place *x = a, *y = b;
  if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int st_by_string(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails when two of strings[0, n) are equal (copies the pointers to sort). */
static tb_status st_check_unique(const tb_allocator *a, const char *what, const char *array,
                                 const char *const *strings, int64_t n) {
  if (n < 2) return TB_OK;
  const char **sorted = tb__alloc(a, (size_t)n * sizeof *sorted, 16, what);
  if (sorted == NULL) return TB_ERR_NOMEM;
  memcpy((void *)sorted, (const void *)strings, (size_t)n * sizeof *sorted);
  qsort((void *)sorted, (size_t)n, sizeof *sorted, st_by_string);
  tb_status st = TB_OK;
  for (int64_t i = 1; i < n; i++) {
    if (strcmp(sorted[i - 1], sorted[i]) == 0) {
      char q[ST_QUOTE_SIZE];
      st = tb__fail(TB_ERR_INVALID, "%s: %s has %s twice", what, array,
                    st_quote(q, sorted[i], strlen(sorted[i])));
      break;
    }
  }
  tb__free(a, (void *)sorted, (size_t)n * sizeof *sorted);
  return st;
}

static tb_status st_check_utf8(const char *what, const char *array, int64_t i, const char *s) {
  size_t bad;
  if (!tb__utf8_valid(s, strlen(s), &bad)) {
    return tb__fail(TB_ERR_INVALID, "%s: %s[%" PRId64 "] is not valid UTF-8 (byte 0x%02x at %zu)",
                    what, array, i, (unsigned)(unsigned char)s[bad], bad);
  }
  return TB_OK;
}

static tb_status st_check_save_args(const st_save *s, const char *what, const char *path) {
  if (path == NULL) return tb__fail(TB_ERR_INVALID, "%s: path is NULL", what);
  if (s->n < 0) return tb__fail(TB_ERR_INVALID, "%s: n = %" PRId64 " is negative", what, s->n);
  if (s->n_meta < 0) {
    return tb__fail(TB_ERR_INVALID, "%s: n_meta = %" PRId64 " is negative", what, s->n_meta);
  }
  if (s->n > 0 && (s->names == NULL || s->tensors == NULL)) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL but n = %" PRId64, what,
                    s->names == NULL ? "names" : "tensors", s->n);
  }
  if (s->n_meta > 0 && (s->keys == NULL || s->values == NULL)) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL but n_meta = %" PRId64, what,
                    s->keys == NULL ? "meta_keys" : "meta_values", s->n_meta);
  }
  tb_status st;
  for (int64_t i = 0; i < s->n; i++) {
    const char *name = s->names[i];
    const tb_tensor_t *t = s->tensors[i];
    if (name == NULL) return tb__fail(TB_ERR_INVALID, "%s: names[%" PRId64 "] is NULL", what, i);
    if (name[0] == '\0') {
      return tb__fail(TB_ERR_INVALID, "%s: names[%" PRId64 "] is empty", what, i);
    }
    if ((st = st_check_utf8(what, "names", i, name)) != TB_OK) return st;
    if (strcmp(name, "__metadata__") == 0) {
      return tb__fail(TB_ERR_INVALID,
                      "%s: names[%" PRId64 "] is \"__metadata__\", the key safetensors keeps for "
                      "metadata",
                      what, i);
    }
    char q[ST_QUOTE_SIZE];
    st_quote(q, name, strlen(name));
    if (t == NULL) {
      return tb__fail(TB_ERR_INVALID, "%s: tensors[%" PRId64 "] (%s) is NULL", what, i, q);
    }
    const DLDataType dtype = tb_tensor_dtype(t);
    const int k = st_dtype_of(dtype);
    if (k < 0) {
      const char *dn = tb_dtype_name(dtype);
      return tb__fail(TB_ERR_DTYPE, "%s: tensors[%" PRId64 "] (%s) is %s, which safetensors has no "
                      "dtype for",
                      what, i, q, dn != NULL ? dn : "of an unknown dtype");
    }
    const DLDevice device = tb_tensor_device(t);
    if (!tb__device_is_host(device) || !tb__device_data_is_address(device)) {
      return tb__fail(TB_ERR_DEVICE,
                      "%s: tensors[%" PRId64 "] (%s) is in %s:%d memory, which the CPU cannot "
                      "read (tb_tensor_to the CPU first)",
                      what, i, q, tb__device_type_name((int32_t)device.device_type),
                      (int)device.device_id);
    }
    const int64_t bits = k_dtypes[k].bits;
    if (bits < 8 && (tb_tensor_numel(t) * bits) % 8 != 0) {
      return tb__fail(TB_ERR_DTYPE,
                      "%s: tensors[%" PRId64 "] (%s): %" PRId64 " elements of %s make %" PRId64
                      " bits, and safetensors stores whole bytes",
                      what, i, q, tb_tensor_numel(t), k_dtypes[k].name,
                      tb_tensor_numel(t) * bits);
    }
  }
  for (int64_t i = 0; i < s->n_meta; i++) {
    if (s->keys[i] == NULL || s->values[i] == NULL) {
      return tb__fail(TB_ERR_INVALID, "%s: %s[%" PRId64 "] is NULL", what,
                      s->keys[i] == NULL ? "meta_keys" : "meta_values", i);
    }
    if ((st = st_check_utf8(what, "meta_keys", i, s->keys[i])) != TB_OK) return st;
    if ((st = st_check_utf8(what, "meta_values", i, s->values[i])) != TB_OK) return st;
  }
  return TB_OK;
}

/* ---- the file ---- */

typedef struct st_file {
  int fd;
  const char *what;
  const char *path;
  unsigned char *buffer;
  size_t buffer_size;
} st_file;

static tb_status st_write(st_file *w, const void *data, size_t n) {
  return tb__file_write_all(w->fd, w->what, w->path, data, n);
}

/* Writes a strided tensor's elements in C order through the buffer: pieces
 * that fit are copied into it whole, larger ones cut along their first
 * dimension (into runs of rows when a row fits, else row by row). */
static tb_status st_write_strided(st_file *w, const tb_tensor_t *t) {
  const int64_t nbytes = tb_tensor_nbytes(t);
  if (nbytes == 0) return TB_OK;
  tb_status st;
  if ((uint64_t)nbytes <= w->buffer_size) {
    tb_tensor_t *dst;
    st = tb_from_array(w->buffer, 0, tb_tensor_dtype(t), tb_tensor_ndim(t), tb_tensor_shape(t),
                       NULL, (DLDevice){kDLCPU, 0}, 0, NULL, NULL, &dst);
    if (st != TB_OK) return st;
    st = tb_tensor_copy_into(dst, t, 0);
    tb_tensor_release(dst);
    if (st != TB_OK) return st;
    return st_write(w, w->buffer, (size_t)nbytes);
  }
  /* More than the buffer: not a scalar, so there is a first dimension. */
  const int64_t rows = tb_tensor_shape(t)[0];
  const int64_t row_bytes = nbytes / rows;
  const int64_t step = (uint64_t)row_bytes <= w->buffer_size
                           ? (int64_t)(w->buffer_size / (uint64_t)row_bytes)
                           : 0;
  for (int64_t i = 0; i < rows; i += step > 0 ? step : 1) {
    tb_tensor_t *piece;
    if (step > 0) {
      st = tb_tensor_slice(t, 0, i, i + step < rows ? i + step : rows, 1, &piece);
    } else {
      st = tb_tensor_select(t, 0, i, &piece);
    }
    if (st != TB_OK) return st;
    st = st_write_strided(w, piece);
    tb_tensor_release(piece);
    if (st != TB_OK) return st;
  }
  return TB_OK;
}

static tb_status st_write_tensor(st_file *w, const tb_tensor_t *t) {
  if (tb_tensor_numel(t) == 0) return TB_OK;
  if (tb_tensor_is_contiguous(t, TB_ORDER_C)) {
    return st_write(w, tb_tensor_data(t), (size_t)tb_tensor_nbytes(t));
  }
  return st_write_strided(w, t);
}

/* A name no other writer uses: path.tmp-<pid>-<counter>. */
static atomic_uint st_temp_counter;

static tb_status st_open_temp(const char *what, const char *path, char *temp, size_t size,
                              int *fd) {
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(temp, size, "%s.tmp-%ld-%u", path, (long)getpid(),
             atomic_fetch_add(&st_temp_counter, 1u));
    *fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (*fd >= 0) return TB_OK;
    if (errno != EEXIST) return tb__fail_errno(what, path, errno);
  }
  return tb__fail(TB_ERR_IO, "%s: %.200s: no free temporary name next to it", what, path);
}

static tb_status st_write_file(const st_save *s, const char *what, const char *path,
                               const char *header, size_t header_len, const tb_allocator *a) {
  const size_t temp_size = strlen(path) + 48;
  char *temp = tb__alloc(a, temp_size, 16, what);
  if (temp == NULL) return TB_ERR_NOMEM;
  st_file w = {.fd = -1, .what = what, .path = path, .buffer_size = (size_t)1 << 20};
  tb_status st = st_open_temp(what, path, temp, temp_size, &w.fd);
  if (st != TB_OK) {
    tb__free(a, temp, temp_size);
    return st;
  }
  unsigned char length[8];
  for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
  st = st_write(&w, length, 8);
  if (st == TB_OK) st = st_write(&w, header, header_len);
  for (int64_t i = 0; st == TB_OK && i < s->n; i++) {
    const tb_tensor_t *t = s->tensors[s->order[i]];
    if (w.buffer == NULL && tb_tensor_numel(t) > 0 && !tb_tensor_is_contiguous(t, TB_ORDER_C)) {
      w.buffer = tb__alloc(a, w.buffer_size, TB_DATA_ALIGNMENT, what);
      if (w.buffer == NULL) st = TB_ERR_NOMEM;
    }
    if (st == TB_OK) st = st_write_tensor(&w, t);
  }
  if (w.buffer != NULL) tb__free(a, w.buffer, w.buffer_size);
  if (close(w.fd) != 0 && st == TB_OK) st = tb__fail_errno(what, path, errno);
  if (st == TB_OK && rename(temp, path) != 0) st = tb__fail_errno(what, path, errno);
  if (st != TB_OK) (void)unlink(temp);
  tb__free(a, temp, temp_size);
  return st;
}

/* Measures the header, pads it with spaces to a multiple of 8 as the
 * reference does, and writes the file. */
static tb_status st_write_header_and_data(const st_save *s, const char *what, const char *path,
                                          const tb_allocator *a) {
  st_text t = {NULL, 0};
  st_header_text(s, &t);
  const size_t header_len = (t.length + 7) / 8 * 8;
  if (header_len > TB_SAFETENSORS_MAX_HEADER) {
    return tb__fail(TB_ERR_INVALID, "%s: the header would take %zu bytes, above the limit of %d",
                    what, header_len, TB_SAFETENSORS_MAX_HEADER);
  }
  char *header = tb__alloc(a, header_len, 16, what);
  if (header == NULL) return TB_ERR_NOMEM;
  t = (st_text){header, 0};
  st_header_text(s, &t);
  memset(header + t.length, ' ', header_len - t.length);
  tb_status st = st_write_file(s, what, path, header, header_len, a);
  tb__free(a, header, header_len);
  return st;
}

TB_API tb_status tb_safetensors_save(const char *path, int64_t n, const char *const *names,
                                     const tb_tensor_t *const *tensors, int64_t n_meta,
                                     const char *const *meta_keys,
                                     const char *const *meta_values) {
  static const char what[] = "safetensors_save";
  st_save s = {n, names, tensors, n_meta, meta_keys, meta_values, NULL, NULL, NULL};
  tb_status st = st_check_save_args(&s, what, path);
  if (st != TB_OK) return st;
  tb_allocator a;
  tb__allocator_current(&a);
  if ((st = st_check_unique(&a, what, "names", names, n)) != TB_OK) return st;
  if ((st = st_check_unique(&a, what, "meta_keys", meta_keys, n_meta)) != TB_OK) return st;

  /* One block for the plan: order[n], dtypes[n], offsets[n + 1], and the
   * places sorted to make the order. */
  const size_t plan_size = (size_t)n * (sizeof *s.order + sizeof *s.dtypes + sizeof(st_place)) +
                           ((size_t)n + 1) * sizeof *s.offsets;
  unsigned char *plan = tb__alloc(&a, plan_size, 16, what);
  if (plan == NULL) return TB_ERR_NOMEM;
  s.offsets = (uint64_t *)(void *)plan;
  s.order = (int64_t *)(void *)(s.offsets + n + 1);
  st_place *places = (st_place *)(void *)(s.order + n);
  s.dtypes = (int *)(void *)(places + n);
  for (int64_t i = 0; i < n; i++) {
    s.dtypes[i] = st_dtype_of(tb_tensor_dtype(tensors[i]));
    places[i] = (st_place){s.dtypes[i], names[i], i};
  }
  if (n > 1) qsort(places, (size_t)n, sizeof *places, st_by_layout);
  s.offsets[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    s.order[i] = places[i].index;
    const int64_t nbytes = tb_tensor_nbytes(tensors[s.order[i]]);
    if (__builtin_add_overflow(s.offsets[i], (uint64_t)nbytes, &s.offsets[i + 1]) ||
        s.offsets[i + 1] > (uint64_t)INT64_MAX) {
      tb__free(&a, plan, plan_size);
      return tb__fail(TB_ERR_OVERFLOW, "%s: the tensors' bytes add up to more than int64", what);
    }
  }
  st = st_write_header_and_data(&s, what, path, &a);
  tb__free(&a, plan, plan_size);
  return st;
}

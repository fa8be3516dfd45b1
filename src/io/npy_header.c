/*
 * The .npy header's text: parsing what a file says (tb_npy_parse_header)
 * and writing what numpy.save writes. No I/O here: npy.c maps and saves.
 *
 * The header is a Python dict literal, but only a small, fixed part of
 * Python's grammar ever appears in one: the parser reads that part (quoted
 * strings without escapes, decimal integers, True/False, a flat tuple) and
 * refuses the rest with a message that says where and what. A structured
 * descr (a list of fields) is skipped over, bracket by bracket with a
 * bounded stack, only to be refused as a dtype once the dict is known to be
 * well formed. Nothing recurses and every index is checked against the
 * header's end before it is read.
 */
#include "io/json.h" /* tb__utf8_valid */
#include "io/npy_internal.h"

#include <inttypes.h>
#include <stdio.h>

/* ------------------------------------------------------------------------ */
/* The dtypes NumPy and the library share                                   */
/* ------------------------------------------------------------------------ */

/* One row per dtype: the DLPack pair and the typestr kind and size. */
typedef struct tb_npy_type {
  uint8_t code;
  uint8_t bits;
  char kind;
  uint8_t itemsize;
} tb_npy_type;

static const tb_npy_type tb_npy_types[] = {
    {TB_DL_BOOL, 8, 'b', 1},     {TB_DL_INT, 8, 'i', 1},        {TB_DL_INT, 16, 'i', 2},
    {TB_DL_INT, 32, 'i', 4},     {TB_DL_INT, 64, 'i', 8},       {TB_DL_UINT, 8, 'u', 1},
    {TB_DL_UINT, 16, 'u', 2},    {TB_DL_UINT, 32, 'u', 4},      {TB_DL_UINT, 64, 'u', 8},
    {TB_DL_FLOAT, 16, 'f', 2},   {TB_DL_FLOAT, 32, 'f', 4},     {TB_DL_FLOAT, 64, 'f', 8},
    {TB_DL_COMPLEX, 64, 'c', 8}, {TB_DL_COMPLEX, 128, 'c', 16},
};
#define TB_NPY_TYPE_COUNT (sizeof tb_npy_types / sizeof tb_npy_types[0])

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static const char tb_npy_native = '>', tb_npy_foreign = '<';
static const char tb_npy_host_name[] = "big-endian";
#else
static const char tb_npy_native = '<', tb_npy_foreign = '>';
static const char tb_npy_host_name[] = "little-endian";
#endif

bool tb__npy_descr(DLDataType dtype, char out[TB__NPY_DESCR_CAPACITY]) {
  if (dtype.lanes != 1) return false;
  for (size_t i = 0; i < TB_NPY_TYPE_COUNT; i++) {
    const tb_npy_type *t = &tb_npy_types[i];
    if (t->code == dtype.code && t->bits == dtype.bits) {
      /* NumPy writes '|' where the byte order does not apply. */
      (void)snprintf(out, TB__NPY_DESCR_CAPACITY, "%c%c%u", t->itemsize == 1 ? '|' : tb_npy_native,
                     t->kind, (unsigned)t->itemsize);
      return true;
    }
  }
  return false;
}

static const tb_npy_type *tb_npy_type_find(char kind, uint64_t itemsize) {
  for (size_t i = 0; i < TB_NPY_TYPE_COUNT; i++) {
    const tb_npy_type *t = &tb_npy_types[i];
    if (t->kind == kind && t->itemsize == itemsize) return t;
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* The cursor and its messages                                              */
/* ------------------------------------------------------------------------ */

typedef struct tb_npy_cursor {
  const char *what;          /* message prefix */
  const unsigned char *text; /* the header text: after the length field */
  size_t n;                  /* its length */
  size_t i;                  /* the next byte to read */
  size_t base;               /* the text's offset in the file, for messages */
  bool py2_long;             /* 1.0/2.0: Python 2's 'L' after an integer */
} tb_npy_cursor;

static bool tb_npy_at_end(const tb_npy_cursor *c) { return c->i >= c->n; }

/* The next byte, or -1 at the end. */
static int tb_npy_peek(const tb_npy_cursor *c) { return c->i < c->n ? c->text[c->i] : -1; }

static bool tb_npy_is_space(int ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

static void tb_npy_skip_space(tb_npy_cursor *c) {
  while (c->i < c->n && tb_npy_is_space(c->text[c->i])) c->i++;
}

static bool tb_npy_is_word(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_';
}

/* The byte offset in the file of text index i. */
static unsigned long long tb_npy_pos(const tb_npy_cursor *c, size_t i) {
  return (unsigned long long)(c->base + i);
}

/*
 * Copies up to 32 bytes of src into out (at least 40 bytes) for a message,
 * in quotes, each byte that is not printable ASCII as '?', with "..." when
 * cut: file contents never reach a message raw.
 */
#define TB_NPY_QUOTE_CAPACITY 40
static void tb_npy_quote(const unsigned char *src, size_t len, char out[TB_NPY_QUOTE_CAPACITY]) {
  size_t shown = len > 32 ? 32 : len, o = 0;
  out[o++] = '\'';
  for (size_t k = 0; k < shown; k++) {
    out[o++] = (src[k] >= 0x20 && src[k] < 0x7f) ? (char)src[k] : '?';
  }
  out[o++] = '\'';
  if (shown < len) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}

/* Quotes the token at the cursor (up to the next delimiter) for a message,
 * or says "the end of the header". */
static void tb_npy_quote_token(const tb_npy_cursor *c, char out[TB_NPY_QUOTE_CAPACITY]) {
  if (tb_npy_at_end(c)) {
    (void)snprintf(out, TB_NPY_QUOTE_CAPACITY, "the end of the header");
    return;
  }
  size_t end = c->i + 1;
  if (tb_npy_is_word(c->text[c->i]) || c->text[c->i] == '-' || c->text[c->i] == '+' ||
      c->text[c->i] == '\'' || c->text[c->i] == '"') {
    while (end < c->n && end - c->i < 33 && !tb_npy_is_space(c->text[end]) && c->text[end] != ',' &&
           c->text[end] != ')' && c->text[end] != '}' && c->text[end] != ':') {
      end++;
    }
  }
  tb_npy_quote(c->text + c->i, end - c->i, out);
}

/* Fails with TB_ERR_FORMAT: "<what>: <context>: expected <expected>, found
 * <token> at byte N". */
static tb_status tb_npy_expected(const tb_npy_cursor *c, const char *context,
                                 const char *expected) {
  char found[TB_NPY_QUOTE_CAPACITY];
  tb_npy_quote_token(c, found);
  return tb__fail(TB_ERR_FORMAT, "%s: %s: expected %s, found %s at byte %llu", c->what, context,
                  expected, found, tb_npy_pos(c, c->i));
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                   */
/* ------------------------------------------------------------------------ */

/* A string's contents within the text. */
typedef struct tb_npy_span {
  size_t start;
  size_t len;
} tb_npy_span;

/*
 * Reads a quoted string ('...' or "...") at the cursor. Escapes are refused
 * (no key or typestr needs one) unless `lenient`, which skips them: field
 * names of a structured descr, read only to be skipped over.
 */
static tb_status tb_npy_string(tb_npy_cursor *c, const char *context, bool lenient,
                               tb_npy_span *out) {
  const size_t open = c->i;
  const unsigned char quote = c->text[open];
  size_t k = open + 1;
  for (;;) {
    if (k >= c->n || c->text[k] == '\n' || c->text[k] == '\r') {
      return tb__fail(TB_ERR_FORMAT, "%s: %s: the string starting at byte %llu is not terminated",
                      c->what, context, tb_npy_pos(c, open));
    }
    if (c->text[k] == quote) break;
    if (c->text[k] == '\\') {
      if (!lenient) {
        return tb__fail(TB_ERR_FORMAT,
                        "%s: %s: the string starting at byte %llu has an escape sequence "
                        "(byte %llu), which a .npy header never needs",
                        c->what, context, tb_npy_pos(c, open), tb_npy_pos(c, k));
      }
      k++; /* the escaped byte; a line break after it is still refused above */
      if (k < c->n && c->text[k] != '\n' && c->text[k] != '\r') k++;
      continue;
    }
    k++;
  }
  out->start = open + 1;
  out->len = k - (open + 1);
  c->i = k + 1;
  return TB_OK;
}

static bool tb_npy_span_is(const tb_npy_cursor *c, tb_npy_span s, const char *word) {
  size_t len = strlen(word);
  return s.len == len && memcmp(c->text + s.start, word, len) == 0;
}

/*
 * Skips a bracketed value (a structured descr: lists and tuples of strings,
 * numbers and more lists) at the cursor, which is at its opening bracket.
 * Depth is bounded: deeper nesting is refused, not recursed into.
 */
#define TB_NPY_MAX_DEPTH 32
static tb_status tb_npy_skip_nested(tb_npy_cursor *c, const char *context) {
  char closers[TB_NPY_MAX_DEPTH];
  int depth = 0;
  const size_t open = c->i;
  for (;;) {
    tb_npy_skip_space(c);
    int ch = tb_npy_peek(c);
    if (ch < 0) {
      return tb__fail(TB_ERR_FORMAT, "%s: %s: the bracket at byte %llu is not closed", c->what,
                      context, tb_npy_pos(c, open));
    }
    if (ch == '[' || ch == '(' || ch == '{') {
      if (depth == TB_NPY_MAX_DEPTH) {
        return tb__fail(TB_ERR_FORMAT, "%s: %s: brackets nest deeper than %d levels at byte %llu",
                        c->what, context, TB_NPY_MAX_DEPTH, tb_npy_pos(c, c->i));
      }
      closers[depth++] = ch == '[' ? ']' : ch == '(' ? ')' : '}';
      c->i++;
    } else if (ch == ']' || ch == ')' || ch == '}') {
      if (depth == 0 || closers[depth - 1] != ch) {
        return tb__fail(TB_ERR_FORMAT, "%s: %s: unbalanced '%c' at byte %llu", c->what, context, ch,
                        tb_npy_pos(c, c->i));
      }
      c->i++;
      if (--depth == 0) return TB_OK;
    } else if (ch == '\'' || ch == '"') {
      tb_npy_span ignored;
      tb_status st = tb_npy_string(c, context, true, &ignored);
      if (st != TB_OK) return st;
    } else if (ch == ',' || ch == ':') {
      c->i++;
    } else if (tb_npy_is_word(ch) || ch == '.' || ch == '+' || ch == '-') {
      while (c->i < c->n && (tb_npy_is_word(c->text[c->i]) || c->text[c->i] == '.' ||
                             c->text[c->i] == '+' || c->text[c->i] == '-')) {
        c->i++;
      }
    } else {
      return tb_npy_expected(c, context, "a string, a number or a bracket");
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The three values                                                         */
/* ------------------------------------------------------------------------ */

typedef enum tb_npy_descr_kind {
  TB_NPY_DESCR_STRING,     /* a typestr */
  TB_NPY_DESCR_STRUCTURED, /* a list of fields */
  TB_NPY_DESCR_SUBARRAY    /* a (base, shape) tuple */
} tb_npy_descr_kind;

typedef struct tb_npy_fields {
  bool seen_descr, seen_fortran, seen_shape;
  tb_npy_descr_kind descr_kind;
  tb_npy_span descr; /* the typestr, or the bracketed text */
  bool fortran_order;
  int32_t ndim;
  int64_t shape[TB_MAX_NDIM];
} tb_npy_fields;

static tb_status tb_npy_descr_value(tb_npy_cursor *c, tb_npy_fields *f) {
  int ch = tb_npy_peek(c);
  if (ch == '\'' || ch == '"') {
    f->descr_kind = TB_NPY_DESCR_STRING;
    return tb_npy_string(c, "descr", false, &f->descr);
  }
  if (ch == '[' || ch == '(') {
    const size_t start = c->i;
    tb_status st = tb_npy_skip_nested(c, "descr");
    if (st != TB_OK) return st;
    f->descr_kind = ch == '[' ? TB_NPY_DESCR_STRUCTURED : TB_NPY_DESCR_SUBARRAY;
    f->descr = (tb_npy_span){start, c->i - start};
    return TB_OK;
  }
  return tb_npy_expected(c, "descr", "a typestr string such as '<f4'");
}

static tb_status tb_npy_fortran_value(tb_npy_cursor *c, tb_npy_fields *f) {
  const size_t start = c->i;
  size_t end = start;
  while (end < c->n && tb_npy_is_word(c->text[end])) end++;
  tb_npy_span word = {start, end - start};
  if (tb_npy_span_is(c, word, "True") || tb_npy_span_is(c, word, "False")) {
    f->fortran_order = word.len == 4;
    c->i = end;
    return TB_OK;
  }
  char found[TB_NPY_QUOTE_CAPACITY];
  tb_npy_quote_token(c, found);
  return tb__fail(TB_ERR_FORMAT, "%s: fortran_order = %s (byte %llu) is not True or False", c->what,
                  found, tb_npy_pos(c, start));
}

/* One extent: a decimal integer (Python's rules: no leading zeros), with
 * Python 2's 'L' after it in 1.0/2.0 headers. */
static tb_status tb_npy_extent(tb_npy_cursor *c, int32_t index, int64_t *out) {
  const size_t start = c->i;
  int ch = tb_npy_peek(c);
  if (ch == '(' || ch == '[' || ch == '{') {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: shape[%d] at byte %llu opens a nested %s: shape must be a flat tuple of "
                    "integers",
                    c->what, (int)index, tb_npy_pos(c, start),
                    ch == '(' ? "tuple" : ch == '[' ? "list" : "dict");
  }
  bool negative = false;
  if (ch == '-' || ch == '+') {
    negative = ch == '-';
    c->i++;
  }
  const size_t digits = c->i;
  uint64_t value = 0;
  bool overflow = false, nonzero = false;
  while (c->i < c->n && c->text[c->i] >= '0' && c->text[c->i] <= '9') {
    unsigned d = (unsigned)(c->text[c->i] - '0');
    nonzero |= d != 0;
    if (value > (UINT64_MAX - d) / 10) overflow = true;
    value = value * 10 + d;
    c->i++;
  }
  const size_t ndigits = c->i - digits;
  if (ndigits > 0 && c->py2_long && tb_npy_peek(c) == 'L') c->i++;
  char text[TB_NPY_QUOTE_CAPACITY];
  const int next = tb_npy_peek(c);
  const bool delimited = next < 0 || next == ',' || next == ')' || tb_npy_is_space(next);
  if (ndigits == 0 || !delimited) {
    c->i = start;
    tb_npy_quote_token(c, text);
    return tb__fail(TB_ERR_FORMAT, "%s: shape[%d] = %s (byte %llu) is not an integer", c->what,
                    (int)index, text, tb_npy_pos(c, start));
  }
  tb_npy_quote(c->text + start, c->i - start, text);
  if (ndigits > 1 && c->text[digits] == '0' && nonzero) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: shape[%d] = %s (byte %llu) has a leading zero, which Python integers "
                    "do not allow",
                    c->what, (int)index, text, tb_npy_pos(c, start));
  }
  if (negative && nonzero) {
    return tb__fail(TB_ERR_FORMAT, "%s: shape[%d] = %s (byte %llu) is negative", c->what,
                    (int)index, text, tb_npy_pos(c, start));
  }
  if (overflow || value > (uint64_t)INT64_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: shape[%d] = %s (byte %llu) does not fit int64", c->what,
                    (int)index, text, tb_npy_pos(c, start));
  }
  *out = (int64_t)value;
  return TB_OK;
}

static tb_status tb_npy_shape_value(tb_npy_cursor *c, tb_npy_fields *f) {
  const size_t open = c->i;
  if (tb_npy_peek(c) != '(') {
    if (tb_npy_peek(c) == '[') {
      return tb__fail(TB_ERR_FORMAT, "%s: shape (byte %llu) is a list, not a tuple", c->what,
                      tb_npy_pos(c, open));
    }
    return tb_npy_expected(c, "shape", "a tuple such as (3, 4)");
  }
  c->i++;
  f->ndim = 0;
  tb_npy_skip_space(c);
  if (tb_npy_peek(c) == ')') {
    c->i++;
    return TB_OK;
  }
  for (;;) {
    tb_npy_skip_space(c);
    if (tb_npy_at_end(c)) break;
    if (f->ndim == TB_MAX_NDIM) {
      return tb__fail(TB_ERR_FORMAT, "%s: shape has more than %d dimensions (TB_MAX_NDIM)", c->what,
                      TB_MAX_NDIM);
    }
    tb_status st = tb_npy_extent(c, f->ndim, &f->shape[f->ndim]);
    if (st != TB_OK) return st;
    f->ndim++;
    tb_npy_skip_space(c);
    int ch = tb_npy_peek(c);
    if (ch == ',') {
      c->i++;
      tb_npy_skip_space(c);
      if (tb_npy_peek(c) == ')') {
        c->i++;
        return TB_OK;
      }
    } else if (ch == ')') {
      if (f->ndim == 1) {
        return tb__fail(TB_ERR_FORMAT,
                        "%s: shape = (%" PRId64 ") (byte %llu) is an integer in parentheses, not "
                        "a tuple: a tuple of one extent is written (%" PRId64 ",)",
                        c->what, f->shape[0], tb_npy_pos(c, open), f->shape[0]);
      }
      c->i++;
      return TB_OK;
    } else if (ch >= 0) {
      char context[32];
      (void)snprintf(context, sizeof context, "shape[%d]", (int)(f->ndim - 1));
      return tb_npy_expected(c, context, "',' or ')'");
    }
  }
  return tb__fail(TB_ERR_FORMAT, "%s: shape: the tuple opened at byte %llu is not closed", c->what,
                  tb_npy_pos(c, open));
}

/* ------------------------------------------------------------------------ */
/* The dict                                                                 */
/* ------------------------------------------------------------------------ */

static tb_status tb_npy_entry(tb_npy_cursor *c, tb_npy_fields *f) {
  int ch = tb_npy_peek(c);
  if (ch != '\'' && ch != '"') return tb_npy_expected(c, "header dict", "a key string or '}'");
  const size_t at = c->i;
  tb_npy_span key;
  tb_status st = tb_npy_string(c, "header dict", false, &key);
  if (st != TB_OK) return st;
  bool *seen;
  if (tb_npy_span_is(c, key, "descr")) {
    seen = &f->seen_descr;
  } else if (tb_npy_span_is(c, key, "fortran_order")) {
    seen = &f->seen_fortran;
  } else if (tb_npy_span_is(c, key, "shape")) {
    seen = &f->seen_shape;
  } else {
    char name[TB_NPY_QUOTE_CAPACITY];
    tb_npy_quote(c->text + key.start, key.len, name);
    return tb__fail(TB_ERR_FORMAT,
                    "%s: unknown key %s (byte %llu): a .npy header has exactly 'descr', "
                    "'fortran_order' and 'shape'",
                    c->what, name, tb_npy_pos(c, at));
  }
  const char *name = (const char *)c->text + key.start; /* one of the three: printable */
  if (*seen) {
    return tb__fail(TB_ERR_FORMAT, "%s: duplicate key '%.*s' (byte %llu)", c->what, (int)key.len,
                    name, tb_npy_pos(c, at));
  }
  *seen = true;
  tb_npy_skip_space(c);
  if (tb_npy_peek(c) != ':') {
    char context[32];
    (void)snprintf(context, sizeof context, "key '%.*s'", (int)key.len, name);
    return tb_npy_expected(c, context, "':'");
  }
  c->i++;
  tb_npy_skip_space(c);
  if (seen == &f->seen_descr) return tb_npy_descr_value(c, f);
  if (seen == &f->seen_fortran) return tb_npy_fortran_value(c, f);
  return tb_npy_shape_value(c, f);
}

static tb_status tb_npy_dict(tb_npy_cursor *c, tb_npy_fields *f) {
  tb_npy_skip_space(c);
  if (tb_npy_peek(c) != '{') return tb_npy_expected(c, "header", "a dict ('{')");
  const size_t open = c->i++;
  for (;;) {
    tb_npy_skip_space(c);
    if (tb_npy_at_end(c)) break;
    if (tb_npy_peek(c) == '}') {
      c->i++;
      tb_npy_skip_space(c);
      if (!tb_npy_at_end(c)) {
        return tb_npy_expected(c, "after the header dict", "only spaces and '\\n'");
      }
      static const char *const keys[3] = {"descr", "fortran_order", "shape"};
      const bool seen[3] = {f->seen_descr, f->seen_fortran, f->seen_shape};
      for (int k = 0; k < 3; k++) {
        if (!seen[k]) return tb__fail(TB_ERR_FORMAT, "%s: missing key '%s'", c->what, keys[k]);
      }
      return TB_OK;
    }
    tb_status st = tb_npy_entry(c, f);
    if (st != TB_OK) return st;
    tb_npy_skip_space(c);
    if (tb_npy_peek(c) == ',') {
      c->i++;
    } else if (tb_npy_peek(c) != '}' && !tb_npy_at_end(c)) {
      return tb_npy_expected(c, "header dict", "',' or '}' after a value");
    }
  }
  return tb__fail(TB_ERR_FORMAT, "%s: the header dict opened at byte %llu is not closed ('}')",
                  c->what, tb_npy_pos(c, open));
}

/* ------------------------------------------------------------------------ */
/* Encodings                                                                */
/* ------------------------------------------------------------------------ */

/* A 1.0 or 2.0 header is ASCII; a 3.0 header is UTF-8, checked as the
 * safetensors header is (tb__utf8_valid: shortest forms only, no
 * surrogates, nothing past U+10FFFF). */
static tb_status tb_npy_check_encoding(const tb_npy_cursor *c, unsigned major) {
  if (major >= 3) {
    size_t bad;
    if (tb__utf8_valid(c->text, c->n, &bad)) return TB_OK;
    return tb__fail(TB_ERR_FORMAT, "%s: header byte %llu (0x%02x) is not valid UTF-8", c->what,
                    tb_npy_pos(c, bad), (unsigned)c->text[bad]);
  }
  for (size_t k = 0; k < c->n; k++) {
    if (c->text[k] >= 0x80) {
      return tb__fail(TB_ERR_FORMAT,
                      "%s: header byte %llu is 0x%02x, not ASCII (a %u.0 header is ASCII; "
                      "format 3.0 allows UTF-8)",
                      c->what, tb_npy_pos(c, k), (unsigned)c->text[k], major);
    }
  }
  return TB_OK;
}

/* ------------------------------------------------------------------------ */
/* The descr                                                                */
/* ------------------------------------------------------------------------ */

/* What NumPy calls a typestr kind, for messages about the ones refused. */
static const char *tb_npy_kind_name(char kind) {
  switch (kind) {
    case 'b': return "bool";
    case 'i': return "signed integer";
    case 'u': return "unsigned integer";
    case 'f': return "floating point";
    case 'c': return "complex";
    case 'O': return "Python objects";
    case 'S':
    case 'a': return "byte strings";
    case 'U': return "unicode strings";
    case 'V': return "void (raw bytes)";
    case 'M': return "datetime64";
    case 'm': return "timedelta64";
    case 't': return "bit field";
    default: return NULL;
  }
}

static tb_status tb_npy_interpret_descr(const tb_npy_cursor *c, const tb_npy_fields *f,
                                        DLDataType *out) {
  char shown[TB_NPY_QUOTE_CAPACITY];
  tb_npy_quote(c->text + f->descr.start, f->descr.len, shown);
  if (f->descr_kind != TB_NPY_DESCR_STRING) {
    return tb__fail(TB_ERR_DTYPE,
                    "%s: descr = %s is a %s dtype; only plain typestrs such as '<f4' can be "
                    "mapped as a tensor",
                    c->what, shown,
                    f->descr_kind == TB_NPY_DESCR_STRUCTURED ? "structured" : "subarray");
  }
  const unsigned char *s = c->text + f->descr.start;
  const size_t len = f->descr.len;
  size_t k = 0;
  char order = 0;
  if (len > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) order = (char)s[k++];
  const char kind = k < len ? (char)s[k++] : 0;
  const char *kind_name = tb_npy_kind_name(kind);
  uint64_t itemsize = 0;
  const size_t digits = k;
  while (k < len && s[k] >= '0' && s[k] <= '9' && itemsize < 1000000) {
    itemsize = itemsize * 10 + (uint64_t)(s[k] - '0');
    k++;
  }
  if (kind_name == NULL || (k == digits && kind != 'O') ||
      (k < len && kind != 'M' && kind != 'm')) {
    return tb__fail(TB_ERR_DTYPE, "%s: descr = %s is not a NumPy typestr such as '<f4'", c->what,
                    shown);
  }
  const tb_npy_type *t = tb_npy_type_find(kind, itemsize);
  if (t == NULL) {
    return tb__fail(TB_ERR_DTYPE,
                    "%s: descr = %s (%s) is not a dtype this library maps: it takes bool, "
                    "int8..int64, uint8..uint64, float16, float32, float64, complex64 and "
                    "complex128",
                    c->what, shown, kind_name);
  }
  if (t->itemsize > 1 && order == tb_npy_foreign) {
    return tb__fail(TB_ERR_DTYPE,
                    "%s: descr = %s is %s; this host is %s, and the data cannot be mapped "
                    "without swapping its bytes",
                    c->what, shown, order == '>' ? "big-endian" : "little-endian",
                    tb_npy_host_name);
  }
  *out = (DLDataType){t->code, t->bits, 1};
  return TB_OK;
}

/* ------------------------------------------------------------------------ */
/* The header                                                               */
/* ------------------------------------------------------------------------ */

/* The byte size of the data, checked as NumPy checks shapes: the product
 * of the extents, each 0 read as 1, times the itemsize must fit int64. */
static tb_status tb_npy_data_size(const char *what, const tb_npy_fields *f, uint64_t itemsize,
                                  uint64_t data_offset, uint64_t *out) {
  int64_t reach = (int64_t)itemsize, numel = 1;
  bool empty = false;
  for (int32_t d = 0; d < f->ndim; d++) {
    const int64_t e = f->shape[d];
    if (tb__mul_overflows(reach, e == 0 ? 1 : e, &reach)) {
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: shape[%d] = %" PRId64
                      " brings the data's size (itemsize %u) past "
                      "INT64_MAX bytes",
                      what, (int)d, e, (unsigned)itemsize);
    }
    if (e == 0) {
      empty = true;
    } else {
      numel *= e; /* cannot overflow: numel * itemsize <= reach */
    }
  }
  const uint64_t nbytes = empty ? 0 : (uint64_t)numel * itemsize;
  if (nbytes > (uint64_t)INT64_MAX - data_offset || nbytes > (uint64_t)SIZE_MAX - data_offset) {
    return tb__fail(TB_ERR_OVERFLOW,
                    "%s: the header (%" PRIu64 " bytes) and data (%" PRIu64
                    " bytes) reach past "
                    "the largest file offset this machine addresses",
                    what, data_offset, nbytes);
  }
  *out = nbytes;
  return TB_OK;
}

/* The checks of the bytes before the header text, reading only the first
 * min(size, TB__NPY_PREFIX_MAX) of them: the version, the length field's
 * size (prefix) and the header text's length. */
static tb_status tb_npy_prefix(const char *what, const unsigned char *b, size_t size,
                               unsigned *major_out, size_t *prefix_out, uint64_t *header_len_out) {
  const size_t magic = size < TB__NPY_MAGIC_LEN ? size : TB__NPY_MAGIC_LEN;
  if (size == 0 || memcmp(b, TB__NPY_MAGIC, magic) != 0) {
    char found[TB_NPY_QUOTE_CAPACITY];
    tb_npy_quote(b, magic, found);
    return tb__fail(TB_ERR_FORMAT, "%s: not a .npy file: the magic string is %s, not '\\x93NUMPY'",
                    what, size == 0 ? "missing (no bytes)" : found);
  }
  if (size < TB__NPY_MAGIC_LEN + 2) {
    return tb__fail(TB_ERR_FORMAT, "%s: truncated: %zu bytes end before the format version", what,
                    size);
  }
  const unsigned major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0) {
    return tb__fail(TB_ERR_FORMAT, "%s: format version %u.%u is not 1.0, 2.0 or 3.0", what, major,
                    minor);
  }
  const size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) {
    return tb__fail(TB_ERR_FORMAT, "%s: truncated: %zu bytes end inside the header length", what,
                    size);
  }
  uint64_t header_len = (uint64_t)b[8] | (uint64_t)b[9] << 8;
  if (major > 1) header_len |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
  const uint64_t data_offset = prefix + header_len;
  /* The header is read into memory: a file may not make us allocate what it
   * likes (NumPy's own reader stops at 10,000 bytes by default). */
  if (header_len > TB_NPY_MAX_HEADER) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: header length %" PRIu64 " is above the limit of %d bytes", what,
                    header_len, TB_NPY_MAX_HEADER);
  }
  if (data_offset > size) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: header length %" PRIu64 " reaches byte %" PRIu64
                    ", past the end of the "
                    "%zu bytes given",
                    what, header_len, data_offset, size);
  }
  *major_out = major;
  *prefix_out = prefix;
  *header_len_out = header_len;
  return TB_OK;
}

tb_status tb__npy_header_end(const char *what, const void *bytes, size_t size,
                             uint64_t *data_offset) {
  unsigned major;
  size_t prefix;
  uint64_t header_len;
  tb_status st = tb_npy_prefix(what, bytes, size, &major, &prefix, &header_len);
  if (st == TB_OK) *data_offset = prefix + header_len;
  return st;
}

tb_status tb__npy_parse(const char *what, const void *bytes, size_t size, tb_npy_header *out) {
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  if (bytes == NULL && size > 0) {
    return tb__fail(TB_ERR_INVALID, "%s: bytes is NULL but size = %zu", what, size);
  }
  const unsigned char *b = bytes;
  unsigned major;
  size_t prefix;
  uint64_t header_len;
  tb_status st = tb_npy_prefix(what, b, size, &major, &prefix, &header_len);
  if (st != TB_OK) return st;
  const unsigned minor = b[7];
  const uint64_t data_offset = prefix + header_len;
  tb_npy_cursor c = {what, b + prefix, (size_t)header_len, 0, prefix, major < 3};
  st = tb_npy_check_encoding(&c, major);
  if (st != TB_OK) return st;
  tb_npy_fields f;
  memset(&f, 0, sizeof f);
  st = tb_npy_dict(&c, &f);
  if (st != TB_OK) return st;
  DLDataType dtype;
  st = tb_npy_interpret_descr(&c, &f, &dtype);
  if (st != TB_OK) return st;
  const uint64_t itemsize = dtype.bits / 8u;
  if (data_offset % itemsize != 0) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the data starts at byte %" PRIu64
                    ", not a multiple of the element size "
                    "%u: its elements would be misaligned (NumPy pads the header to %d bytes)",
                    what, data_offset, (unsigned)itemsize, TB__NPY_ALIGN);
  }
  uint64_t data_nbytes = 0;
  st = tb_npy_data_size(what, &f, itemsize, data_offset, &data_nbytes);
  if (st != TB_OK) return st;
  out->dtype = dtype;
  out->ndim = f.ndim;
  memcpy(out->shape, f.shape, sizeof out->shape);
  out->fortran_order = f.fortran_order;
  out->version[0] = (uint8_t)major;
  out->version[1] = (uint8_t)minor;
  out->data_offset = data_offset;
  out->data_nbytes = data_nbytes;
  return TB_OK;
}

TB_API tb_status tb_npy_parse_header(const void *bytes, size_t size, tb_npy_header *out) {
  return tb__npy_parse("npy_parse_header", bytes, size, out);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

tb_status tb__npy_format_header(const char *what, DLDataType dtype, int32_t ndim,
                                const int64_t *shape, char *buf, size_t *len) {
  char descr[TB__NPY_DESCR_CAPACITY];
  if (!tb__npy_descr(dtype, descr)) {
    const char *name = tb_dtype_name(dtype);
    if (name != NULL) {
      return tb__fail(TB_ERR_DTYPE, "%s: dtype %s has no NumPy equivalent, so no .npy descr", what,
                      name);
    }
    return tb__fail(TB_ERR_DTYPE, "%s: dtype (code %u, bits %u, lanes %u) has no .npy descr", what,
                    (unsigned)dtype.code, (unsigned)dtype.bits, (unsigned)dtype.lanes);
  }
  /* The dict as numpy.save writes it: keys sorted, Python's repr of each
   * value, a ", " after each, the shape's growth room after the '}'. The
   * text goes after the longest prefix (12 bytes) and moves down for 1.0. */
  char *text = buf + 12;
  const size_t room = TB__NPY_HEADER_CAPACITY - 12;
  size_t n =
      (size_t)snprintf(text, room, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int32_t d = 0; d < ndim; d++) {
    n += (size_t)snprintf(text + n, room - n, d == 0 ? "%" PRId64 : ", %" PRId64, shape[d]);
  }
  n += (size_t)snprintf(text + n, room - n, "%s), }", ndim == 1 ? "," : "");
  if (ndim > 0) {
    char first[24];
    int digits = snprintf(first, sizeof first, "%" PRId64, shape[0]);
    for (int k = digits; k < TB__NPY_GROWTH_DIGITS; k++) text[n++] = ' ';
  }
  /* Spaces, then '\n', so that prefix + text ends on a multiple of 64; NumPy
   * pads a full 64 where it would already end on one. */
  size_t prefix = 10;
  size_t pad = TB__NPY_ALIGN - (prefix + n + 1) % TB__NPY_ALIGN;
  if (n + 1 + pad > 65535) {
    prefix = 12;
    pad = TB__NPY_ALIGN - (prefix + n + 1) % TB__NPY_ALIGN;
  }
  memset(text + n, ' ', pad);
  n += pad;
  text[n++] = '\n';
  memcpy(buf, TB__NPY_MAGIC, TB__NPY_MAGIC_LEN);
  buf[6] = prefix == 10 ? 1 : 2;
  buf[7] = 0;
  for (size_t k = 0; k < prefix - 8; k++) { /* little-endian */
    buf[8 + k] = (char)(unsigned char)((uint64_t)n >> (8 * k));
  }
  if (prefix == 10) memmove(buf + 10, text, n);
  *len = prefix + n;
  return TB_OK;
}

/* A small strict JSON reader (see json.h). */
#include "io/json.h"

/* Records the first failure at byte `at` and returns false. */
static bool json_fail(tb__json *j, const unsigned char *at, const char *what) {
  if (j->error == NULL) {
    j->error = what;
    j->error_at = (size_t)(at - j->start);
  }
  j->pos = j->end; /* nothing after a failure reads on */
  return false;
}

void tb__json_init(tb__json *j, const void *text, size_t size) {
  j->start = text;
  j->pos = j->start;
  j->end = j->start + size;
  j->error = NULL;
  j->error_at = 0;
}

const char *tb__json_type_name(tb__json_type type) {
  switch (type) {
    case TB__JSON_OBJECT:
      return "an object";
    case TB__JSON_ARRAY:
      return "an array";
    case TB__JSON_STRING:
      return "a string";
    case TB__JSON_NUMBER:
      return "a number";
    case TB__JSON_TRUE:
    case TB__JSON_FALSE:
      return "a boolean";
    case TB__JSON_NULL:
      return "null";
    case TB__JSON_NONE:
      break;
  }
  return "nothing";
}

/* ---- words of 8 bytes ---- */

/* Headers are mostly ASCII names and digits: the scans below test 8 bytes
 * at a time and step byte by byte only where a word holds something else. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* The 8 bytes at p, p[0] in the low byte whatever the host's byte order. */
static uint64_t load_word(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}

/* Marks (with its high bit) each of w's bytes below n (n <= 0x80); zero
 * when none is. A borrow may mark bytes after the first marked one too,
 * never before it: the lowest mark is exact. */
static uint64_t bytes_below(uint64_t w, unsigned char n) { return (w - ONES * n) & ~w & HIGHS; }

/* The same for bytes equal to c. */
static uint64_t bytes_equal(uint64_t w, unsigned char c) { return bytes_below(w ^ (ONES * c), 1); }

/* ---- UTF-8 ---- */

/* The length of the valid UTF-8 sequence at p (before end), or 0. The
 * ranges of the second byte rule out overlong forms (E0, F0), surrogates
 * (ED) and code points above U+10FFFF (F4). */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++) {
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  }
  return n;
}

bool tb__utf8_valid(const void *text, size_t size, size_t *bad_at) {
  const unsigned char *start = text, *p = start, *end = start + size;
  while (p < end) {
    if (end - p >= 8 && (load_word(p) & HIGHS) == 0) { /* ASCII runs are the common case */
      p += 8;
      continue;
    }
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t n = utf8_sequence(p, end);
    if (n == 0) {
      if (bad_at != NULL) *bad_at = (size_t)(p - start);
      return false;
    }
    p += n;
  }
  return true;
}

/* ---- tokens ---- */

static void skip_whitespace(tb__json *j) {
  while (j->pos < j->end &&
         (*j->pos == ' ' || *j->pos == '\t' || *j->pos == '\n' || *j->pos == '\r')) {
    j->pos++;
  }
}

tb__json_type tb__json_peek(tb__json *j) {
  skip_whitespace(j);
  if (j->pos >= j->end) return TB__JSON_NONE;
  switch (*j->pos) {
    case '{':
      return TB__JSON_OBJECT;
    case '[':
      return TB__JSON_ARRAY;
    case '"':
      return TB__JSON_STRING;
    case 't':
      return TB__JSON_TRUE;
    case 'f':
      return TB__JSON_FALSE;
    case 'n':
      return TB__JSON_NULL;
    default:
      if (*j->pos == '-' || (*j->pos >= '0' && *j->pos <= '9')) return TB__JSON_NUMBER;
      return TB__JSON_NONE;
  }
}

/* The value of one hex digit, or -1. */
static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads the four hex digits of a \u escape at j->pos. */
static bool read_hex4(tb__json *j, const unsigned char *escape, uint32_t *out) {
  if (j->end - j->pos < 4) return json_fail(j, escape, "\\u escape without four hex digits");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(j->pos[i]);
    if (d < 0) return json_fail(j, escape, "\\u escape without four hex digits");
    v = (v << 4) | (uint32_t)d;
  }
  j->pos += 4;
  *out = v;
  return true;
}

/* Appends bytes to the decoded string when there is an output. */
typedef struct string_out {
  char *p;
  size_t capacity, length;
} string_out;

static bool put_bytes(tb__json *j, string_out *o, const unsigned char *at, const void *bytes,
                      size_t n) {
  if (o->p == NULL) return true;
  /* One byte stays free for the terminating '\0'. */
  if (o->capacity - o->length <= n) return json_fail(j, at, "string longer than its buffer");
  memcpy(o->p + o->length, bytes, n);
  o->length += n;
  return true;
}

static bool put_code_point(tb__json *j, string_out *o, const unsigned char *at, uint32_t cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | (cp >> 6));
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | (cp >> 12));
    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return put_bytes(j, o, at, b, n);
}

/* A \u escape (j->pos just after the 'u'), pairing surrogates. */
static bool read_unicode_escape(tb__json *j, string_out *o, const unsigned char *escape) {
  uint32_t cp;
  if (!read_hex4(j, escape, &cp)) return false;
  if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return json_fail(j, escape, "lone low surrogate in a \\u escape");
  }
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (j->end - j->pos < 2 || j->pos[0] != '\\' || j->pos[1] != 'u') {
      return json_fail(j, escape, "lone high surrogate in a \\u escape (no low surrogate follows)");
    }
    j->pos += 2;
    uint32_t low;
    if (!read_hex4(j, escape, &low)) return false;
    if (low < 0xDC00 || low > 0xDFFF) {
      return json_fail(j, escape, "lone high surrogate in a \\u escape (no low surrogate follows)");
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  return put_code_point(j, o, escape, cp);
}

/* One escape sequence, j->pos at the backslash. */
static bool read_escape(tb__json *j, string_out *o) {
  const unsigned char *escape = j->pos;
  if (j->end - j->pos < 2) return json_fail(j, escape, "unterminated escape at the end of the text");
  unsigned char e = j->pos[1];
  j->pos += 2;
  char c;
  switch (e) {
    case '"':
    case '\\':
    case '/':
      c = (char)e;
      break;
    case 'b':
      c = '\b';
      break;
    case 'f':
      c = '\f';
      break;
    case 'n':
      c = '\n';
      break;
    case 'r':
      c = '\r';
      break;
    case 't':
      c = '\t';
      break;
    case 'u':
      return read_unicode_escape(j, o, escape);
    default:
      return json_fail(j, escape, "invalid escape in a string (JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
  }
  return put_bytes(j, o, escape, &c, 1);
}

static bool read_string(tb__json *j, string_out *o) {
  skip_whitespace(j);
  const unsigned char *open = j->pos;
  if (j->pos >= j->end || *j->pos != '"') return json_fail(j, j->pos, "expected a string");
  j->pos++;
  for (;;) {
    /* A run of plain bytes at once: ASCII that is neither a control
     * character, '"' nor '\\'. */
    const unsigned char *run = j->pos;
    while (j->end - j->pos >= 8) {
      const uint64_t w = load_word(j->pos);
      const uint64_t stop =
          (w & HIGHS) | bytes_below(w, 0x20) | bytes_equal(w, '"') | bytes_equal(w, '\\');
      if (stop != 0) {
        j->pos += __builtin_ctzll(stop) / 8; /* the first byte that is not plain */
        break;
      }
      j->pos += 8;
    }
    while (j->pos < j->end && *j->pos >= 0x20 && *j->pos < 0x80 && *j->pos != '"' &&
           *j->pos != '\\') {
      j->pos++;
    }
    if (!put_bytes(j, o, run, run, (size_t)(j->pos - run))) return false;
    if (j->pos >= j->end) return json_fail(j, open, "unterminated string");
    const unsigned char c = *j->pos;
    if (c == '"') {
      j->pos++;
      break;
    }
    if (c == '\\') {
      if (!read_escape(j, o)) return false;
    } else if (c < 0x20) {
      return json_fail(j, j->pos, "raw control character in a string (it must be escaped)");
    } else {
      size_t n = utf8_sequence(j->pos, j->end);
      if (n == 0) return json_fail(j, j->pos, "invalid UTF-8 in a string");
      if (!put_bytes(j, o, j->pos, j->pos, n)) return false;
      j->pos += n;
    }
  }
  if (o->p != NULL) o->p[o->length] = '\0';
  return true;
}

bool tb__json_string(tb__json *j, char *out, size_t capacity, size_t *length) {
  if (j->error != NULL) return false;
  string_out o = {out, capacity, 0};
  if (out != NULL && capacity == 0) return json_fail(j, j->pos, "string longer than its buffer");
  if (!read_string(j, &o)) return false;
  if (length != NULL) *length = o.length;
  return true;
}

static bool expect_byte(tb__json *j, unsigned char c, const char *what) {
  skip_whitespace(j);
  if (j->pos >= j->end || *j->pos != c) return json_fail(j, j->pos, what);
  j->pos++;
  return true;
}

bool tb__json_key(tb__json *j, char *out, size_t capacity, size_t *length) {
  if (tb__json_peek(j) != TB__JSON_STRING) {
    return json_fail(j, j->pos, "expected a string as an object key");
  }
  if (!tb__json_string(j, out, capacity, length)) return false;
  return expect_byte(j, ':', "expected ':' after an object key");
}

static bool is_digit(const unsigned char *p, const unsigned char *end) {
  return p < end && *p >= '0' && *p <= '9';
}

bool tb__json_read_number(tb__json *j, tb__json_number *out) {
  if (j->error != NULL) return false;
  skip_whitespace(j);
  /* A local cursor, stored once at the end: the reader's own would be
   * stored at every digit. */
  const unsigned char *first = j->pos, *p = first, *end = j->end;
  tb__json_number n = {.at = (size_t)(first - j->start), .integer = true, .fits = true};
  if (p < end && *p == '-') {
    n.negative = true;
    p++;
  }
  if (!is_digit(p, end)) return json_fail(j, first, "expected a number");
  if (*p == '0') {
    p++;
    if (is_digit(p, end)) return json_fail(j, first, "number with a leading zero");
  } else {
    for (; is_digit(p, end); p++) {
      const uint64_t d = (uint64_t)(*p - '0');
      /* Whether value * 10 + d passes UINT64_MAX, without a division per digit. */
      if (n.fits &&
          (n.value > UINT64_MAX / 10 || (n.value == UINT64_MAX / 10 && d > UINT64_MAX % 10))) {
        n.fits = false;
      }
      if (n.fits) n.value = n.value * 10 + d;
    }
  }
  if (p < end && *p == '.') {
    n.integer = false;
    p++;
    if (!is_digit(p, end)) return json_fail(j, first, "number without digits after its '.'");
    while (is_digit(p, end)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    n.integer = false;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (!is_digit(p, end)) return json_fail(j, first, "number without digits in its exponent");
    while (is_digit(p, end)) p++;
  }
  if (!n.integer) {
    n.fits = false;
    n.value = 0;
  }
  j->pos = p;
  n.length = (size_t)(p - first);
  if (out != NULL) *out = n;
  return true;
}

static bool read_literal(tb__json *j, const char *word) {
  const size_t n = strlen(word);
  if ((size_t)(j->end - j->pos) < n || memcmp(j->pos, word, n) != 0) {
    return json_fail(j, j->pos, "unexpected characters where a value should be");
  }
  j->pos += n;
  return true;
}

bool tb__json_begin(tb__json *j, char open) {
  return expect_byte(j, (unsigned char)open,
                     open == '{' ? "expected an object ('{')" : "expected an array ('[')");
}

bool tb__json_next(tb__json *j, char close, bool *first, bool *more) {
  if (j->error != NULL) return false;
  skip_whitespace(j);
  if (j->pos < j->end && *j->pos == (unsigned char)close) {
    j->pos++;
    *first = false;
    *more = false;
    return true;
  }
  if (!*first) {
    if (j->pos >= j->end || *j->pos != ',') {
      return json_fail(j, j->pos,
                       close == '}' ? "expected ',' or '}' after an object member"
                                    : "expected ',' or ']' after an array element");
    }
    j->pos++;
    skip_whitespace(j);
  }
  /* A ',' must be followed by an item: "[1,]" and "{,}" are not JSON. */
  if (j->pos < j->end && *j->pos == (unsigned char)close) {
    return json_fail(j, j->pos, "trailing ',' before the closing bracket");
  }
  *first = false;
  *more = true;
  return true;
}

/*
 * Skips one value of any kind without recursion: `stack` holds the closing
 * byte of each open container. When root_members is not NULL and the value
 * is an object, counts its members.
 */
static bool skip_value(tb__json *j, size_t *root_members) {
  char stack[TB__JSON_MAX_DEPTH];
  bool first[TB__JSON_MAX_DEPTH];
  int depth = 0;
  size_t members = 0;
  for (;;) {
    /* A value starts here. */
    tb__json_type t = tb__json_peek(j);
    if (j->error != NULL) return false;
    switch (t) {
      case TB__JSON_OBJECT:
      case TB__JSON_ARRAY:
        if (depth == TB__JSON_MAX_DEPTH) {
          return json_fail(j, j->pos, "nesting deeper than 128 arrays and objects");
        }
        stack[depth] = t == TB__JSON_OBJECT ? '}' : ']';
        first[depth] = true;
        depth++;
        j->pos++;
        break;
      case TB__JSON_STRING:
        if (!tb__json_string(j, NULL, 0, NULL)) return false;
        break;
      case TB__JSON_NUMBER:
        if (!tb__json_read_number(j, NULL)) return false;
        break;
      case TB__JSON_TRUE:
        if (!read_literal(j, "true")) return false;
        break;
      case TB__JSON_FALSE:
        if (!read_literal(j, "false")) return false;
        break;
      case TB__JSON_NULL:
        if (!read_literal(j, "null")) return false;
        break;
      case TB__JSON_NONE:
        return json_fail(j, j->pos,
                         j->pos >= j->end ? "unexpected end of the text where a value should be"
                                          : "unexpected characters where a value should be");
    }
    /* Close what ends here, and find where the next value starts. */
    for (;;) {
      if (depth == 0) {
        if (root_members != NULL) *root_members = members;
        return true;
      }
      bool more;
      if (!tb__json_next(j, stack[depth - 1], &first[depth - 1], &more)) return false;
      if (!more) {
        depth--;
        continue;
      }
      if (stack[depth - 1] == '}') {
        if (!tb__json_key(j, NULL, 0, NULL)) return false;
        if (depth == 1) members++;
      }
      break;
    }
  }
}

bool tb__json_skip(tb__json *j) {
  if (j->error != NULL) return false;
  return skip_value(j, NULL);
}

bool tb__json_validate(tb__json *j, size_t *root_members) {
  if (j->error != NULL) return false;
  const unsigned char *saved = j->pos;
  size_t members = 0;
  if (!skip_value(j, &members)) return false;
  skip_whitespace(j);
  if (j->pos != j->end) return json_fail(j, j->pos, "trailing characters after the JSON value");
  if (root_members != NULL) *root_members = members;
  j->pos = saved;
  return true;
}

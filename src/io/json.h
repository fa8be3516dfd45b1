/*
 * A small strict JSON reader (RFC 8259) for the headers of file formats
 * (io/safetensors.c). Two ways to use it over the same text:
 *
 *   - tb__json_validate checks a whole document: one value, then only
 *     whitespace; nesting at most TB__JSON_MAX_DEPTH deep; strings with
 *     valid UTF-8, no raw control characters, only the escapes JSON has and
 *     \u escapes that pair their surrogates. It allocates nothing.
 *   - The pull functions (peek, begin, next, key, string, number) walk a
 *     document the caller expects a shape of, value by value, so that the
 *     caller can name what is wrong in its own terms ("shape[1] is a
 *     string").
 *
 * Nothing here reads outside [text, text + size), and nothing records a
 * library error: a failing call leaves a static description and the byte
 * offset where the problem starts in the reader (error, error_at), and the
 * caller words the message. After the first failure every call fails.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_IO_JSON_H
#define TB_IO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Deepest nesting of arrays and objects accepted (serde_json's default). */
#define TB__JSON_MAX_DEPTH 128

typedef enum tb__json_type {
  TB__JSON_NONE = 0, /* no value starts here (end of text or a stray byte) */
  TB__JSON_OBJECT,
  TB__JSON_ARRAY,
  TB__JSON_STRING,
  TB__JSON_NUMBER,
  TB__JSON_TRUE,
  TB__JSON_FALSE,
  TB__JSON_NULL
} tb__json_type;

typedef struct tb__json {
  const unsigned char *start; /* the text */
  const unsigned char *pos;   /* the next byte to read */
  const unsigned char *end;   /* one past the last byte */
  const char *error;          /* the first failure, NULL while none */
  size_t error_at;            /* its byte offset from start */
} tb__json;

/* A number as written. */
typedef struct tb__json_number {
  size_t at, length; /* the literal's offset from start and its length */
  bool negative;     /* a leading '-' (also on "-0") */
  bool integer;      /* no fraction and no exponent */
  bool fits;         /* integer and its magnitude fits in uint64 */
  uint64_t value;    /* that magnitude, when fits */
} tb__json_number;

/* Starts reading text[0, size). */
TB_INTERNAL void tb__json_init(tb__json *j, const void *text, size_t size);

/* True when text[0, size) is valid UTF-8 (shortest forms only, no
 * surrogates, nothing above U+10FFFF); otherwise false with the offset of
 * the first byte of the first bad sequence in *bad_at. */
TB_INTERNAL bool tb__utf8_valid(const void *text, size_t size, size_t *bad_at);

/* "an object", "a string", ... for messages; "nothing" for NONE. */
TB_INTERNAL const char *tb__json_type_name(tb__json_type type);

/* Checks the document from the reader's position to the end of the text
 * (see above) and leaves the position where it was. When the document is an
 * object and root_members is not NULL, *root_members is its member count. */
TB_INTERNAL bool tb__json_validate(tb__json *j, size_t *root_members);

/* Skips whitespace and says which kind of value starts next (NONE after a
 * failure). Consumes nothing else. */
TB_INTERNAL tb__json_type tb__json_peek(tb__json *j);

/* Consumes the opening '{' or '[' (open) of the next value. */
TB_INTERNAL bool tb__json_begin(tb__json *j, char open);

/*
 * Steps through the members of an object (close = '}') or the elements of
 * an array (close = ']') after tb__json_begin: *first must be true before
 * the first call, and is cleared by it. Each call consumes the ',' between
 * items, or the closing byte; *more is true when an item follows (for an
 * object, its key), false when the container closed.
 */
TB_INTERNAL bool tb__json_next(tb__json *j, char close, bool *first, bool *more);

/*
 * Reads the next value, which must be a string, decoding its escapes into
 * out[0, *length) followed by a '\0' (the string itself may hold U+0000).
 * The decoded string with its '\0' is never longer than the string as
 * written, quotes included: capacity bytes of out are enough when they are
 * at least that many. out may be NULL to skip the string.
 */
TB_INTERNAL bool tb__json_string(tb__json *j, char *out, size_t capacity, size_t *length);

/* Reads an object member's key as tb__json_string does, then its ':'. */
TB_INTERNAL bool tb__json_key(tb__json *j, char *out, size_t capacity, size_t *length);

/* Reads the next value, which must be a number. */
TB_INTERNAL bool tb__json_read_number(tb__json *j, tb__json_number *out);

/* Skips the next value, whatever it is (nesting limited as in validate). */
TB_INTERNAL bool tb__json_skip(tb__json *j);

#endif /* TB_IO_JSON_H */

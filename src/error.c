/* Status names and the per-thread error message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "platform/thread.h"

#define TB_ERROR_CAPACITY 512

static TB__THREAD_LOCAL char tb_error_message[TB_ERROR_CAPACITY];

static const char *const tb_status_names[] = {
    [TB_OK] = "TB_OK",
    [TB_ERR_INVALID] = "TB_ERR_INVALID",
    [TB_ERR_NOMEM] = "TB_ERR_NOMEM",
    [TB_ERR_OVERFLOW] = "TB_ERR_OVERFLOW",
    [TB_ERR_DTYPE] = "TB_ERR_DTYPE",
    [TB_ERR_DEVICE] = "TB_ERR_DEVICE",
    [TB_ERR_LAYOUT] = "TB_ERR_LAYOUT",
    [TB_ERR_READONLY] = "TB_ERR_READONLY",
    [TB_ERR_UNSUPPORTED] = "TB_ERR_UNSUPPORTED",
    [TB_ERR_VERSION] = "TB_ERR_VERSION",
    [TB_ERR_INDEX] = "TB_ERR_INDEX",
    [TB_ERR_COPY_REQUIRED] = "TB_ERR_COPY_REQUIRED",
    [TB_ERR_IO] = "TB_ERR_IO",
    [TB_ERR_FORMAT] = "TB_ERR_FORMAT",
};

TB_API const char *tb_status_name(tb_status status) {
  size_t i = (size_t)status;
  if (i < sizeof tb_status_names / sizeof tb_status_names[0] && tb_status_names[i] != NULL) {
    return tb_status_names[i];
  }
  return "TB_STATUS_UNKNOWN";
}

TB_API const char *tb_last_error(void) { return tb_error_message; }

TB_API void tb_clear_error(void) { tb_error_message[0] = '\0'; }

tb_status tb__fail(tb_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  /* Truncation of an over-long message is acceptable; the buffer stays terminated. */
  (void)vsnprintf(tb_error_message, sizeof tb_error_message, fmt, args);
  va_end(args);
  return status;
}

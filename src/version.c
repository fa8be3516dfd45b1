#include "internal.h"

TB_API const char *tb_version(void) { return TB_VERSION_STRING; }

TB_API int32_t tb_version_number(void) {
  return TB_VERSION_MAJOR * 10000 + TB_VERSION_MINOR * 100 + TB_VERSION_PATCH;
}

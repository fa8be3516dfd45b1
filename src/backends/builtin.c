/* The backends compiled into this build. Each optional backend registers
 * itself only when its driver loads at run time; a missing driver leaves its
 * device types without a backend (tb_device_count == 0). */
#include "../device.h"

#ifdef TB_WITH_OPENCL
void tb__opencl_register(void);
#endif
#ifdef TB_WITH_CUDA
void tb__cuda_register(void);
#endif

void tb__register_builtin_backends(void) {
#ifdef TB_WITH_OPENCL
  tb__opencl_register();
#endif
#ifdef TB_WITH_CUDA
  tb__cuda_register();
#endif
}

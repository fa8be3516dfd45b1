/* Two made-up devices for the tests and the fuzz target (no cmocka here). */
#ifndef TB_TEST_FAKE_DEVICES_H
#define TB_TEST_FAKE_DEVICES_H

#include "tensorbridge/tensorbridge.h"

/*
 * Registers backends for two device types no build serves, each with two
 * devices present: Vulkan (a handle type: data is a VkBuffer) and VPI (an
 * address type). Wrapping and importing their memory succeeds, so tests of
 * device tensors do not depend on the machine's GPUs or OpenCL; anything
 * that would touch the memory (alloc, copies) answers TB_ERR_UNSUPPORTED
 * with a message, as a backend does.
 */
tb_status fake_devices_register(void);

#endif

/*
 * libtensorbridge: shm (included by tensorbridge/tensorbridge.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_SHM_H
#define TENSORBRIDGE_SHM_H

#include "tensorbridge/tensorbridge.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* TENSORBRIDGE_SHM_H */

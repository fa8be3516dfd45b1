/*
 * The replay program the fuzz targets share (replay.c): with
 * -DTB_FUZZ_REPLAY a target is an ordinary program that runs each file of
 * the folders (or the files) named on its command line through
 * LLVMFuzzerTestOneInput, so that its corpus runs as a meson test with any
 * compiler. Each target defines the two functions below.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_FUZZ_REPLAY_H
#define TB_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "tensorbridge/tensorbridge.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The status the last input ended with, printed beside its name. */
tb_status tb_fuzz_last_status(void);

#endif /* TB_FUZZ_REPLAY_H */

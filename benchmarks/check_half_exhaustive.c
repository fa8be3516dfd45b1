/*
 * Exhaustive check of the float32 -> float16 and float32 -> bfloat16 kernels
 * (src/kernels/): every one of the 2^32 float32 bit patterns, at every kernel
 * level this CPU supports, against the scalar loop of src/cast.c. Prints the
 * mismatch count of each (level, conversion) and the first few mismatches;
 * exits 1 if there is any. Not a test (it takes a minute or so): a check to
 * run after changing a kernel. Linked against the static library, to reach
 * the kernels of every level directly.
 *
 * Usage: check_half_exhaustive
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h"

#define CHUNK (UINT64_C(1) << 22)

int main(void) {
  const tb_cast_kind targets[2] = {TB_K_F16, TB_K_BF16};
  const char *names[2] = {"float32->float16", "float32->bfloat16"};
  tb_cast_loop_fn ref[2];
  for (int t = 0; t < 2; t++) {
    if (tb__cast_loop(TB_K_F32, targets[t], 0, &ref[t]) != TB_OK) return 2;
  }
  const int levels = (int)TB_CPU_LEVEL_COUNT; /* the ones this CPU lacks give NULL: skipped */
  tb_cast_loop_fn fn[TB_CPU_LEVEL_COUNT][2];
  for (int l = 0; l < levels; l++) {
    for (int t = 0; t < 2; t++) fn[l][t] = tb__contig_cast_at((tb_cpu_level)l, TB_K_F32, targets[t]);
  }
  uint32_t *in = malloc(CHUNK * sizeof *in);
  uint16_t *want = malloc(CHUNK * sizeof *want), *got = malloc(CHUNK * sizeof *got);
  if (in == NULL || want == NULL || got == NULL) return 2;
  uint64_t bad[TB_CPU_LEVEL_COUNT][2] = {{0}};
  for (uint64_t base = 0; base < (UINT64_C(1) << 32); base += CHUNK) {
    for (uint64_t i = 0; i < CHUNK; i++) in[i] = (uint32_t)(base + i);
    for (int t = 0; t < 2; t++) {
      ref[t]((const char *)in, 4, (char *)want, 2, (int64_t)CHUNK);
      for (int l = 0; l < levels; l++) {
        if (fn[l][t] == NULL) continue;
        fn[l][t]((const char *)in, 4, (char *)got, 2, (int64_t)CHUNK);
        for (uint64_t i = 0; i < CHUNK; i++) {
          if (got[i] != want[i] && bad[l][t]++ < 4) {
            printf("  %s %s: 0x%08" PRIx32 " -> 0x%04x, scalar 0x%04x\n",
                   tb__cpu_level_name((tb_cpu_level)l), names[t], in[i], got[i], want[i]);
          }
        }
      }
    }
  }
  uint64_t total = 0;
  for (int l = 0; l < levels; l++) {
    for (int t = 0; t < 2; t++) {
      if (fn[l][t] == NULL) {
        printf("level %-6s %-18s: %s\n", tb__cpu_level_name((tb_cpu_level)l), names[t],
               tb__cpu_level_available((tb_cpu_level)l) ? "no kernel" : "not on this CPU");
        continue;
      }
      printf("level %-6s %-18s: %" PRIu64 " mismatches in 2^32 patterns\n",
             tb__cpu_level_name((tb_cpu_level)l), names[t], bad[l][t]);
      total += bad[l][t];
    }
  }
  free(got);
  free(want);
  free(in);
  return total == 0 ? 0 : 1;
}

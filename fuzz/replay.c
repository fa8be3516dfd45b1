/* The replay program of the fuzz targets (see replay.h). */
#include "replay.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Reads the whole file and runs it through the target; -1 when it cannot be read. */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    return -1;
  }
  unsigned char *bytes = NULL;
  size_t size = 0, cap = 0;
  for (;;) {
    if (size == cap) {
      cap = cap ? 2 * cap : 4096;
      unsigned char *grown = realloc(bytes, cap);
      if (grown == NULL) {
        free(bytes);
        fclose(f);
        return -1;
      }
      bytes = grown;
    }
    size_t got = fread(bytes + size, 1, cap - size, f);
    size += got;
    if (got == 0) break;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(bytes, size);
  free(bytes);
  return 0;
}

int main(int argc, char **argv) {
  (void)LLVMFuzzerInitialize(&argc, &argv);
  long runs = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      fprintf(stderr, "cannot stat %s\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
      if (run_file(argv[i]) != 0) return 1;
      runs++;
      continue;
    }
    DIR *dir = opendir(argv[i]);
    if (dir == NULL) return 1;
    struct dirent *ent;
    while ((ent = readdir(dir)) != NULL) {
      if (ent->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], ent->d_name);
      if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
      printf("%s", ent->d_name);
      fflush(stdout);
      if (run_file(path) != 0) {
        closedir(dir);
        return 1;
      }
      printf(": %s\n", tb_status_name(tb_fuzz_last_status()));
      runs++;
    }
    closedir(dir);
  }
  printf("replayed %ld inputs\n", runs);
  return runs > 0 ? 0 : 1;
}

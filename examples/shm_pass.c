/*
 * A tensor in shared memory, passed to another process without copying:
 * the parent makes it, a forked child receives it through a Unix socket
 * (the handle's bytes with the descriptor attached) and writes into it, and
 * the parent reads the child's writes in its own tensor.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tensorbridge/tensorbridge.h>

static int check(tb_status st, const char *what) {
  if (st != TB_OK) fprintf(stderr, "%s: %s: %s\n", what, tb_status_name(st), tb_last_error());
  return st != TB_OK;
}

/* The child: attach, write row i as 10 * i + j, tell the parent, leave. */
static int child(int sock) {
  tb_tensor_t *t;
  if (check(tb_shm_recv(sock, &t), "child: recv")) return 1;
  float *x = tb_tensor_data(t);
  const int64_t *shape = tb_tensor_shape(t);
  printf("child:  attached a %s tensor of shape (%lld, %lld) at %p\n",
         tb_dtype_name(tb_tensor_dtype(t)), (long long)shape[0], (long long)shape[1], (void *)x);
  for (int64_t i = 0; i < shape[0]; i++) {
    for (int64_t j = 0; j < shape[1]; j++) x[i * shape[1] + j] = (float)(10 * i + j);
  }
  tb_tensor_release(t);
  const char done = 'w';
  return write(sock, &done, 1) == 1 ? 0 : 1;
}

int main(void) {
  const int64_t shape[2] = {3, 4};
  const DLDataType f32 = {kDLFloat, 32, 1};
  tb_tensor_t *t;
  if (check(tb_shm_empty(f32, 2, shape, &t), "shm_empty")) return 1;
  printf("parent: %s, shape (3, 4), zero-filled, shared: %s, at %p\n",
         tb_dtype_name(tb_tensor_dtype(t)), tb_tensor_is_shared(t) ? "yes" : "no",
         tb_tensor_data(t));

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    return 1;
  }
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    close(sv[0]);
    const int code = child(sv[1]);
    fflush(stdout);
    _exit(code);
  }
  close(sv[1]);
  int ok = !check(tb_shm_send(sv[0], t), "parent: send");
  char done = 0;
  ok = ok && read(sv[0], &done, 1) == 1 && done == 'w';
  close(sv[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = 0;
  if (!ok) {
    fprintf(stderr, "the child did not attach and write\n");
    tb_tensor_release(t);
    return 1;
  }

  const float *x = tb_tensor_data(t);
  int mismatches = 0;
  printf("parent: after the child's writes:\n");
  for (int i = 0; i < 3; i++) {
    printf("  ");
    for (int j = 0; j < 4; j++) {
      printf(" %4g", (double)x[i * 4 + j]);
      mismatches += x[i * 4 + j] != (float)(10 * i + j);
    }
    printf("\n");
  }
  tb_tensor_release(t);
  if (mismatches != 0) {
    fprintf(stderr, "%d elements differ from what the child wrote\n", mismatches);
    return 1;
  }
  printf("verified: all 12 elements the child wrote are seen by the parent, no copy made\n");
  return 0;
}

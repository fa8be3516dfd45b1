/*
 * A tensor's data through MPI, straight from its DLTensor view: no copy into
 * a send buffer, strided views included. Run with two ranks:
 *   mpirun -n 2 ./tb-mpi-send
 * Rank 0 makes a 4 x 6 float32 tensor and sends (1) all of it and (2) a
 * strided view of it (every other column of rows 1..3, transposed) described
 * to MPI by a datatype built from the view's shape and strides. Rank 1
 * receives each into a fresh C-order tensor and checks every element.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include <tensorbridge/tensorbridge.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    tb_status st_ = (call);                                                \
    if (st_ != TB_OK) {                                                    \
      fprintf(stderr, "%s failed: %s\n", #call, tb_last_error());          \
      MPI_Abort(MPI_COMM_WORLD, 1);                                        \
    }                                                                      \
  } while (0)

/* An MPI datatype for the elements a DLTensor addresses, in C order: one
 * hvector per dimension, innermost first, strides in bytes. The tensor's
 * data pointer (with byte_offset) is the buffer to pass with it. */
static MPI_Datatype datatype_of(const DLTensor *dl, MPI_Datatype element, MPI_Aint itemsize) {
  MPI_Datatype type = element;
  MPI_Type_dup(element, &type);
  for (int d = dl->ndim - 1; d >= 0; d--) {
    MPI_Datatype outer;
    MPI_Type_create_hvector((int)dl->shape[d], 1, (MPI_Aint)dl->strides[d] * itemsize, type,
                            &outer);
    MPI_Type_free(&type);
    type = outer;
  }
  MPI_Type_commit(&type);
  return type;
}

static void *first_element(const DLTensor *dl) { return (char *)dl->data + dl->byte_offset; }

static int receive_and_check(int tag, int64_t rows, int64_t cols, const float *expected) {
  tb_tensor_t *r = NULL;
  CHECK(tb_tensor_empty(tb_dtype(kDLFloat, 32), 2, (int64_t[]){rows, cols},
                        (DLDevice){kDLCPU, 0}, TB_ORDER_C, &r));
  const DLTensor *dl = tb_tensor_dltensor(r);
  MPI_Recv(first_element(dl), (int)(rows * cols), MPI_FLOAT, 0, tag, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  const float *got = tb_tensor_data(r);
  int bad = 0;
  for (int64_t i = 0; i < rows * cols; i++) bad += got[i] != expected[i];
  tb_tensor_release(r);
  return bad;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) fprintf(stderr, "run with two ranks: mpirun -n 2 %s\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  /* What rank 1 expects: the tensor, then the view (rows 1..3, columns
   * 0, 2, 4, transposed: 3 x 3). Element (i, j) of the tensor is 10 i + j. */
  float whole[24], view[9];
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < 6; j++) whole[i * 6 + j] = (float)(10 * i + j);
  }
  for (int c = 0; c < 3; c++) {
    for (int r = 0; r < 3; r++) view[c * 3 + r] = whole[(r + 1) * 6 + 2 * c];
  }

  if (rank == 0) {
    tb_tensor_t *t = NULL, *rows = NULL, *cols = NULL, *v = NULL;
    CHECK(tb_tensor_new(whole, tb_dtype(kDLFloat, 32), 2, (int64_t[]){4, 6}, NULL, NULL,
                        TB_ORDER_C, 0, &t));
    const DLTensor *dl = tb_tensor_dltensor(t);
    MPI_Send(first_element(dl), 24, MPI_FLOAT, 1, 1, MPI_COMM_WORLD);

    CHECK(tb_tensor_slice(t, 0, 1, 4, 1, &rows));
    CHECK(tb_tensor_slice(rows, 1, 0, 6, 2, &cols));
    CHECK(tb_tensor_transpose(cols, 0, 1, &v));
    const DLTensor *vdl = tb_tensor_dltensor(v);
    MPI_Datatype type = datatype_of(vdl, MPI_FLOAT, sizeof(float));
    MPI_Send(first_element(vdl), 1, type, 1, 2, MPI_COMM_WORLD);
    MPI_Type_free(&type);
    printf("rank 0: sent a 4 x 6 tensor and a strided 3 x 3 view of it (strides %lld, %lld)\n",
           (long long)vdl->strides[0], (long long)vdl->strides[1]);
    tb_tensor_release(v);
    tb_tensor_release(cols);
    tb_tensor_release(rows);
    tb_tensor_release(t);
  } else {
    int bad = receive_and_check(1, 4, 6, whole) + receive_and_check(2, 3, 3, view);
    printf("rank 1: received both, %d wrong elements\n", bad);
    if (bad != 0) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return 0;
}

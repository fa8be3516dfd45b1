// Configure-time probe (meson.build): nvcc and its host compiler can build a kernel.
extern "C" __global__ void tb_cuda_probe(int *p) { *p = 1; }

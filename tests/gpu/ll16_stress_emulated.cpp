// ringflow_test_gpu_ll16_emulated: ll16_stress.cu built by the host compiler, its "device" host
// threads (RINGFLOW_GPU_TEST_EMULATE) — checks the program's logic and that its check can fail (the
// split-store control must find torn units); it proves nothing about PCIe (the CUDA build does).
#define RINGFLOW_GPU_TEST_EMULATE 1
#include "ll16_stress.cu"

// tests/gpu/device_handlers_emulated.cpp — device_handlers.cu built by the host compiler, with
// "device" memory in host memory and each kernel block on a std::thread (see the shim there).
// It checks the test's own logic and the ring protocol of its ping-pong on machines without a GPU;
// it proves nothing about device code generation (that is what the nvcc / hipcc builds are for).
#define RINGFLOW_GPU_TEST_EMULATE 1
#include "device_handlers.cu"

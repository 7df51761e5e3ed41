// ringflow — the runtime program: run supervised topologies, validate them, list devices.
// The command line is ringflow::ops::program_main (runtime/program/program_main.cpp); this file
// registers the GPU backends this executable links.
#include "ringflow/runtime/program.hpp"

int main(int argc, char** argv) {
  // Before any CUDA call and any thread (the CUDA backend's static initializer did it already when
  // linked; a program that loads it later needs this line): see ringflow/gpu/gpu_device.hpp.
  ringflow::gpu::prepare_process();
  ringflow::ops::use_linked_gpu_backends();
  return ringflow::ops::program_main(argc, argv);
}

// ringflow — the runtime program: run supervised topologies, validate them, list devices.
// The command line is ringflow::ops::program_main (runtime/program/program_main.cpp); this file
// registers the GPU backends this executable links.
#include "ringflow/runtime/program.hpp"

int main(int argc, char** argv) {
  ringflow::ops::use_linked_gpu_backends();
  return ringflow::ops::program_main(argc, argv);
}

# ringflow_add_kernel_plugin(<name> SOURCES <src>... [LIBS <lib>...] [ALLOW_UNDEFINED])
#
# Builds a kernel plugin: a shared library (MODULE, lib<name>.so) that a topology names with
# `plugins: [path]` and `ringflow run` / `ringflow validate` / kernel-host workers load. Its sources
# use RINGFLOW_KERNEL_PLUGIN(K...) and RINGFLOW_PLUGIN_FUNCTION(name, fn) (ringflow/plugin.hpp);
# a .cu source may add RINGFLOW_PLUGIN_GPU_KERNELS(K...) (ringflow/gpu/plugin_kernels.cuh).
#
# What it sets up, and why:
#   * links ringflow::plugin_api only: headers (kernel API, descriptors, FlatBuffers), never a
#     ringflow library — a plugin with its own copy of a host registry would be a second, silent
#     one. Everything crosses through the plugin's table.
#   * -fvisibility=hidden (and inlines hidden): the entry point ringflow_plugin_v1 is the only
#     exported symbol, so two plugins never interpose each other's inline functions or statics.
#   * -Wl,--no-undefined: a plugin that needs a symbol of the program does not link (the program
#     exports nothing to plugins). ALLOW_UNDEFINED lifts it (ringflow's own tests use it for the
#     host emulator of the GPU runtime).
#   * RINGFLOW_PLUGIN_NAME="<name>" (the table's plugin_name, shown when it is loaded).
#   * LIBS: the plugin's own libraries (its schemas from ringflow_add_schemas, a GPU runtime).
# Installed with the ringflow package (find_package(ringflow) includes it).
function(ringflow_add_kernel_plugin name)
  cmake_parse_arguments(ARG "ALLOW_UNDEFINED" "" "SOURCES;LIBS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ringflow_add_kernel_plugin(${name}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "ringflow_add_kernel_plugin(${name}): SOURCES <file>... is required")
  endif()
  if(TARGET ringflow_plugin_api)
    set(api ringflow_plugin_api)
  elseif(TARGET ringflow::plugin_api)
    set(api ringflow::plugin_api)
  else()
    message(FATAL_ERROR "ringflow_add_kernel_plugin(${name}): no ringflow::plugin_api (find_package(ringflow) first)")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${api} ${ARG_LIBS})
  target_compile_definitions(${name} PRIVATE "RINGFLOW_PLUGIN_NAME=\"${name}\"")
  set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON POSITION_INDEPENDENT_CODE ON)
  if(NOT ARG_ALLOW_UNDEFINED)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
endfunction()

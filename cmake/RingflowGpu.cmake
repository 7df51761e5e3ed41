# GPU toolchains. RINGFLOW_CUDA / RINGFLOW_HIP: AUTO (on when nvcc / hipcc is found), ON, OFF.
# Sets RINGFLOW_CUDA_ENABLED / RINGFLOW_HIP_ENABLED. When on, the device-portable headers (view,
# writer, ring, kernel API, demo kernels) are compiled for the device on every build, so CI
# catches host-only code in them even without a GPU.
set(RINGFLOW_CUDA_ENABLED OFF)
set(RINGFLOW_HIP_ENABLED OFF)
set(RINGFLOW_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures (sm_90 = H100/H200)")
set(RINGFLOW_HIP_ARCH "gfx90a" CACHE STRING "HIP offload architecture(s), ';'-separated")

if(NOT RINGFLOW_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(RINGFLOW_NVCC nvcc HINTS ENV CUDA_PATH /usr/local/cuda PATH_SUFFIXES bin)
    if(RINGFLOW_NVCC)
      set(CMAKE_CUDA_COMPILER "${RINGFLOW_NVCC}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES "${RINGFLOW_CUDA_ARCHITECTURES}")
    enable_language(CUDA)
    # CMake < 3.25.2 (Debian 12 ships 3.25.1) knows no C++20 flag for nvcc ("CUDA20"); nvcc >= 12
    # takes -std=c++20. Set after enable_language() so its compiler checks do not request CUDA20.
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(RINGFLOW_CUDA_ENABLED ON)
  elseif(RINGFLOW_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RINGFLOW_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

if(NOT RINGFLOW_HIP STREQUAL "OFF")
  find_program(RINGFLOW_HIPCC hipcc)
  if(RINGFLOW_HIPCC)
    set(RINGFLOW_HIP_ENABLED ON)
  elseif(RINGFLOW_HIP STREQUAL "ON")
    message(FATAL_ERROR "RINGFLOW_HIP=ON but hipcc was not found")
  endif()
endif()

# ringflow_hip_object(<target> SOURCE <file> INCLUDES <dirs>...): compiles one HIP source with
# hipcc into an object (device code for RINGFLOW_HIP_ARCH), as a build-time check target.
function(ringflow_hip_object target)
  cmake_parse_arguments(ARG "" "SOURCE;OUTPUT_VAR" "INCLUDES;DEPENDS" ${ARGN})
  get_filename_component(src "${ARG_SOURCE}" ABSOLUTE)
  set(obj "${CMAKE_CURRENT_BINARY_DIR}/${target}.o")
  # ringflow's generated descriptors (messages.hpp includes them) come with every HIP compile.
  set(inc_flags "-I${PROJECT_BINARY_DIR}/messages/generated")
  foreach(d IN LISTS ARG_INCLUDES)
    list(APPEND inc_flags "-I${d}")
  endforeach()
  set(arch_flags)
  foreach(a IN LISTS RINGFLOW_HIP_ARCH)
    list(APPEND arch_flags "--offload-arch=${a}")
  endforeach()
  add_custom_command(
    OUTPUT "${obj}"
    # hipcc prints a harmless rocm_agent_enumerator traceback on machines without a GPU.
    COMMAND "${RINGFLOW_HIPCC}" -x hip -std=c++20 -O2 -fPIC -ffp-contract=off ${arch_flags} ${inc_flags}
            -c "${src}" -o "${obj}"
    DEPENDS "${src}" ${ARG_DEPENDS}
    IMPLICIT_DEPENDS CXX "${src}"
    COMMENT "hipcc ${ARG_SOURCE} (${RINGFLOW_HIP_ARCH})"
    VERBATIM)
  add_custom_target(${target} ALL DEPENDS "${obj}")
  add_dependencies(${target} ringflow_schemas_gen)
  if(ARG_OUTPUT_VAR)
    set_source_files_properties("${obj}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
    set(${ARG_OUTPUT_VAR} "${obj}" PARENT_SCOPE)
  endif()
endfunction()

# ringflow_add_schemas(<target> OUTPUT_DIR <dir> SCHEMAS <file.fbs>...)
# Compiles FlatBuffers schemas with flatc at build time into <dir> (in the build tree, never
# committed) and makes <target> an INTERFACE library whose include path holds the headers.
find_program(FLATC_EXECUTABLE flatc REQUIRED)

function(ringflow_add_schemas target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR;INCLUDE_PREFIX" "SCHEMAS" ${ARGN})
  set(out "${ARG_OUTPUT_DIR}/${ARG_INCLUDE_PREFIX}")
  set(headers)
  foreach(schema IN LISTS ARG_SCHEMAS)
    get_filename_component(abs "${schema}" ABSOLUTE)
    get_filename_component(name "${schema}" NAME_WE)
    set(header "${out}/${name}_generated.h")
    add_custom_command(
      OUTPUT "${header}"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${out}"
      COMMAND "${FLATC_EXECUTABLE}" --cpp --scoped-enums -o "${out}" "${abs}"
      DEPENDS "${abs}" "${FLATC_EXECUTABLE}"
      COMMENT "flatc ${name}.fbs"
      VERBATIM)
    list(APPEND headers "${header}")
  endforeach()
  add_custom_target(${target}_gen DEPENDS ${headers})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE "$<BUILD_INTERFACE:${ARG_OUTPUT_DIR}>" "$<INSTALL_INTERFACE:include>")
endfunction()

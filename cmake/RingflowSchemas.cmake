# ringflow_add_schemas(<target> SCHEMAS <a.fbs>... [OUTPUT_DIR <dir>] [INCLUDE_PREFIX <p>]
#                      [NAMESPACE <ns>] [INCLUDE_DIRS <dir>...])
#
# Compiles FlatBuffers schemas at build time and makes <target> an INTERFACE library whose include
# path holds, for every schema <stem>.fbs, in <dir>/<p>/:
#   <stem>_generated.h  flatc's C++ (host: builders, the object API, Verifiers)
#   <stem>_ringflow.hpp ringflow's device-portable descriptors (ringflow_schemagen): per table the
#                       type id, field ids, defaults, inline bytes, typed RINGFLOW_HD accessors and
#                       writers; per struct a layout-checked mirror; per enum an enum class.
# OUTPUT_DIR     default ${CMAKE_CURRENT_BINARY_DIR}/<target>; never in the source tree.
# INCLUDE_PREFIX a folder inside it, so headers are included as "<p>/<stem>_ringflow.hpp".
# NAMESPACE      the descriptors' C++ namespace; default <schema namespace>::rf (flatc's own
#                classes keep the schema namespace itself).
# INCLUDE_DIRS   extra folders flatc searches for `include "x.fbs";` (each schema's own folder is
#                searched too).
# Type ids: the root type's is the schema's file_identifier; any other table becomes a message type
# with `attribute "ringflow_id";` declared and `table T (ringflow_id: "ABCD") {...}`.
# Installed with the ringflow package (find_package(ringflow) includes it); needs flatc on PATH.
find_program(FLATC_EXECUTABLE flatc)

function(ringflow_add_schemas target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR;INCLUDE_PREFIX;NAMESPACE" "SCHEMAS;INCLUDE_DIRS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ringflow_add_schemas(${target}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SCHEMAS)
    message(FATAL_ERROR "ringflow_add_schemas(${target}): SCHEMAS <file.fbs>... is required")
  endif()
  if(NOT FLATC_EXECUTABLE)
    message(FATAL_ERROR "ringflow_add_schemas(${target}): flatc was not found (Debian: apt-get install flatbuffers-compiler)")
  endif()
  if(TARGET ringflow_schemagen)
    set(gen "$<TARGET_FILE:ringflow_schemagen>")
    set(gen_dep ringflow_schemagen)
  elseif(TARGET ringflow::schemagen)
    set(gen "$<TARGET_FILE:ringflow::schemagen>")
    set(gen_dep ringflow::schemagen)
  else()
    message(FATAL_ERROR "ringflow_add_schemas(${target}): no ringflow_schemagen (find_package(ringflow) first)")
  endif()
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  endif()
  set(out "${ARG_OUTPUT_DIR}")
  if(ARG_INCLUDE_PREFIX)
    set(out "${ARG_OUTPUT_DIR}/${ARG_INCLUDE_PREFIX}")
  endif()
  set(bfbs_dir "${CMAKE_CURRENT_BINARY_DIR}/${target}.bfbs")
  set(ns_args)
  if(ARG_NAMESPACE)
    set(ns_args --namespace "${ARG_NAMESPACE}")
  endif()
  set(inc_dirs)
  set(abs_schemas)
  foreach(dir IN LISTS ARG_INCLUDE_DIRS)
    get_filename_component(d "${dir}" ABSOLUTE)
    list(APPEND inc_dirs "${d}")
  endforeach()
  foreach(schema IN LISTS ARG_SCHEMAS)
    get_filename_component(abs "${schema}" ABSOLUTE)
    get_filename_component(dir "${abs}" DIRECTORY)
    list(APPEND inc_dirs "${dir}")
    list(APPEND abs_schemas "${abs}")
  endforeach()
  list(REMOVE_DUPLICATES inc_dirs)
  set(inc_args)
  foreach(d IN LISTS inc_dirs)
    list(APPEND inc_args -I "${d}")
  endforeach()
  set(headers)
  set(stems)
  foreach(abs IN LISTS abs_schemas)
    get_filename_component(name "${abs}" NAME_WE)
    get_filename_component(dir "${abs}" DIRECTORY)
    if(name IN_LIST stems)
      message(FATAL_ERROR "ringflow_add_schemas(${target}): two schemas named ${name}.fbs (their headers would collide)")
    endif()
    list(APPEND stems "${name}")
    set(header "${out}/${name}_generated.h")
    set(portable "${out}/${name}_ringflow.hpp")
    add_custom_command(
      OUTPUT "${header}" "${portable}"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${out}" "${bfbs_dir}"
      COMMAND "${FLATC_EXECUTABLE}" --cpp --scoped-enums ${inc_args} -o "${out}" "${abs}"
      COMMAND "${FLATC_EXECUTABLE}" --binary --schema --bfbs-filenames "${dir}" ${inc_args} -o "${bfbs_dir}" "${abs}"
      COMMAND "${gen}" --bfbs "${bfbs_dir}/${name}.bfbs" --schema "${abs}" --out "${portable}"
              --include-prefix "${ARG_INCLUDE_PREFIX}" ${ns_args}
      DEPENDS "${abs}" ${abs_schemas} "${FLATC_EXECUTABLE}" ${gen_dep}
      COMMENT "flatc + ringflow_schemagen ${name}.fbs"
      VERBATIM)
    list(APPEND headers "${header}" "${portable}")
  endforeach()
  add_custom_target(${target}_gen DEPENDS ${headers})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE "$<BUILD_INTERFACE:${ARG_OUTPUT_DIR}>")
  if(TARGET ringflow_fb)
    target_link_libraries(${target} INTERFACE ringflow_fb)
  else()
    target_link_libraries(${target} INTERFACE ringflow::fb)
  endif()
endfunction()

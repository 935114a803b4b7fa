# cnngen_add_model(TARGET model.cnn [WEIGHTS w.safetensors] [PREFIX p]
#                  [NO_TRAIN] [MAIN] [EMIT c|obj])
#
# Runs cnngen at build time on model.cnn and makes TARGET from the result:
# a static library (link it and include TARGET.h), or with MAIN an
# executable (the generated program: PROG predict ...).  cnngen runs again
# when the model or the weights change (its -MD -MF depfile, and DEPENDS);
# nothing else is rebuilt.  Symbols carry PREFIX, by default the model's
# name.  The generated TARGET.c and TARGET.h are in
# ${CMAKE_CURRENT_BINARY_DIR}/TARGET/.  EMIT obj: cnngen's LLVM backend
# writes TARGET.o instead of TARGET.c (no C compiler run on the model; the
# build fails with cnngen's message if it was built without LLVM).
#
# Works with find_package(cnngen) and with add_subdirectory/FetchContent,
# and under a cross toolchain file (examples/cortex-m) for a baked model.
function(cnngen_add_model target model)
  cmake_parse_arguments(ARG "NO_TRAIN;MAIN" "WEIGHTS;PREFIX;EMIT" "" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "cnngen_add_model: unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_EMIT)
    set(ARG_EMIT c)
  endif()
  if(NOT ARG_EMIT STREQUAL "c" AND NOT ARG_EMIT STREQUAL "obj")
    message(FATAL_ERROR "cnngen_add_model: EMIT takes c or obj, not '${ARG_EMIT}'")
  endif()
  get_filename_component(model "${model}" ABSOLUTE)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  if(ARG_EMIT STREQUAL "obj")
    set(source "${dir}/${target}.o")
  else()
    set(source "${dir}/${target}.c")
  endif()
  set(header "${dir}/${target}.h")
  set(options --emit=${ARG_EMIT})
  set(depends "${model}")
  if(ARG_WEIGHTS)
    get_filename_component(weights "${ARG_WEIGHTS}" ABSOLUTE)
    list(APPEND options --weights "${weights}")
    list(APPEND depends "${weights}")
  endif()
  if(ARG_PREFIX)
    list(APPEND options --prefix "${ARG_PREFIX}")
  endif()
  if(ARG_NO_TRAIN)
    list(APPEND options --no-train)
  endif()
  if(ARG_MAIN)
    list(APPEND options --main)
  endif()
  file(MAKE_DIRECTORY "${dir}")
  add_custom_command(
    OUTPUT "${source}" "${header}"
    COMMAND cnngen::cnngen "${model}" -o "${source}" -MD -MF "${dir}/${target}.d" ${options}
    DEPENDS ${depends} cnngen::cnngen
    DEPFILE "${dir}/${target}.d"
    COMMENT "cnngen ${target}: ${model}"
    VERBATIM)
  if(ARG_MAIN)
    add_executable(${target} "${source}" "${header}")
  else()
    add_library(${target} STATIC "${source}" "${header}")
  endif()
  if(ARG_EMIT STREQUAL "obj")
    set_source_files_properties("${source}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
    set_target_properties(${target} PROPERTIES LINKER_LANGUAGE C)
  endif()
  target_include_directories(${target} PUBLIC "${dir}")
  # A baked predictor (WEIGHTS and NO_TRAIN) needs only libm; anything else
  # the runtime, which is built for the host: a cross build must bake.
  if(ARG_WEIGHTS AND ARG_NO_TRAIN)
    target_link_libraries(${target} PUBLIC m)
  elseif(CMAKE_CROSSCOMPILING)
    message(FATAL_ERROR "cnngen_add_model: ${target} needs the runtime (libcnnrt), which is "
                        "built for the host: give WEIGHTS and NO_TRAIN to cross-compile it")
  else()
    target_link_libraries(${target} PUBLIC cnngen::cnnrt)
  endif()
endfunction()

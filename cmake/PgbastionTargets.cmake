# One helper for every target of ours: warnings are errors here, and only here
# (third-party headers come in as SYSTEM through their imported targets).
function(pgb_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Wnull-dereference
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough -Werror)
  # GCC 12 at -O3 reports impossible overlaps inside std::string's operator+
  # ("accessing 9223372036854775810 or more bytes", GCC bug 105329): a
  # warning about the standard library, not our code, that broke Release.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()

# --- Layers the build enforces (STYLE.md rule 12) ------------------------------
# base -> proto -> policy -> audit (core/audit) -> gateway (core) -> tools: each
# layer sees only the layers below it. Includes are written from the repository
# root ("base/log.h", "core/audit/record.h"), but no target has the repository
# root on its include path. Instead each layer gets an include root of its own
# in the build tree holding one symlink, named as the layer's folder:
#
#   build/include/base/base                -> <src>/base
#   build/include/proto/proto              -> <src>/proto
#   build/include/policy/policy            -> <src>/policy
#   build/include/core_audit/core/audit    -> <src>/core/audit
#   build/include/core/core                -> <src>/core     (gateway)
#
# That root is the PUBLIC include directory of the layer's library, and a
# library links the layers below it (DEPS), so it sees their headers and its
# own, never those above: "core/config.h" from policy/ is "file not found".
# The audit layer lives inside core/ but its root exposes only core/audit, so
# audit code cannot reach the gateway's headers; the gateway's root exposes
# all of core/ (core/audit included, which is below it). A quoted include is
# also looked up beside the including file, which never reaches another
# layer's folder. tests/check_layers.py checks the same order over the
# sources as a unit test, so the rule also holds where the build cannot see
# it (a header no target compiles).
function(pgb_layer_include_root out layer)
  string(REPLACE "/" "_" root_name "${layer}")
  set(root "${PROJECT_BINARY_DIR}/include/${root_name}")
  get_filename_component(parent "${root}/${layer}" DIRECTORY)
  file(MAKE_DIRECTORY "${parent}")
  if(NOT IS_SYMLINK "${root}/${layer}")
    file(CREATE_LINK "${PROJECT_SOURCE_DIR}/${layer}" "${root}/${layer}" SYMBOLIC)
  endif()
  set(${out} "${root}" PARENT_SCOPE)
endfunction()

# pgb_library(NAME LAYER folder SOURCES a.cc b.cc DEPS x y): LAYER is the
# layer's folder (base, proto, policy, core/audit, core); DEPS name the
# layers below it that it uses, and third-party targets.
function(pgb_library name)
  cmake_parse_arguments(ARG "" "LAYER" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  pgb_layer_include_root(root "${ARG_LAYER}")
  target_include_directories(${name} PUBLIC "${root}")
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  pgb_warnings(${name})
endfunction()

# pgb_executable(NAME SOURCES ... DEPS ...): a tool (the top layer): its own
# headers as "tools/...", the libraries below it through DEPS.
function(pgb_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  pgb_layer_include_root(root tools)
  target_include_directories(${name} PRIVATE "${root}")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  pgb_warnings(${name})
endfunction()

# pgb_unit_tests(DEPS ...): every *_test.cc in the calling folder becomes one
# GoogleTest binary and one ctest entry (label "unit"). A test sees the
# library it tests (DEPS, with the layers below it) and tests/ itself
# ("tests/core/audit_test_support.h").
function(pgb_unit_tests)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB tests CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc")
  pgb_layer_include_root(root tests)
  foreach(src ${tests})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_include_directories(${name} PRIVATE "${root}")
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
    pgb_warnings(${name})
    add_test(NAME unit.${name} COMMAND ${name})
    set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 300)
  endforeach()
endfunction()

# pgb_benchmarks(DEPS ...): every *_benchmark.cc in the calling folder is one
# Google Benchmark binary (not a test: numbers are reported, never asserted).
function(pgb_benchmarks)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB benches CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*_benchmark.cc")
  foreach(src ${benches})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark benchmark::benchmark_main)
    pgb_warnings(${name})
  endforeach()
endfunction()

# pgb_fuzzer(NAME SOURCES ... DEPS ...): a libFuzzer target (Fuzz build type
# only). Our libraries carry -fsanitize=fuzzer-no-link from CMAKE_CXX_FLAGS_FUZZ;
# here the target links libFuzzer's main. Its seed corpus,
# tests/fuzz/corpus/<name minus _fuzzer>/, is replayed as ctest fuzz.<name>
# (label "fuzz"): each file is run once, nothing is written back.
function(pgb_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  pgb_layer_include_root(root tests)
  target_include_directories(${name} PRIVATE "${root}")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  pgb_warnings(${name})
  string(REGEX REPLACE "_fuzzer$" "" corpus_name ${name})
  file(GLOB seeds CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/corpus/${corpus_name}/*")
  if(seeds)
    add_test(NAME fuzz.${name} COMMAND ${name} ${seeds})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
endfunction()

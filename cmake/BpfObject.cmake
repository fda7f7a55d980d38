# BPF objects: CO-RE programs compiled with clang -target bpf, skeletons made by bpftool.
#
# vigil_bpf_object(NAME SOURCE [DEPENDS headers...]) compiles SOURCE (bpf/NAME.bpf.c) into
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.bpf.o, generates NAME.skel.h beside it with
# `bpftool gen skeleton`, and defines the INTERFACE target NAME_skel: linking it puts the
# skeleton header on the include path (#include "NAME.skel.h") and links libbpf. The
# skeleton embeds the object's bytes; include it in one translation unit only.

find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)

# The probes run in the kernel of the machine vigil-node runs on, whose processor is the
# build's target processor.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(VIGIL_BPF_ARCH x86_64)
  set(VIGIL_BPF_TARGET_ARCH x86)  # bpf_tracing.h's __TARGET_ARCH_<arch>
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(VIGIL_BPF_ARCH aarch64)
  set(VIGIL_BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "BPF probes: unsupported processor ${CMAKE_SYSTEM_PROCESSOR}")
endif()

# vmlinux.h: every kernel type, generated once from a kernel's BTF and committed under
# bpf/vmlinux/<arch>/, so the BPF object (a reference value) is the same wherever it is built;
# CO-RE relocates field offsets to the running kernel when the probes load.
set(VIGIL_VMLINUX_H ${PROJECT_SOURCE_DIR}/bpf/vmlinux/${VIGIL_BPF_ARCH}/vmlinux.h CACHE FILEPATH
  "vmlinux.h the BPF probes are compiled against")
if(NOT EXISTS ${VIGIL_VMLINUX_H})
  message(FATAL_ERROR "${VIGIL_VMLINUX_H} not found: generate it with "
    "bpf/vmlinux/generate.sh ${VIGIL_BPF_ARCH} (see docs/probes.md)")
endif()
get_filename_component(VIGIL_VMLINUX_DIR ${VIGIL_VMLINUX_H} DIRECTORY)

# `cmake --build build --target vigil_regenerate_vmlinux_h` rewrites the committed header from
# VIGIL_VMLINUX_BTF (by default the running kernel's BTF). Never part of a normal build.
set(VIGIL_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
  "Kernel BTF that vigil_regenerate_vmlinux_h generates vmlinux.h from")
add_custom_target(vigil_regenerate_vmlinux_h
  COMMAND sh ${PROJECT_SOURCE_DIR}/bpf/vmlinux/generate.sh ${VIGIL_BPF_ARCH} ${VIGIL_VMLINUX_BTF}
  COMMENT "Regenerating bpf/vmlinux/${VIGIL_BPF_ARCH}/vmlinux.h from ${VIGIL_VMLINUX_BTF}"
  VERBATIM)

# The same path maps as the C++ code (top-level CMakeLists.txt), and a fixed compilation
# directory: BTF names the source by it.
set(VIGIL_BPF_PATH_FLAGS ${VIGIL_PREFIX_MAP_FLAGS})
if(VIGIL_REPRODUCIBLE)
  list(APPEND VIGIL_BPF_PATH_FLAGS -fdebug-compilation-dir=.)
endif()

set(VIGIL_BPF_INCLUDES -I${VIGIL_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR} -I/usr/include)
if(CMAKE_LIBRARY_ARCHITECTURE)
  list(APPEND VIGIL_BPF_INCLUDES -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()

function(vigil_bpf_object name src)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  get_filename_component(src_abs ${src} ABSOLUTE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    # The path flags keep build paths out of the object's BTF (source file names).
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${VIGIL_BPF_TARGET_ARCH} -Wall -Werror
            ${VIGIL_BPF_PATH_FLAGS} ${VIGIL_BPF_INCLUDES}
            -c ${src_abs} -o ${obj}.tmp.o
    # Linking through bpftool strips DWARF (BTF stays), so the embedded object is small.
    COMMAND ${BPFTOOL} gen object ${obj} ${obj}.tmp.o
    DEPENDS ${src_abs} ${ARG_DEPENDS} ${VIGIL_VMLINUX_H}
    COMMENT "Compiling BPF object ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()

# BPF objects: CO-RE programs compiled with clang -target bpf, skeletons made by bpftool.
#
# vigil_bpf_object(NAME SOURCE [DEPENDS headers...]) compiles SOURCE (bpf/NAME.bpf.c) into
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.bpf.o, generates NAME.skel.h beside it with
# `bpftool gen skeleton`, and defines the INTERFACE target NAME_skel: linking it puts the
# skeleton header on the include path (#include "NAME.skel.h") and links libbpf. The
# skeleton embeds the object's bytes; include it in one translation unit only.

find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)

set(VIGIL_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
  "Kernel BTF that vmlinux.h is generated from")
set(VIGIL_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)

# vmlinux.h: every kernel type, from the running kernel's BTF, generated once per build dir.
add_custom_command(
  OUTPUT ${VIGIL_BPF_GEN_DIR}/vmlinux.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${VIGIL_BPF_GEN_DIR}
  COMMAND ${BPFTOOL} btf dump file ${VIGIL_VMLINUX_BTF} format c > ${VIGIL_BPF_GEN_DIR}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${VIGIL_BPF_GEN_DIR}/vmlinux.h.tmp
          ${VIGIL_BPF_GEN_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${VIGIL_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(vigil_vmlinux_h DEPENDS ${VIGIL_BPF_GEN_DIR}/vmlinux.h)

function(vigil_bpf_object name src)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  get_filename_component(src_abs ${src} ABSOLUTE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${VIGIL_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR} -I/usr/include
            -I/usr/include/x86_64-linux-gnu
            -c ${src_abs} -o ${obj}.tmp.o
    # Linking through bpftool strips DWARF (BTF stays), so the embedded object is small.
    COMMAND ${BPFTOOL} gen object ${obj} ${obj}.tmp.o
    DEPENDS ${src_abs} ${ARG_DEPENDS} ${VIGIL_BPF_GEN_DIR}/vmlinux.h
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
  add_dependencies(${name}_skel_gen vigil_vmlinux_h)
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()

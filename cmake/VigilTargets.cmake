# Helpers that keep each component's CMakeLists.txt short.

# vigil_library(NAME DIR LIBS...): a static library of every .cc under DIR except main.cc
# and except the folders below DIR that have a CMakeLists.txt of their own (those are
# libraries of their own), compiled with Vigil's warnings. LIBS are its public dependencies.
# New files join the library without editing CMake.
function(vigil_library name dir)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "/main\\.cc$")
  file(GLOB_RECURSE sublists CONFIGURE_DEPENDS ${dir}/*/CMakeLists.txt)
  set(own_srcs "")
  foreach(src ${srcs})
    set(own TRUE)
    foreach(sublist ${sublists})
      get_filename_component(subdir ${sublist} DIRECTORY)
      string(FIND "${src}" "${subdir}/" at)
      if(at EQUAL 0)
        set(own FALSE)
      endif()
    endforeach()
    if(own)
      list(APPEND own_srcs ${src})
    endif()
  endforeach()
  set(srcs ${own_srcs})
  if(NOT srcs)
    # A component with headers only so far.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARGN})
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARGN})
endfunction()

# vigil_executable(NAME SOURCE LIBS...): a thin executable. A missing source fails the
# configure step: an executable never silently drops out of the build.
function(vigil_executable name src)
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    message(FATAL_ERROR "${name}: source ${CMAKE_CURRENT_SOURCE_DIR}/${src} does not exist")
  endif()
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARGN})
endfunction()

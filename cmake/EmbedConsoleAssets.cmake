# Writes a C++ source holding every file of a directory as a byte array, for the web
# console (verifier/console/console_assets.h declares what it defines).
#
# As a function, at configure time: vigil_embed_console_assets(TARGET DIR) adds the
# generated source to TARGET, regenerated whenever a file in DIR changes.
# As a script (cmake -P): -DASSET_DIR=... -DOUTPUT=... writes the source.

if(CMAKE_SCRIPT_MODE_FILE)
  file(GLOB assets RELATIVE ${ASSET_DIR} ${ASSET_DIR}/*)
  list(SORT assets)
  set(arrays "")
  set(table "")
  set(index 0)
  foreach(name ${assets})
    file(READ ${ASSET_DIR}/${name} hex HEX)
    string(LENGTH "${hex}" hex_length)
    if(hex_length EQUAL 0)
      message(FATAL_ERROR "console asset ${name} is empty")
    endif()
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
    string(APPEND arrays "const unsigned char kAsset${index}[] = {\n    ${bytes}\n};\n")
    string(APPEND table "    {\"${name}\", kAsset${index}, sizeof(kAsset${index})},\n")
    math(EXPR index "${index} + 1")
  endforeach()
  file(WRITE ${OUTPUT}.tmp
    "// Generated from verifier/console/assets/ by cmake/EmbedConsoleAssets.cmake.\n"
    "#include \"verifier/console/console_assets.h\"\n\n"
    "namespace vigil::verifier::console {\nnamespace {\n\n${arrays}\n}  // namespace\n\n"
    "const Asset kAssets[] = {\n${table}};\n"
    "const size_t kAssetCount = ${index};\n\n}  // namespace vigil::verifier::console\n")
  file(RENAME ${OUTPUT}.tmp ${OUTPUT})
  return()
endif()

function(vigil_embed_console_assets target dir)
  file(GLOB assets CONFIGURE_DEPENDS ${dir}/*)
  set(output ${CMAKE_CURRENT_BINARY_DIR}/console_assets.cc)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DASSET_DIR=${dir} -DOUTPUT=${output}
      -P ${PROJECT_SOURCE_DIR}/cmake/EmbedConsoleAssets.cmake
    DEPENDS ${assets} ${PROJECT_SOURCE_DIR}/cmake/EmbedConsoleAssets.cmake
    COMMENT "Embedding the web console's assets"
    VERBATIM)
  target_sources(${target} PRIVATE ${output})
endfunction()

# The installed package. `cmake --install build --prefix P` writes
#   P/include/blocks/{framework,blocks}/...   the headers, laid out as in the tree, so that
#                                             #include "framework/nn/builder.h" works for users
#   P/lib/libblocks_*.a                       the static libraries (registrations compiled in)
#   P/bin/blockc, P/bin/blockc-model          the CLI (blockc runs blockc-model from its folder)
#   P/share/blocks/{configs,schemas}          the zoo and the JSON Schema
#   P/lib/cmake/blocks/                       blocksConfig.cmake, its version and the targets
# so that a project's find_package(blocks CONFIG REQUIRED) gives blocks::config, blocks::types,
# blocks::modules and the rest (examples/ is such a project; tests/tools/installed_package.cmake
# builds it against an install). Included from the top-level CMakeLists.txt once the libraries
# are defined; tools/blockc installs its programs into the same export set.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# blocks_NAME is blocks::NAME here and in the package. Torch-free: io, config, types, graph, hf,
# media, data, plot, text; with LibTorch: weights, modules, generate, train.
set(BLOCKS_PACKAGE_LIBRARIES io config types graph hf media data plot text weights modules generate
    train)
set(BLOCKS_PACKAGE_TARGETS "")
foreach(name ${BLOCKS_PACKAGE_LIBRARIES})
  if(NOT TARGET blocks_${name})
    continue()
  endif()
  add_library(blocks::${name} ALIAS blocks_${name})
  set_target_properties(blocks_${name} PROPERTIES EXPORT_NAME ${name})
  list(APPEND BLOCKS_PACKAGE_TARGETS blocks_${name})
endforeach()

# Every library reaches the headers through blocks_io; users need C++20 for them (designated
# initializers), which the build already uses, so this changes no flag here.
target_include_directories(blocks_io PUBLIC
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/blocks>)
target_compile_features(blocks_io PUBLIC cxx_std_20)

install(TARGETS ${BLOCKS_PACKAGE_TARGETS} EXPORT blocksTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY framework blocks DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/blocks
        FILES_MATCHING PATTERN "*.h")
install(DIRECTORY configs schemas DESTINATION ${CMAKE_INSTALL_DATADIR}/blocks)

set(BLOCKS_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/blocks)
set(BLOCKS_DATA_DIR ${CMAKE_INSTALL_DATADIR}/blocks)
install(EXPORT blocksTargets NAMESPACE blocks:: DESTINATION ${BLOCKS_PACKAGE_DIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/blocksConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/package/blocksConfig.cmake
  INSTALL_DESTINATION ${BLOCKS_PACKAGE_DIR}
  PATH_VARS BLOCKS_DATA_DIR)
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/package/blocksConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/package/blocksConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/package/blocksConfigVersion.cmake
        DESTINATION ${BLOCKS_PACKAGE_DIR})

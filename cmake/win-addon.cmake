# The Windows addon (acceptpool.node), cross-built with mingw-w64: Node-API
# and the few libuv calls come from node.exe through import libraries made
# here with dlltool; the C and C++ runtimes are linked in statically, so the
# module needs nothing beyond node.exe and Windows' own DLLs.
# Included from CMakeLists.txt; scripts/build-win.js drives it.

set(_node_api_headers ${CMAKE_CURRENT_SOURCE_DIR}/node_modules/node-api-headers)
if(NOT EXISTS ${_node_api_headers}/include/node_api.h)
  message(FATAL_ERROR "node-api-headers not found: run npm install first")
endif()
if(NOT ACCEPTPOOL_DLLTOOL)
  find_program(ACCEPTPOOL_DLLTOOL NAMES x86_64-w64-mingw32-dlltool REQUIRED)
endif()

# One import library per .def (all name NODE.EXE).
set(_import_libs "")
foreach(_def ${_node_api_headers}/def/node_api.def ${_node_api_headers}/def/js_native_api.def
             ${CMAKE_CURRENT_SOURCE_DIR}/cmake/node-uv.def)
  get_filename_component(_name ${_def} NAME_WE)
  set(_lib ${CMAKE_CURRENT_BINARY_DIR}/lib${_name}.a)
  add_custom_command(
    OUTPUT ${_lib}
    COMMAND ${ACCEPTPOOL_DLLTOOL} --input-def ${_def} --output-lib ${_lib} --dllname node.exe
    DEPENDS ${_def}
    COMMENT "import library for node.exe from ${_name}.def")
  list(APPEND _import_libs ${_lib})
endforeach()
add_custom_target(acceptpool_node_imports DEPENDS ${_import_libs})

file(GLOB ACCEPTPOOL_ADDON_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/native/addon/*.cc)
add_library(acceptpool_addon SHARED ${ACCEPTPOOL_ADDON_SOURCES})
add_dependencies(acceptpool_addon acceptpool_node_imports)
set_target_properties(acceptpool_addon PROPERTIES
  OUTPUT_NAME acceptpool
  PREFIX ""
  SUFFIX ".node")
target_include_directories(acceptpool_addon PRIVATE ${_node_api_headers}/include)
target_compile_definitions(acceptpool_addon PRIVATE NAPI_VERSION=8 BUILDING_NODE_EXTENSION)
target_link_options(acceptpool_addon PRIVATE -static -static-libgcc -static-libstdc++)
target_link_libraries(acceptpool_addon PRIVATE
  acceptpool_drivers acceptpool_loadgen ${ACCEPTPOOL_BACKEND_LIBS} acceptpool_core ${_import_libs} ws2_32 mswsock iphlpapi)

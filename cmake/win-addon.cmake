# What the Windows addon (acceptpool.node, cross-built with mingw-w64) adds
# to the addon target of CMakeLists.txt: Node-API and the few libuv calls
# come from node.exe through import libraries made here with dlltool, and
# the C and C++ runtimes are linked in statically, so the module needs
# nothing beyond node.exe and Windows' own DLLs. scripts/build-win.js drives
# it through cmake-js.

# node-api-headers ships the .def files beside the include directory that
# cmake-js passes in CMAKE_JS_INC.
set(_node_api_defs "")
foreach(_inc ${CMAKE_JS_INC})
  if(EXISTS ${_inc}/node_api.h AND EXISTS ${_inc}/../def/node_api.def)
    get_filename_component(_def_dir ${_inc}/../def ABSOLUTE)
    set(_node_api_defs ${_def_dir}/node_api.def ${_def_dir}/js_native_api.def)
  endif()
endforeach()
if(NOT _node_api_defs)
  message(FATAL_ERROR "node-api-headers' .def files not found beside CMAKE_JS_INC (${CMAKE_JS_INC}): run npm install")
endif()
if(NOT ACCEPTPOOL_DLLTOOL)
  find_program(ACCEPTPOOL_DLLTOOL NAMES x86_64-w64-mingw32-dlltool REQUIRED)
endif()

# One import library per .def (all name NODE.EXE).
set(_import_libs "")
foreach(_def ${_node_api_defs} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/node-uv.def)
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

add_dependencies(acceptpool_addon acceptpool_node_imports)
target_link_options(acceptpool_addon PRIVATE -static -static-libgcc -static-libstdc++)
target_link_libraries(acceptpool_addon PRIVATE ${_import_libs})

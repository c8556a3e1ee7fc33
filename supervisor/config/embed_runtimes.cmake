# Writes a C++ source holding the built-in runtime definitions (config/runtimes/*.toml) as
# string literals. Run by the build (cmake -P) whenever one of them changes.
file(GLOB runtime_files "${SOURCE_DIR}/config/runtimes/*.toml")
list(SORT runtime_files)
set(body "")
foreach(file ${runtime_files})
  file(READ "${file}" text)
  get_filename_component(name "${file}" NAME)
  string(APPEND body "    {\"config/runtimes/${name}\", R\"packvisor_toml(${text})packvisor_toml\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from config/runtimes/*.toml. Do not edit.\n#include \"supervisor/config/builtin_runtimes.h\"\n\nnamespace packvisor {\n\nconst std::vector<BuiltinRuntimeFile>& BuiltinRuntimeFiles() {\n  static const std::vector<BuiltinRuntimeFile> kFiles = {\n${body}  };\n  return kFiles;\n}\n\n}  // namespace packvisor\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")

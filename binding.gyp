# The addon users get (npm install). Its sources, flags, defines and system
# libraries come from native/build.json, the list CMake builds from too;
# scripts/build-config.js reads it, and fails for an OS without a backend.
{
  "targets": [
    {
      "target_name": "acceptpool",
      "include_dirs": ["native"],
      "sources": ["<!@(node scripts/build-config.js sources <(OS))"],
      "cflags_cc": ["<!@(node scripts/build-config.js cflags)"],
      "cflags_cc!": ["-fno-rtti"],
      "defines": ["<!@(node scripts/build-config.js defines <(OS))"],
      "libraries": ["<!@(node scripts/build-config.js libraries <(OS))"]
    }
  ]
}

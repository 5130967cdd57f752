# The addon users get (npm install). Its sources, flags, defines and system
# libraries come from native/build.json, the list CMake builds from too;
# scripts/build-config.js reads it, and fails for an OS without a backend.
# node-gyp hands cflags_cc to make (Linux, the BSDs); Xcode (macOS) and
# Visual Studio take their flags from xcode_settings and msvs_settings.
{
  "targets": [
    {
      "target_name": "acceptpool",
      "include_dirs": ["native"],
      "sources": ["<!@(node scripts/build-config.js sources <(OS))"],
      "cflags_cc": ["<!@(node scripts/build-config.js cflags)"],
      "cflags_cc!": ["-fno-rtti"],
      "defines": ["<!@(node scripts/build-config.js defines <(OS))"],
      "libraries": ["<!@(node scripts/build-config.js libraries <(OS))"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["<!@(node scripts/build-config.js cflags)"]
          }
        }],
        ["OS=='win'", {
          "msvs_settings": {
            "VCCLCompilerTool": {
              "AdditionalOptions": ["<!@(node scripts/build-config.js cflags msvc)"]
            }
          }
        }]
      ]
    }
  ]
}

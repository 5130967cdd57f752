{
  "targets": [
    {
      "target_name": "acceptpool",
      "cflags_cc": ["-std=c++17", "-O2", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-rtti"],
      "include_dirs": ["native"],
      "defines": ["NAPI_VERSION=8"],
      "sources": [
        "native/core/engine.cc",
        "native/core/event_batch.cc",
        "native/core/pool_policy.cc",
        "native/core/send_queue.cc",
        "native/core/session_table.cc",
        "native/core/status.cc",
        "native/addon/addon.cc",
        "native/addon/js.cc",
        "native/addon/native_server.cc",
        "native/addon/native_load_generator.cc",
        "native/addon/uv_event_loop.cc",
        "native/drivers/command_queue.cc",
        "native/drivers/drivers.cc",
        "native/loadgen/latency_histogram.cc",
        "native/loadgen/load_generator.cc"
      ],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/backends/epoll/epoll_backend.cc",
            "native/backends/posix/heap.cc",
            "native/backends/posix/socket_address.cc",
            "native/backends/posix/sys_errors.cc"
          ]
        }]
      ]
    }
  ]
}

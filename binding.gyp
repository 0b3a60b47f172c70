{
  "targets": [
    {
      "target_name": "tcp_repair",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/repair.cc",
        "native/queues.cc",
        "native/sockets.cc",
        "native/options.cc",
        "native/info.cc",
        "native/unix.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    },
    {
      "target_name": "tcp-repair-helper",
      "type": "executable",
      "sources": ["helper/tcp-repair-helper.c"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra"],
      "defines": ["_GNU_SOURCE"]
    }
  ]
}

// Node-shaped errors for failed syscalls: the errno travels up to JavaScript intact.
#pragma once
#include <napi.h>

namespace tcprepair {

// Throws (as a pending JS exception) an Error shaped like Node's ErrnoException:
// message "<syscall> <CODE>[: hint]", code "EPERM", errno -1, syscall "<syscall>".
// `fd` lets the hint tell "not a TCP socket" apart from "kernel lacks the option".
void ThrowErrno(Napi::Env env, int err, const char* syscall, int fd = -1);

// Argument helpers: on bad input they throw a TypeError and return false.
bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out);
bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max, int64_t* out);
bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t* out);

// A typed-array argument of the given element type: its first element and element count, from
// a single napi_get_typedarray_info (the hot-path functions take their data this way).
bool ArgTypedArray(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* name, void** data,
                   size_t* length);

}  // namespace tcprepair

// The kernel's own TCP header (linux/tcp.h has the repair structs and the full tcp_info that
// glibc's netinet/tcp.h lacks); the two cannot be included together, so SOL_TCP comes from here.
#pragma once
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#ifndef SOL_TCP
#define SOL_TCP IPPROTO_TCP
#endif
#ifndef TCP_CA_NAME_MAX
#define TCP_CA_NAME_MAX 16
#endif

// mbserver: the common Modbus TCP server for the throughput comparison, plain libmodbus
// (modbus_receive + modbus_reply), every unit id answered from one register map of 1000
// items per table. Counts the requests of each connection; when a connection closes it prints
//   C <requests> <first_ns> <last_ns>
// (CLOCK_MONOTONIC of the first and last request), so every client is measured the same way
// at the same place. Prints "server ready <port>" once listening (port 0 = any free port).
// Usage: mbserver PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 32

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct conn { int fd; long requests; int64_t first, last; };

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: mbserver PORT\n"); return 2; }
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    modbus_mapping_t *map = modbus_mapping_new(1000, 1000, 1000, 1000);
    if (!ctx || !map) { fprintf(stderr, "mbserver: %s\n", modbus_strerror(errno)); return 1; }
    int ls = modbus_tcp_listen(ctx, 16);
    if (ls < 0) { fprintf(stderr, "mbserver: listen: %s\n", modbus_strerror(errno)); return 1; }
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("server ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    struct conn conns[MAXC];
    int n = 0;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        struct pollfd p[1 + MAXC];
        p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < n; i++) p[1 + i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        if (poll(p, 1 + n, -1) < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
        for (int i = n - 1; i >= 0; i--) {
            if (!p[1 + i].revents) continue;
            modbus_set_socket(ctx, conns[i].fd);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) {
                int64_t t = mono_ns();
                if (conns[i].requests == 0) conns[i].first = t;
                conns[i].last = t;
                conns[i].requests++;
                modbus_reply(ctx, query, rc, map);
            } else if (rc < 0) {
                printf("C %ld %lld %lld\n", conns[i].requests, (long long)conns[i].first, (long long)conns[i].last);
                fflush(stdout);
                close(conns[i].fd);
                conns[i] = conns[--n];
            }
        }
        if (p[0].revents & POLLIN) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0) continue;
            if (n == MAXC) { close(fd); continue; }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conns[n++] = (struct conn){.fd = fd};
        }
    }
}

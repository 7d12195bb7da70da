// mbtap: a transparent Modbus TCP tap on 127.0.0.1. Forwards every connection to an upstream
// server unchanged and prints one line per write request seen from the client, timestamped
// with CLOCK_MONOTONIC at the moment its last byte was received:
//   W <t_ns> <unit> <fc> <addr> <value>      (value: first register / coil as 0|1)
// It prints "tap ready <port>" once listening (port 0 = any free port).
// Usage: mbtap LISTEN_PORT UPSTREAM_PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 16

struct link {
    int client, server;
    unsigned char buf[4096];  // client->server bytes not yet parsed into frames
    size_t len;
};

static struct link links[MAXC];
static int nlinks;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

static void parse(struct link *l, int64_t t) {
    size_t off = 0;
    while (l->len - off >= 8) {
        unsigned char *f = l->buf + off;
        size_t flen = 6 + ((size_t)f[4] << 8 | f[5]);
        if (l->len - off < flen) break;
        int unit = f[6], fc = f[7];
        if (flen >= 12 && (fc == 5 || fc == 6 || fc == 15 || fc == 16)) {
            int addr = f[8] << 8 | f[9];
            int value = -1;
            if (fc == 5) value = f[10] == 0xFF;
            else if (fc == 6) value = f[10] << 8 | f[11];
            else if (fc == 15 && flen >= 14) value = f[13] & 1;
            else if (fc == 16 && flen >= 15) value = f[13] << 8 | f[14];
            printf("W %lld %d %d %d %d\n", (long long)t, unit, fc, addr, value);
            fflush(stdout);
        }
        off += flen;
    }
    memmove(l->buf, l->buf + off, l->len - off);
    l->len -= off;
}

static void drop(int i) {
    close(links[i].client);
    close(links[i].server);
    links[i] = links[--nlinks];
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: mbtap LISTEN_PORT UPSTREAM_PORT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int lport = atoi(argv[1]), uport = atoi(argv[2]);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 8)) { perror("mbtap: listen"); return 1; }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("tap ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        struct pollfd p[1 + 2 * MAXC];
        p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < nlinks; i++) {
            p[1 + 2 * i] = (struct pollfd){.fd = links[i].client, .events = POLLIN};
            p[2 + 2 * i] = (struct pollfd){.fd = links[i].server, .events = POLLIN};
        }
        int n = poll(p, 1 + 2 * nlinks, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("mbtap: poll"); return 1; }
        int count = nlinks;
        for (int i = count - 1; i >= 0; i--) {
            struct link *l = &links[i];
            int bad = 0;
            if (p[1 + 2 * i].revents) {
                unsigned char tmp[2048];
                ssize_t r = recv(l->client, tmp, sizeof tmp, 0);
                int64_t t = mono_ns();
                if (r <= 0) bad = 1;
                else {
                    if (write_all(l->server, tmp, (size_t)r)) bad = 1;
                    if (l->len + (size_t)r > sizeof l->buf) l->len = 0;  // garbage: resynchronise
                    memcpy(l->buf + l->len, tmp, (size_t)r);
                    l->len += (size_t)r;
                    parse(l, t);
                }
            }
            if (!bad && p[2 + 2 * i].revents) {
                unsigned char tmp[2048];
                ssize_t r = recv(l->server, tmp, sizeof tmp, 0);
                if (r <= 0 || write_all(l->client, tmp, (size_t)r)) bad = 1;
            }
            if (bad) drop(i);
        }
        if (p[0].revents & POLLIN) {
            int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) continue;
            int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in u = {.sin_family = AF_INET, .sin_port = htons(uport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (nlinks == MAXC || connect(s, (struct sockaddr *)&u, sizeof u)) { close(c); close(s); continue; }
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            links[nlinks++] = (struct link){.client = c, .server = s, .len = 0};
        }
    }
}

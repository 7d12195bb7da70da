// rtuline: a simulated RS-485 line between two pseudo-terminals, with real line time.
//
// Creates two pty pairs and prints "line ready <master-side pty> <slave-side pty>". Bytes
// written on one side are delivered to the other one character time apart (start bit, data
// bits, parity, stop bits at BAUD: 11 bits per byte for 8E1, 572.9 us at 19200 baud). The line
// is half-duplex: both directions share it, and when the talker changes the line stays silent
// for t3.5 first (3.5 character times, the Modbus RTU inter-frame gap; 1.75 ms above 19200 baud).
// Requests from the master side are counted by parsing RTU frames (function codes 1-6, 15, 16);
// every second it prints
//   S <t_ns> <requests> <bytes_master_to_slave> <bytes_slave_to_master>   (cumulative)
// Usage: rtuline BAUD [BITS_PER_CHAR]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_pty(char *name, size_t cap, int *slave_fd) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) || unlockpt(m)) return -1;
    if (ptsname_r(m, name, cap)) return -1;
    // Hold the slave open (raw) so the pair stays up and nothing is echoed before the user opens it.
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) return -1;
    struct termios t;
    tcgetattr(s, &t);
    cfmakeraw(&t);
    tcsetattr(s, TCSANOW, &t);
    *slave_fd = s;
    fcntl(m, F_SETFL, O_NONBLOCK);
    return m;
}

#define QCAP 65536
struct item { int64_t due; int dest; unsigned char byte; };
static struct item q[QCAP];
static size_t qhead, qtail;

// RTU request length from its first bytes (unit, fc, ...); 0 = need more, -1 = unknown.
static int request_length(const unsigned char *f, size_t n) {
    if (n < 2) return 0;
    switch (f[1]) {
    case 1: case 2: case 3: case 4: case 5: case 6: return 8;
    case 15: case 16: return n < 7 ? 0 : 9 + f[6];
    default: return -1;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: rtuline BAUD [BITS_PER_CHAR]\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    double baud = atof(argv[1]);
    int bits = argc > 2 ? atoi(argv[2]) : 11;
    int64_t char_ns = (int64_t)(bits * 1e9 / baud);
    int64_t gap_ns = baud > 19200 ? 1750000 : (int64_t)(3.5 * char_ns);
    char na[128], nb[128];
    int sa, sb;
    int ma = open_pty(na, sizeof na, &sa), mb = open_pty(nb, sizeof nb, &sb);
    if (ma < 0 || mb < 0) { perror("rtuline: pty"); return 1; }
    printf("line ready %s %s\n", na, nb);
    fflush(stdout);
    int64_t line_free = 0, next_report = mono_ns() + 1000000000LL;
    int last_talker = -1;
    long requests = 0, bytes_ab = 0, bytes_ba = 0;
    unsigned char frame[300];
    size_t flen = 0;
    int64_t last_a_byte = 0;
    for (;;) {
        int64_t now = mono_ns();
        // Deliver what is due.
        while (qhead != qtail && q[qhead].due <= now) {
            int fd = q[qhead].dest == 1 ? mb : ma;
            if (write(fd, &q[qhead].byte, 1) != 1 && errno == EAGAIN) break;
            qhead = (qhead + 1) % QCAP;
        }
        if (now >= next_report) {
            printf("S %lld %ld %ld %ld\n", (long long)now, requests, bytes_ab, bytes_ba);
            fflush(stdout);
            next_report += 1000000000LL;
        }
        int64_t wake = next_report;
        if (qhead != qtail && q[qhead].due < wake) wake = q[qhead].due;
        int timeout_ms = (int)((wake - now + 999999) / 1000000);
        if (timeout_ms < 0) timeout_ms = 0;
        struct pollfd p[2] = {{.fd = ma, .events = POLLIN}, {.fd = mb, .events = POLLIN}};
        // Sub-millisecond precision for deliveries: poll for whole milliseconds, sleep the last one
        // (a half-duplex line has nothing to read while it delivers). The report can wait a millisecond.
        if (qhead != qtail && wake - now < 1000000) {
            timeout_ms = 0;
            struct timespec ts = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        int n = poll(p, 2, timeout_ms);
        if (n <= 0) continue;
        for (int side = 0; side < 2; side++) {
            if (!(p[side].revents & POLLIN)) continue;
            unsigned char buf[512];
            ssize_t r = read(side == 0 ? ma : mb, buf, sizeof buf);
            if (r <= 0) continue;
            int64_t t = mono_ns();
            int64_t start = t > line_free ? t : line_free;
            if (last_talker != side && last_talker != -1 && start < line_free + gap_ns) start = line_free + gap_ns;
            last_talker = side;
            for (ssize_t i = 0; i < r; i++) {
                start += char_ns;
                size_t next = (qtail + 1) % QCAP;
                if (next == qhead) break;  // queue full: drop (never happens with request/response)
                q[qtail] = (struct item){.due = start, .dest = side == 0 ? 1 : 0, .byte = buf[i]};
                qtail = next;
            }
            line_free = start;
            if (side == 0) {
                bytes_ab += r;
                // Count requests; a pause of t3.5 between bytes starts a new frame.
                if (t - last_a_byte > gap_ns) flen = 0;
                last_a_byte = t;
                for (ssize_t i = 0; i < r; i++) {
                    if (flen < sizeof frame) frame[flen++] = buf[i];
                    int need = request_length(frame, flen);
                    if (need < 0) { flen = 0; continue; }
                    if (need > 0 && (int)flen >= need) { requests++; flen = 0; }
                }
            } else {
                bytes_ba += r;
            }
        }
    }
}

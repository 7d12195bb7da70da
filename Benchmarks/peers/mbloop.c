// mbloop: the plain C libmodbus client loop for the throughput comparison. Polls units
// 1..UNITS the way the agent polls a ref-luminaire (holding 0-1, then input 0-5: two
// transactions per luminaire) back to back for SECONDS, then prints
//   T <transactions> <failures> <seconds>
// Usage: mbloop tcp PORT UNITS SECONDS | mbloop rtu DEVICE BAUD UNITS SECONDS
#define _GNU_SOURCE
#include <errno.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    modbus_t *ctx = NULL;
    int units = 0;
    double seconds = 0;
    if (argc == 5 && strcmp(argv[1], "tcp") == 0) {
        ctx = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
        units = atoi(argv[3]);
        seconds = atof(argv[4]);
    } else if (argc == 6 && strcmp(argv[1], "rtu") == 0) {
        ctx = modbus_new_rtu(argv[2], atoi(argv[3]), 'E', 8, 1);
        units = atoi(argv[4]);
        seconds = atof(argv[5]);
    } else {
        fprintf(stderr, "usage: mbloop tcp PORT UNITS SECONDS | mbloop rtu DEVICE BAUD UNITS SECONDS\n");
        return 2;
    }
    if (!ctx || units < 1) { fprintf(stderr, "mbloop: bad arguments\n"); return 2; }
    modbus_set_response_timeout(ctx, 0, 300000);
    if (modbus_connect(ctx) != 0) { fprintf(stderr, "mbloop: connect: %s\n", modbus_strerror(errno)); return 1; }
    uint16_t regs[8];
    long done = 0, failed = 0;
    double start = mono(), end = start + seconds, now = start;
    while (now < end) {
        for (int u = 1; u <= units && now < end; u++) {
            modbus_set_slave(ctx, u);
            if (modbus_read_registers(ctx, 0, 2, regs) == 2) done++; else { failed++; modbus_flush(ctx); }
            if (modbus_read_input_registers(ctx, 0, 6, regs) == 6) done++; else { failed++; modbus_flush(ctx); }
            now = mono();
        }
    }
    printf("T %ld %ld %.6f\n", done, failed, now - start);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

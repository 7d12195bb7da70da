// wakeloop: a loop's wake-up mechanism in plain C, to separate the mechanism's cost from the
// agent's. One SCHED_FIFO thread waits for absolute CLOCK_MONOTONIC deadlines PERIOD_US apart,
// for SECONDS, and prints
//   L <count> <p50_us> <p99_us> <max_us>
// (lateness = time after the deadline when the wait returned). MODE is how it waits:
//   futex  on a futex word, FUTEX_WAIT_BITSET (the agent's LoopThread, EdgeRuntime's WakeWord);
//   cond   in pthread_cond_timedwait on a CLOCK_MONOTONIC condition variable with a
//          priority-inheriting mutex (the agent's loop before).
// Usage: wakeloop futex|cond PRIORITY PERIOD_US SECONDS
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int prio, use_futex;
static uint32_t word; /* never changed: the futex waits only time out */
static int64_t period_ns, total;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *run(void *arg) {
    (void)arg;
    struct sched_param sp = {.sched_priority = prio};
    if (prio > 0 && pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0) fprintf(stderr, "wakeloop: SCHED_FIFO refused\n");
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t c;
    pthread_cond_init(&c, &ca);
    int64_t *late = malloc(sizeof(int64_t) * (size_t)total);
    int64_t next = mono_ns() + period_ns;
    pthread_mutex_lock(&m);
    for (int64_t i = 0; i < total; i++) {
        struct timespec ts = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
        while (mono_ns() < next) {
            if (use_futex)
                syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
            else
                pthread_cond_timedwait(&c, &m, &ts);
        }
        late[i] = mono_ns() - next;
        next += period_ns;
    }
    pthread_mutex_unlock(&m);
    qsort(late, (size_t)total, sizeof late[0], cmp);
    int64_t p50 = late[(total * 50 + 99) / 100 - 1], p99 = late[(total * 99 + 99) / 100 - 1];
    printf("L %lld %.1f %.1f %.1f\n", (long long)total, p50 / 1e3, p99 / 1e3, late[total - 1] / 1e3);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "futex") != 0 && strcmp(argv[1], "cond") != 0)) {
        fprintf(stderr, "usage: wakeloop futex|cond PRIORITY PERIOD_US SECONDS\n");
        return 2;
    }
    use_futex = strcmp(argv[1], "futex") == 0;
    prio = atoi(argv[2]);
    period_ns = atoll(argv[3]) * 1000;
    total = (int64_t)(atof(argv[4]) * 1e9 / (double)period_ns);
    if (total < 1) total = 1;
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    pthread_join(t, NULL);
    return 0;
}

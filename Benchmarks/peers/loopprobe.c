// loopprobe: LD_PRELOAD probe that records the wake-up lateness of one named thread's
// absolute-deadline waits, at full resolution, without changing the program.
//
// The agent's control loop (thread "edge-loop") sleeps on a futex with an absolute
// CLOCK_MONOTONIC deadline (EdgeRuntime's WakeWord: syscall(SYS_futex, FUTEX_WAIT_BITSET));
// before, in pthread_cond_clockwait(CLOCK_MONOTONIC) and pthread_cond_timedwait on a
// CLOCK_MONOTONIC condition. All three are wrapped. A wrapper calls the real function and, when
// it returns at or after the deadline, stores now - deadline (ns) into a memory-mapped file.
// That is the quantity cyclictest measures for clock_nanosleep(TIMER_ABSTIME).
//
// Environment: LOOPPROBE_FILE (output, required), LOOPPROBE_THREAD (default "edge-loop"),
// LOOPPROBE_CAPACITY (samples, default 1048576). File layout: int64 count, then int64 samples.
// Only valid for condition variables whose clock is CLOCK_MONOTONIC (the loop's is).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);

typedef long (*syscall_fn)(long, ...);

static timedwait_fn real_timedwait;
static syscall_fn real_syscall;
static clockwait_fn real_clockwait;
static int64_t *region;          // region[0] = count, region[1...] = samples
static int64_t capacity;
static char wanted[16] = "edge-loop";
static __thread int thread_state; // 0 unknown, 1 probed thread, 2 other

__attribute__((constructor)) static void loopprobe_init(void) {
    real_timedwait = (timedwait_fn)dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    if (!real_timedwait) real_timedwait = (timedwait_fn)dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    real_clockwait = (clockwait_fn)dlsym(RTLD_NEXT, "pthread_cond_clockwait");
    real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    const char *name = getenv("LOOPPROBE_THREAD");
    if (name) { strncpy(wanted, name, sizeof wanted - 1); wanted[sizeof wanted - 1] = 0; }
    const char *path = getenv("LOOPPROBE_FILE");
    if (!path) return;
    const char *cap = getenv("LOOPPROBE_CAPACITY");
    capacity = cap ? atoll(cap) : (1 << 20);
    if (capacity < 1) capacity = 1;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    size_t size = (size_t)(capacity + 1) * sizeof(int64_t);
    if (ftruncate(fd, (off_t)size) != 0) { close(fd); return; }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return;
    region = p;
}

/* Records now - deadline for the probed thread (the deadline is on CLOCK_MONOTONIC). */
static void record(const struct timespec *abstime) {
    if (!region) return;
    if (thread_state != 1) {
        char name[16] = {0};
        prctl(PR_GET_NAME, name, 0, 0, 0);
        thread_state = strcmp(name, wanted) == 0 ? 1 : 2;
        if (thread_state != 1) { thread_state = 0; return; }  // names can change: ask again next time
    }
    int saved = errno;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t late = (int64_t)(now.tv_sec - abstime->tv_sec) * 1000000000LL + (now.tv_nsec - abstime->tv_nsec);
    if (late >= 0) {
        int64_t i = __atomic_fetch_add(&region[0], 1, __ATOMIC_RELAXED);
        if (i < capacity) region[1 + i] = late;
    }
    errno = saved;
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *abstime) {
    int rc = real_timedwait(cond, mutex, abstime);
    record(abstime);
    return rc;
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock, const struct timespec *abstime) {
    int rc = real_clockwait(cond, mutex, clock, abstime);
    if (clock == CLOCK_MONOTONIC) record(abstime);
    return rc;
}

/* glibc's syscall() carries its first version (GLIBC_2.2.5 on x86_64, GLIBC_2.17 on aarch64); the
   wrapper is given the same one (the map declares both nodes). */
#if defined(__x86_64__)
__asm__(".symver loopprobe_syscall, syscall@@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver loopprobe_syscall, syscall@@GLIBC_2.17");
#endif

/* Records the futex waits with an absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET without
   FUTEX_CLOCK_REALTIME); every other call passes through. Six arguments are always read, as
   glibc's own syscall() does. */
long loopprobe_syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    long rc = real_syscall(number, a1, a2, a3, a4, a5, a6);
    int op = (int)a2;
    if (number == SYS_futex && (op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET && !(op & FUTEX_CLOCK_REALTIME) && a4)
        record((const struct timespec *)a4);
    return rc;
}

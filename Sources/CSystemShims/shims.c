#define _GNU_SOURCE
#include <malloc.h>
#include "edge_system_shims.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

int edge_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int edge_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = 0;
    return -pthread_setname_np(pthread_self(), buf);
}

int edge_cond_wait_monotonic(void *cond, void *mutex, const struct timespec *deadline) {
    return pthread_cond_clockwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, CLOCK_MONOTONIC, deadline);
}

int edge_wake_word_wait(uint32_t *word, uint32_t expected, const struct timespec *deadline) {
    /* FUTEX_WAIT_BITSET takes an absolute deadline, on CLOCK_MONOTONIC without FUTEX_CLOCK_REALTIME. */
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return 0;
    return errno == EAGAIN ? 0 : errno;
}

uint32_t edge_wake_word_load(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

void edge_wake_word_bump(uint32_t *word) {
    __atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

int edge_kernel_clock_synchronised(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx); /* modes 0: read only */
    int state = adjtimex(&tx);
    if (state < 0) return -errno;
    return (state == TIME_ERROR || (tx.status & STA_UNSYNC)) ? 0 : 1;
}

int edge_heap_trim(void) {
    return malloc_trim(0);
}

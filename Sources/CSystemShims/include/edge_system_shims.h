#ifndef EDGE_SYSTEM_SHIMS_H
#define EDGE_SYSTEM_SHIMS_H
/* GNU-only calls Swift cannot import from Glibc without _GNU_SOURCE. Each returns 0 or -errno. */
#include <stdint.h>
#include <time.h>

/* SO_PEERCRED of a connected AF_UNIX socket. */
int edge_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

/* Sets the calling thread's name (at most 15 bytes are kept). */
int edge_set_thread_name(const char *name);

/* pthread_cond_clockwait on CLOCK_MONOTONIC until the absolute `deadline`: 0, or the error number
   (ETIMEDOUT once it has passed). Unlike pthread_cond_timedwait it names the clock itself, so
   libfaketime (which rewrites timedwait deadlines as if they were wall-clock times when it does
   not know the condition's clock) leaves it alone. */

int edge_cond_wait_monotonic(void *cond, void *mutex, const struct timespec *deadline);

/* A futex word (process-private) to sleep on, for the control loop (EdgeRuntime's WakeWord).
   edge_wake_word_wait sleeps while *word == expected until edge_wake_word_bump or the absolute
   CLOCK_MONOTONIC `deadline`: 0 (woken, or the word had already changed), ETIMEDOUT, or EINTR.
   Unlike a condition variable's wait it takes no mutex on the way out.
   edge_wake_word_bump increments the word and wakes every thread sleeping on it. */
int edge_wake_word_wait(uint32_t *word, uint32_t expected, const struct timespec *deadline);
uint32_t edge_wake_word_load(const uint32_t *word);
void edge_wake_word_bump(uint32_t *word);

/* The kernel's view of the clock (adjtimex, read only): 1 synchronised (an NTP daemon
   disciplines it), 0 unsynchronised (STA_UNSYNC or TIME_ERROR), -errno when it cannot tell. */
int edge_kernel_clock_synchronised(void);

/* glibc's malloc_trim(0): the heap's free memory back to the kernel (malloc.h is not in Swift's
   Glibc module). Returns 1 if some memory was released. */
int edge_heap_trim(void);
#endif

#ifndef EDGE_TEST_SPAWN_H
#define EDGE_TEST_SPAWN_H
#include <sys/types.h>

/* Starts `path` with `argv` and `envp` (NULL-terminated) via posix_spawn: stdin from /dev/null,
 * stdout and stderr to `out_fd` and `err_fd`, every other descriptor closed, every signal at its
 * default disposition and none blocked. Returns 0 and the child's pid, or an errno value. */
int edge_test_spawn(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd, pid_t *pid);
#endif

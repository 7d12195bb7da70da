/*
 * Test-only gpiod_* stubs for the libgpiod v1 API (1.6, Debian 12); stubs_v2.c is the v2 set.
 * Package.swift defines GPIOD_V2 from the library's version, so exactly one of them is built.
 * See include/gpiod_stubs.h. Only the calls LibGPIODBackend makes
 * are stubbed; each forwards to the real libgpiod unless the simulation is enabled (for
 * opens) or the object is one of ours (for everything else).
 */
#ifndef GPIOD_V2
#define _GNU_SOURCE
#include "gpiod_stubs.h"

#include <dlfcn.h>
#include <errno.h>
#include <gpiod.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_CHIPS 8
#define MAX_LINES 64
#define MAX_EVENTS 64

enum { KIND_FREE = 0, KIND_EVENTS = 1, KIND_OUTPUT = 2 };

struct gpiod_line {
	struct gpiod_chip *chip;
	unsigned int offset;
	int physical;
	int kind;
	int flags;
	char consumer[32];
	char external[32]; /* held by another process when non-empty */
	int efd;
	struct gpiod_line_event queue[MAX_EVENTS];
	int head, count;
};

struct gpiod_chip {
	int used;
	int open_count;
	int open_errno;
	char name[32];
	char label[32];
	unsigned int num_lines;
	struct gpiod_line lines[MAX_LINES];
};

static struct gpiod_chip chips[MAX_CHIPS];
static int enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* True for pointers into our simulated chips (chip or line objects). */
static int ours(const void *p)
{
	return (const char *)p >= (const char *)chips &&
	       (const char *)p < (const char *)(chips + MAX_CHIPS);
}

static void *real(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);
	if (!fn)
		fprintf(stderr, "gpiod stubs: real %s not found\n", name);
	return fn;
}

#define REAL(name) ((__typeof__(&name))real(#name))

static struct gpiod_chip *find_chip(const char *descr)
{
	for (int i = 0; i < MAX_CHIPS; i++) {
		struct gpiod_chip *c = &chips[i];
		if (!c->used)
			continue;
		if (strcmp(descr, c->name) == 0 || strcmp(descr, c->label) == 0)
			return c;
		if (strncmp(descr, "/dev/", 5) == 0 && strcmp(descr + 5, c->name) == 0)
			return c;
	}
	return NULL;
}

static struct gpiod_line *find_line(const char *chip, unsigned int offset)
{
	struct gpiod_chip *c = find_chip(chip);
	if (!c || offset >= c->num_lines)
		return NULL;
	return &c->lines[offset];
}

static void release_locked(struct gpiod_line *l)
{
	if (l->efd >= 0)
		close(l->efd);
	l->efd = -1;
	l->kind = KIND_FREE;
	l->flags = 0;
	l->consumer[0] = 0;
	l->head = l->count = 0;
}

/* ---- control API ---- */

void edge_gpiod_stubs_enable(int on)
{
	pthread_mutex_lock(&lock);
	enabled = on;
	pthread_mutex_unlock(&lock);
}

void edge_gpiod_stubs_reset(void)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CHIPS; i++) {
		for (unsigned int j = 0; j < MAX_LINES; j++)
			if (chips[i].used)
				release_locked(&chips[i].lines[j]);
		memset(&chips[i], 0, sizeof(chips[i]));
	}
	pthread_mutex_unlock(&lock);
}

int edge_gpiod_stubs_add_chip(const char *name, const char *label, unsigned int num_lines)
{
	if (num_lines > MAX_LINES)
		return -1;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CHIPS; i++) {
		struct gpiod_chip *c = &chips[i];
		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = 1;
		snprintf(c->name, sizeof(c->name), "%s", name);
		snprintf(c->label, sizeof(c->label), "%s", label ? label : "");
		c->num_lines = num_lines;
		for (unsigned int j = 0; j < MAX_LINES; j++) {
			c->lines[j].chip = c;
			c->lines[j].offset = j;
			c->lines[j].efd = -1;
		}
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);
	return -1;
}

int edge_gpiod_stubs_set_open_errno(const char *chip, int err)
{
	pthread_mutex_lock(&lock);
	struct gpiod_chip *c = find_chip(chip);
	if (c)
		c->open_errno = err;
	pthread_mutex_unlock(&lock);
	return c ? 0 : -1;
}

int edge_gpiod_stubs_set_external_consumer(const char *chip, unsigned int offset, const char *consumer)
{
	pthread_mutex_lock(&lock);
	struct gpiod_line *l = find_line(chip, offset);
	if (l)
		snprintf(l->external, sizeof(l->external), "%s", consumer ? consumer : "");
	pthread_mutex_unlock(&lock);
	return l ? 0 : -1;
}

int edge_gpiod_stubs_set_level(const char *chip, unsigned int offset, int physical, long long ts)
{
	pthread_mutex_lock(&lock);
	struct gpiod_line *l = find_line(chip, offset);
	if (!l) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	physical = physical ? 1 : 0;
	int changed = l->physical != physical;
	l->physical = physical;
	if (changed && l->kind == KIND_EVENTS && l->count < MAX_EVENTS) {
		int active_low = (l->flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) != 0;
		int logical = physical ^ active_low;
		struct gpiod_line_event *ev = &l->queue[(l->head + l->count) % MAX_EVENTS];
		ev->ts.tv_sec = ts / 1000000000LL;
		ev->ts.tv_nsec = ts % 1000000000LL;
		ev->event_type = logical ? GPIOD_LINE_EVENT_RISING_EDGE : GPIOD_LINE_EVENT_FALLING_EDGE;
		l->count++;
		uint64_t one = 1;
		if (write(l->efd, &one, sizeof(one)) != sizeof(one))
			perror("gpiod stubs: eventfd write");
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

int edge_gpiod_stubs_get_level(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct gpiod_line *l = find_line(chip, offset);
	int v = l ? l->physical : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_request_flags(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct gpiod_line *l = find_line(chip, offset);
	int v = (l && l->kind != KIND_FREE) ? l->flags : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_request_kind(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct gpiod_line *l = find_line(chip, offset);
	int v = l ? l->kind : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_open_chips(void)
{
	int n = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CHIPS; i++)
		if (chips[i].used)
			n += chips[i].open_count;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- the stubbed libgpiod v1 calls ---- */

struct gpiod_chip *gpiod_chip_open_lookup(const char *descr)
{
	pthread_mutex_lock(&lock);
	if (!enabled) {
		pthread_mutex_unlock(&lock);
		return REAL(gpiod_chip_open_lookup)(descr);
	}
	struct gpiod_chip *c = find_chip(descr);
	if (!c) {
		pthread_mutex_unlock(&lock);
		errno = ENOENT;
		return NULL;
	}
	if (c->open_errno) {
		int err = c->open_errno;
		pthread_mutex_unlock(&lock);
		errno = err;
		return NULL;
	}
	c->open_count++;
	pthread_mutex_unlock(&lock);
	return c;
}

void gpiod_chip_close(struct gpiod_chip *chip)
{
	if (!ours(chip)) {
		REAL(gpiod_chip_close)(chip);
		return;
	}
	pthread_mutex_lock(&lock);
	if (chip->open_count > 0 && --chip->open_count == 0)
		for (unsigned int j = 0; j < chip->num_lines; j++)
			release_locked(&chip->lines[j]);
	pthread_mutex_unlock(&lock);
}

const char *gpiod_chip_name(struct gpiod_chip *chip)
{
	if (!ours(chip))
		return REAL(gpiod_chip_name)(chip);
	return chip->name;
}

struct gpiod_line *gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset)
{
	if (!ours(chip))
		return REAL(gpiod_chip_get_line)(chip, offset);
	if (offset >= chip->num_lines) {
		errno = EINVAL;
		return NULL;
	}
	return &chip->lines[offset];
}

static int request(struct gpiod_line *l, const char *consumer, int flags, int kind)
{
	if (l->external[0] || l->kind != KIND_FREE) {
		errno = EBUSY;
		return -1;
	}
	if (kind == KIND_EVENTS) {
		l->efd = eventfd(0, EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC);
		if (l->efd < 0)
			return -1;
	}
	l->kind = kind;
	l->flags = flags;
	snprintf(l->consumer, sizeof(l->consumer), "%s", consumer ? consumer : "");
	l->head = l->count = 0;
	return 0;
}

int gpiod_line_request_both_edges_events_flags(struct gpiod_line *line, const char *consumer, int flags)
{
	if (!ours(line))
		return REAL(gpiod_line_request_both_edges_events_flags)(line, consumer, flags);
	pthread_mutex_lock(&lock);
	int rc = request(line, consumer, flags, KIND_EVENTS);
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

int gpiod_line_request_output_flags(struct gpiod_line *line, const char *consumer, int flags, int default_val)
{
	if (!ours(line))
		return REAL(gpiod_line_request_output_flags)(line, consumer, flags, default_val);
	pthread_mutex_lock(&lock);
	int rc = request(line, consumer, flags, KIND_OUTPUT);
	int err = errno;
	if (rc == 0)
		line->physical = (default_val ? 1 : 0) ^ ((flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) ? 1 : 0);
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

void gpiod_line_release(struct gpiod_line *line)
{
	if (!ours(line)) {
		REAL(gpiod_line_release)(line);
		return;
	}
	pthread_mutex_lock(&lock);
	release_locked(line);
	pthread_mutex_unlock(&lock);
}

const char *gpiod_line_consumer(struct gpiod_line *line)
{
	if (!ours(line))
		return REAL(gpiod_line_consumer)(line);
	/* Like libgpiod: the line info at lookup time; strings live as long as the chip. */
	if (line->external[0])
		return line->external;
	return line->consumer[0] ? line->consumer : NULL;
}

int gpiod_line_get_value(struct gpiod_line *line)
{
	if (!ours(line))
		return REAL(gpiod_line_get_value)(line);
	pthread_mutex_lock(&lock);
	int v;
	if (line->kind == KIND_FREE) {
		errno = EPERM;
		v = -1;
	} else {
		v = line->physical ^ ((line->flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) ? 1 : 0);
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return v;
}

int gpiod_line_set_value(struct gpiod_line *line, int value)
{
	if (!ours(line))
		return REAL(gpiod_line_set_value)(line, value);
	pthread_mutex_lock(&lock);
	int rc = 0;
	if (line->kind != KIND_OUTPUT) {
		errno = EPERM;
		rc = -1;
	} else {
		line->physical = (value ? 1 : 0) ^ ((line->flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) ? 1 : 0);
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

int gpiod_line_event_get_fd(struct gpiod_line *line)
{
	if (!ours(line))
		return REAL(gpiod_line_event_get_fd)(line);
	pthread_mutex_lock(&lock);
	int fd = line->kind == KIND_EVENTS ? line->efd : -1;
	pthread_mutex_unlock(&lock);
	if (fd < 0)
		errno = EPERM;
	return fd;
}

int gpiod_line_event_read(struct gpiod_line *line, struct gpiod_line_event *event)
{
	if (!ours(line))
		return REAL(gpiod_line_event_read)(line, event);
	pthread_mutex_lock(&lock);
	int rc = 0;
	if (line->kind != KIND_EVENTS) {
		errno = EPERM;
		rc = -1;
	} else if (line->count == 0) {
		errno = EAGAIN; /* the real call would block; the backend only reads after poll() */
		rc = -1;
	} else {
		*event = line->queue[line->head];
		line->head = (line->head + 1) % MAX_EVENTS;
		line->count--;
		uint64_t one;
		if (read(line->efd, &one, sizeof(one)) != sizeof(one))
			perror("gpiod stubs: eventfd read");
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

/* ---- v2-only controls: not applicable to the v1 uAPI ---- */

int edge_gpiod_stubs_set_kernel_debounce(const char *chip, int supported)
{
	(void)chip;
	(void)supported;
	return -1;
}

long edge_gpiod_stubs_request_debounce_us(const char *chip, unsigned int offset)
{
	(void)chip;
	(void)offset;
	return -1;
}

int edge_gpiod_stubs_request_clock(const char *chip, unsigned int offset)
{
	(void)chip;
	(void)offset;
	return -1;
}
#endif /* !GPIOD_V2 */

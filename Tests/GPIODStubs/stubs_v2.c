/*
 * Test-only gpiod_* stubs for the libgpiod v2 API (2.x, Debian 13); stubs.c is the v1 set.
 * See include/gpiod_stubs.h. Only the calls LibGPIODBackend makes on chips, line info, line
 * requests and edge events are stubbed; each forwards to the real libgpiod unless the simulation
 * is enabled (opens, new event buffers) or the object is one of ours (everything else). Settings
 * and config objects are the real library's: the stubbed request reads them back through its
 * getters, so what the backend configured is what the "kernel" sees.
 */
#ifdef GPIOD_V2
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
#define MAX_INFOS 64
#define MAX_BUFFERS 64

enum { KIND_FREE = 0, KIND_EVENTS = 1, KIND_OUTPUT = 2 };

struct gpiod_edge_event {
	enum gpiod_edge_event_type type;
	uint64_t timestamp_ns;
	unsigned int offset;
};

struct sim_line {
	int physical;
	int kind;
	int active_low;
	unsigned long debounce_us;
	int clock;
	char consumer[32];
	char external[32]; /* held by another process when non-empty */
	int efd;
	struct gpiod_edge_event queue[MAX_EVENTS];
	int head, count;
};

struct gpiod_chip {
	int used;
	int open_count;
	int open_errno;
	int kernel_debounce;
	char name[32];
	char label[32];
	unsigned int num_lines;
	struct sim_line lines[MAX_LINES];
};

struct gpiod_chip_info {
	int used;
	struct gpiod_chip *chip;
};

struct gpiod_line_info {
	int used;
	int is_used;
	char consumer[32];
	unsigned long debounce_us;
};

struct gpiod_line_request {
	int used;
	struct gpiod_chip *chip;
	unsigned int offset;
};

struct gpiod_edge_event_buffer {
	int used;
	size_t capacity;
	size_t count;
	struct gpiod_edge_event events[MAX_EVENTS];
};

/* Every simulated object lives in here, so "ours" is a range check. */
static struct {
	struct gpiod_chip chips[MAX_CHIPS];
	struct gpiod_chip_info chip_infos[MAX_INFOS];
	struct gpiod_line_info line_infos[MAX_INFOS];
	struct gpiod_line_request requests[MAX_CHIPS * MAX_LINES];
	struct gpiod_edge_event_buffer buffers[MAX_BUFFERS];
} sim;
static int enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int ours(const void *p)
{
	return (const char *)p >= (const char *)&sim && (const char *)p < (const char *)(&sim + 1);
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
		struct gpiod_chip *c = &sim.chips[i];
		if (!c->used)
			continue;
		if (strcmp(descr, c->name) == 0 || strcmp(descr, c->label) == 0)
			return c;
		if (strncmp(descr, "/dev/", 5) == 0 && strcmp(descr + 5, c->name) == 0)
			return c;
	}
	return NULL;
}

static struct sim_line *find_line(const char *chip, unsigned int offset)
{
	struct gpiod_chip *c = find_chip(chip);
	if (!c || offset >= c->num_lines)
		return NULL;
	return &c->lines[offset];
}

static void release_locked(struct sim_line *l)
{
	if (l->efd >= 0)
		close(l->efd);
	l->efd = -1;
	l->kind = KIND_FREE;
	l->active_low = 0;
	l->debounce_us = 0;
	l->clock = 0;
	l->consumer[0] = 0;
	l->head = l->count = 0;
}

static struct sim_line *request_line(struct gpiod_line_request *r)
{
	return &r->chip->lines[r->offset];
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
	for (int i = 0; i < MAX_CHIPS; i++)
		if (sim.chips[i].used)
			for (unsigned int j = 0; j < MAX_LINES; j++)
				release_locked(&sim.chips[i].lines[j]);
	memset(&sim, 0, sizeof(sim));
	pthread_mutex_unlock(&lock);
}

int edge_gpiod_stubs_add_chip(const char *name, const char *label, unsigned int num_lines)
{
	if (num_lines > MAX_LINES)
		return -1;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CHIPS; i++) {
		struct gpiod_chip *c = &sim.chips[i];
		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = 1;
		snprintf(c->name, sizeof(c->name), "%s", name);
		snprintf(c->label, sizeof(c->label), "%s", label ? label : "");
		c->num_lines = num_lines;
		for (unsigned int j = 0; j < MAX_LINES; j++)
			c->lines[j].efd = -1;
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

int edge_gpiod_stubs_set_kernel_debounce(const char *chip, int supported)
{
	pthread_mutex_lock(&lock);
	struct gpiod_chip *c = find_chip(chip);
	if (c)
		c->kernel_debounce = supported ? 1 : 0;
	pthread_mutex_unlock(&lock);
	return c ? 0 : -1;
}

int edge_gpiod_stubs_set_external_consumer(const char *chip, unsigned int offset, const char *consumer)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	if (l)
		snprintf(l->external, sizeof(l->external), "%s", consumer ? consumer : "");
	pthread_mutex_unlock(&lock);
	return l ? 0 : -1;
}

int edge_gpiod_stubs_set_level(const char *chip, unsigned int offset, int physical, long long ts)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	if (!l) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	physical = physical ? 1 : 0;
	int changed = l->physical != physical;
	l->physical = physical;
	if (changed && l->kind == KIND_EVENTS && l->count < MAX_EVENTS) {
		int logical = physical ^ l->active_low;
		struct gpiod_edge_event *ev = &l->queue[(l->head + l->count) % MAX_EVENTS];
		ev->timestamp_ns = (uint64_t)ts;
		ev->offset = offset;
		ev->type = logical ? GPIOD_EDGE_EVENT_RISING_EDGE : GPIOD_EDGE_EVENT_FALLING_EDGE;
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
	struct sim_line *l = find_line(chip, offset);
	int v = l ? l->physical : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_request_flags(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	int v = (l && l->kind != KIND_FREE) ? (l->active_low ? 4 : 0) : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_request_kind(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	int v = l ? l->kind : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

long edge_gpiod_stubs_request_debounce_us(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	long v = (l && l->kind != KIND_FREE) ? (long)l->debounce_us : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_request_clock(const char *chip, unsigned int offset)
{
	pthread_mutex_lock(&lock);
	struct sim_line *l = find_line(chip, offset);
	int v = (l && l->kind != KIND_FREE) ? l->clock : -1;
	pthread_mutex_unlock(&lock);
	return v;
}

int edge_gpiod_stubs_open_chips(void)
{
	int n = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CHIPS; i++)
		if (sim.chips[i].used)
			n += sim.chips[i].open_count;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- chips ---- */

struct gpiod_chip *gpiod_chip_open(const char *path)
{
	pthread_mutex_lock(&lock);
	if (!enabled) {
		pthread_mutex_unlock(&lock);
		return REAL(gpiod_chip_open)(path);
	}
	/* Like the kernel: only a device path opens a chip. */
	struct gpiod_chip *c = strncmp(path, "/dev/", 5) == 0 ? find_chip(path) : NULL;
	if (c && strcmp(path + 5, c->name) != 0)
		c = NULL; /* "/dev/<label>" is no device */
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
	if (chip->open_count > 0)
		chip->open_count--;
	pthread_mutex_unlock(&lock);
}

struct gpiod_chip_info *gpiod_chip_get_info(struct gpiod_chip *chip)
{
	if (!ours(chip))
		return REAL(gpiod_chip_get_info)(chip);
	pthread_mutex_lock(&lock);
	struct gpiod_chip_info *info = NULL;
	for (int i = 0; i < MAX_INFOS && !info; i++)
		if (!sim.chip_infos[i].used)
			info = &sim.chip_infos[i];
	if (info) {
		info->used = 1;
		info->chip = chip;
	}
	pthread_mutex_unlock(&lock);
	if (!info)
		errno = ENOMEM;
	return info;
}

const char *gpiod_chip_info_get_name(struct gpiod_chip_info *info)
{
	if (!ours(info))
		return REAL(gpiod_chip_info_get_name)(info);
	return info->chip->name;
}

const char *gpiod_chip_info_get_label(struct gpiod_chip_info *info)
{
	if (!ours(info))
		return REAL(gpiod_chip_info_get_label)(info);
	return info->chip->label;
}

void gpiod_chip_info_free(struct gpiod_chip_info *info)
{
	if (!info)
		return;
	if (!ours(info)) {
		REAL(gpiod_chip_info_free)(info);
		return;
	}
	pthread_mutex_lock(&lock);
	info->used = 0;
	pthread_mutex_unlock(&lock);
}

/* ---- line info ---- */

struct gpiod_line_info *gpiod_chip_get_line_info(struct gpiod_chip *chip, unsigned int offset)
{
	if (!ours(chip))
		return REAL(gpiod_chip_get_line_info)(chip, offset);
	if (offset >= chip->num_lines) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&lock);
	struct gpiod_line_info *info = NULL;
	for (int i = 0; i < MAX_INFOS && !info; i++)
		if (!sim.line_infos[i].used)
			info = &sim.line_infos[i];
	if (info) {
		struct sim_line *l = &chip->lines[offset];
		memset(info, 0, sizeof(*info));
		info->used = 1;
		info->is_used = l->external[0] || l->kind != KIND_FREE;
		snprintf(info->consumer, sizeof(info->consumer), "%s", l->external[0] ? l->external : l->consumer);
		info->debounce_us = chip->kernel_debounce ? l->debounce_us : 0;
	}
	pthread_mutex_unlock(&lock);
	if (!info)
		errno = ENOMEM;
	return info;
}

void gpiod_line_info_free(struct gpiod_line_info *info)
{
	if (!info)
		return;
	if (!ours(info)) {
		REAL(gpiod_line_info_free)(info);
		return;
	}
	pthread_mutex_lock(&lock);
	info->used = 0;
	pthread_mutex_unlock(&lock);
}

bool gpiod_line_info_is_used(struct gpiod_line_info *info)
{
	if (!ours(info))
		return REAL(gpiod_line_info_is_used)(info);
	return info->is_used;
}

const char *gpiod_line_info_get_consumer(struct gpiod_line_info *info)
{
	if (!ours(info))
		return REAL(gpiod_line_info_get_consumer)(info);
	return info->consumer[0] ? info->consumer : NULL;
}

unsigned long gpiod_line_info_get_debounce_period_us(struct gpiod_line_info *info)
{
	if (!ours(info))
		return REAL(gpiod_line_info_get_debounce_period_us)(info);
	return info->debounce_us;
}

/* ---- line requests ---- */

struct gpiod_line_request *gpiod_chip_request_lines(struct gpiod_chip *chip, struct gpiod_request_config *req_cfg,
						    struct gpiod_line_config *line_cfg)
{
	if (!ours(chip))
		return REAL(gpiod_chip_request_lines)(chip, req_cfg, line_cfg);
	/* The backend requests one line at a time; read back what it configured (real getters). */
	unsigned int offset;
	if (gpiod_line_config_get_num_configured_offsets(line_cfg) != 1 ||
	    gpiod_line_config_get_configured_offsets(line_cfg, &offset, 1) != 1 || offset >= chip->num_lines) {
		errno = EINVAL;
		return NULL;
	}
	struct gpiod_line_settings *settings = gpiod_line_config_get_line_settings(line_cfg, offset);
	if (!settings)
		return NULL;
	enum gpiod_line_direction direction = gpiod_line_settings_get_direction(settings);
	enum gpiod_line_edge edge = gpiod_line_settings_get_edge_detection(settings);
	int active_low = gpiod_line_settings_get_active_low(settings) ? 1 : 0;
	unsigned long debounce_us = gpiod_line_settings_get_debounce_period_us(settings);
	int clock = (int)gpiod_line_settings_get_event_clock(settings);
	enum gpiod_line_value output = gpiod_line_settings_get_output_value(settings);
	gpiod_line_settings_free(settings);
	const char *consumer = req_cfg ? gpiod_request_config_get_consumer(req_cfg) : NULL;

	int kind;
	if (direction == GPIOD_LINE_DIRECTION_INPUT && edge != GPIOD_LINE_EDGE_NONE)
		kind = KIND_EVENTS;
	else if (direction == GPIOD_LINE_DIRECTION_OUTPUT)
		kind = KIND_OUTPUT;
	else {
		errno = EINVAL; /* the backend never requests plain inputs */
		return NULL;
	}

	pthread_mutex_lock(&lock);
	struct sim_line *l = &chip->lines[offset];
	if (l->external[0] || l->kind != KIND_FREE) {
		pthread_mutex_unlock(&lock);
		errno = EBUSY;
		return NULL;
	}
	struct gpiod_line_request *r = NULL;
	for (size_t i = 0; i < sizeof(sim.requests) / sizeof(sim.requests[0]) && !r; i++)
		if (!sim.requests[i].used)
			r = &sim.requests[i];
	if (!r) {
		pthread_mutex_unlock(&lock);
		errno = ENOMEM;
		return NULL;
	}
	if (kind == KIND_EVENTS) {
		l->efd = eventfd(0, EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC);
		if (l->efd < 0) {
			int err = errno;
			pthread_mutex_unlock(&lock);
			errno = err;
			return NULL;
		}
	} else {
		l->physical = (output == GPIOD_LINE_VALUE_ACTIVE ? 1 : 0) ^ active_low;
	}
	l->kind = kind;
	l->active_low = active_low;
	l->debounce_us = debounce_us;
	l->clock = clock;
	snprintf(l->consumer, sizeof(l->consumer), "%s", consumer ? consumer : "");
	l->head = l->count = 0;
	r->used = 1;
	r->chip = chip;
	r->offset = offset;
	pthread_mutex_unlock(&lock);
	return r;
}

void gpiod_line_request_release(struct gpiod_line_request *request)
{
	if (!ours(request)) {
		REAL(gpiod_line_request_release)(request);
		return;
	}
	pthread_mutex_lock(&lock);
	if (request->used)
		release_locked(request_line(request));
	request->used = 0;
	pthread_mutex_unlock(&lock);
}

enum gpiod_line_value gpiod_line_request_get_value(struct gpiod_line_request *request, unsigned int offset)
{
	if (!ours(request))
		return REAL(gpiod_line_request_get_value)(request, offset);
	pthread_mutex_lock(&lock);
	enum gpiod_line_value v;
	if (!request->used || offset != request->offset) {
		errno = EINVAL;
		v = GPIOD_LINE_VALUE_ERROR;
	} else {
		struct sim_line *l = request_line(request);
		v = (l->physical ^ l->active_low) ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE;
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return v;
}

int gpiod_line_request_set_value(struct gpiod_line_request *request, unsigned int offset, enum gpiod_line_value value)
{
	if (!ours(request))
		return REAL(gpiod_line_request_set_value)(request, offset, value);
	pthread_mutex_lock(&lock);
	int rc = 0;
	struct sim_line *l = request->used ? request_line(request) : NULL;
	if (!l || offset != request->offset || l->kind != KIND_OUTPUT) {
		errno = EPERM;
		rc = -1;
	} else {
		l->physical = (value == GPIOD_LINE_VALUE_ACTIVE ? 1 : 0) ^ l->active_low;
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

int gpiod_line_request_get_fd(struct gpiod_line_request *request)
{
	if (!ours(request))
		return REAL(gpiod_line_request_get_fd)(request);
	pthread_mutex_lock(&lock);
	int fd = (request->used && request_line(request)->kind == KIND_EVENTS) ? request_line(request)->efd : -1;
	pthread_mutex_unlock(&lock);
	if (fd < 0)
		errno = EPERM;
	return fd;
}

int gpiod_line_request_read_edge_events(struct gpiod_line_request *request, struct gpiod_edge_event_buffer *buffer,
					size_t max_events)
{
	if (!ours(request))
		return REAL(gpiod_line_request_read_edge_events)(request, buffer, max_events);
	if (!ours(buffer)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&lock);
	int rc;
	struct sim_line *l = request->used ? request_line(request) : NULL;
	if (!l || l->kind != KIND_EVENTS) {
		errno = EPERM;
		rc = -1;
	} else if (l->count == 0) {
		errno = EAGAIN; /* the real call would block; the backend only reads after poll() */
		rc = -1;
	} else {
		size_t n = 0;
		while (l->count > 0 && n < max_events && n < buffer->capacity) {
			buffer->events[n++] = l->queue[l->head];
			l->head = (l->head + 1) % MAX_EVENTS;
			l->count--;
			uint64_t one;
			if (read(l->efd, &one, sizeof(one)) != sizeof(one))
				perror("gpiod stubs: eventfd read");
		}
		buffer->count = n;
		rc = (int)n;
	}
	int err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}

/* ---- edge events ---- */

struct gpiod_edge_event_buffer *gpiod_edge_event_buffer_new(size_t capacity)
{
	pthread_mutex_lock(&lock);
	if (!enabled) {
		pthread_mutex_unlock(&lock);
		return REAL(gpiod_edge_event_buffer_new)(capacity);
	}
	struct gpiod_edge_event_buffer *b = NULL;
	for (int i = 0; i < MAX_BUFFERS && !b; i++)
		if (!sim.buffers[i].used)
			b = &sim.buffers[i];
	if (b) {
		memset(b, 0, sizeof(*b));
		b->used = 1;
		b->capacity = capacity == 0 ? 1 : (capacity > MAX_EVENTS ? MAX_EVENTS : capacity);
	}
	pthread_mutex_unlock(&lock);
	if (!b)
		errno = ENOMEM;
	return b;
}

void gpiod_edge_event_buffer_free(struct gpiod_edge_event_buffer *buffer)
{
	if (!buffer)
		return;
	if (!ours(buffer)) {
		REAL(gpiod_edge_event_buffer_free)(buffer);
		return;
	}
	pthread_mutex_lock(&lock);
	buffer->used = 0;
	pthread_mutex_unlock(&lock);
}

struct gpiod_edge_event *gpiod_edge_event_buffer_get_event(struct gpiod_edge_event_buffer *buffer, unsigned long index)
{
	if (!ours(buffer))
		return REAL(gpiod_edge_event_buffer_get_event)(buffer, index);
	if (index >= buffer->count) {
		errno = EINVAL;
		return NULL;
	}
	return &buffer->events[index];
}

enum gpiod_edge_event_type gpiod_edge_event_get_event_type(struct gpiod_edge_event *event)
{
	if (!ours(event))
		return REAL(gpiod_edge_event_get_event_type)(event);
	return event->type;
}

uint64_t gpiod_edge_event_get_timestamp_ns(struct gpiod_edge_event *event)
{
	if (!ours(event))
		return REAL(gpiod_edge_event_get_timestamp_ns)(event);
	return event->timestamp_ns;
}
#endif /* GPIOD_V2 */

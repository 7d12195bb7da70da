#ifndef EDGE_GPIOD_STUBS_H
#define EDGE_GPIOD_STUBS_H
/*
 * Test-only stand-ins for the gpiod_* calls LibGPIODBackend makes ("playing the kernel"), one set
 * per libgpiod API: stubs.c for v1 (1.6), stubs_v2.c for v2 (2.x), picked like the backend
 * (GPIOD_V2). This control API is the same for both.
 *
 * Inert by default: every stub forwards to the real libgpiod (dlsym(RTLD_NEXT, ...)). After
 * edge_gpiod_stubs_enable(1), chip opens are served from the simulated chips added below, and
 * every call on a simulated chip or line is handled here; calls on real objects still forward.
 * All test binaries share these symbols, so tests that enable them must be serialized.
 *
 * Thread-safe: one mutex guards the simulated state (the backend's event thread reads events
 * while the test thread injects them).
 */

/* Turns the simulation on (1) or off (0). */
void edge_gpiod_stubs_enable(int enabled);

/* Removes every simulated chip (releasing its lines). */
void edge_gpiod_stubs_reset(void);

/* Adds a chip found by name, "/dev/<name>" or label, with num_lines lines (max 64). 0 or -1. */
int edge_gpiod_stubs_add_chip(const char *name, const char *label, unsigned int num_lines);

/* Makes opening the chip fail with errno `err` (0: open normally). */
int edge_gpiod_stubs_set_open_errno(const char *chip, int err);

/* Marks a line as held by another process (`consumer`), or free again (NULL). */
int edge_gpiod_stubs_set_external_consumer(const char *chip, unsigned int offset, const char *consumer);

/*
 * Sets the physical level of a line. If the line is requested for events and the level changes,
 * queues an edge event stamped `timestamp_ns` (type in logical terms: active-low applied, as
 * the kernel's v1 uAPI reports it) and makes its event fd readable.
 */
int edge_gpiod_stubs_set_level(const char *chip, unsigned int offset, int physical, long long timestamp_ns);

/* Physical level of a line (what an output drives), -1 if unknown. */
int edge_gpiod_stubs_get_level(const char *chip, unsigned int offset);

/*
 * Request flags passed by the last request of the line, -1 if it is not requested now. v1: the
 * GPIOD_LINE_REQUEST_FLAG_* bits; v2 reports active-low the same way (4), nothing else.
 */
int edge_gpiod_stubs_request_flags(const char *chip, unsigned int offset);

/* 1 if requested for events, 2 if requested as output, 0 if free, -1 if unknown. */
int edge_gpiod_stubs_request_kind(const char *chip, unsigned int offset);

/* Number of simulated chips currently open (open count summed). */
int edge_gpiod_stubs_open_chips(void);

/*
 * v2 only (v1 returns -1): whether the chip's kernel takes a line's debounce period (then the
 * line info reports it; events are queued as the test injects them, i.e. already debounced).
 */
int edge_gpiod_stubs_set_kernel_debounce(const char *chip, int supported);

/* v2 only: the debounce period (µs) of the line's request, -1 if not requested (or v1). */
long edge_gpiod_stubs_request_debounce_us(const char *chip, unsigned int offset);

/* v2 only: the event clock of the line's request (enum gpiod_line_clock), -1 if not requested (or v1). */
int edge_gpiod_stubs_request_clock(const char *chip, unsigned int offset);

#endif

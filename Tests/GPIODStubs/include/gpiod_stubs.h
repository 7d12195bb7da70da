#ifndef EDGE_GPIOD_STUBS_H
#define EDGE_GPIOD_STUBS_H
/* Test-only control of the gpiod_* stubs (see stubs.c). */
void edge_gpiod_stubs_enable(int enabled);
#endif

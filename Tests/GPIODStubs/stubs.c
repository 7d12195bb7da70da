#include "gpiod_stubs.h"
static int stubs_enabled = 0;
void edge_gpiod_stubs_enable(int enabled) { stubs_enabled = enabled; }

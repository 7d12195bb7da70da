#ifndef EDGE_CMOSQUITTO_SHIM_H
#define EDGE_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif

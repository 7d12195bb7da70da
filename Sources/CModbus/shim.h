#ifndef EDGE_CMODBUS_SHIM_H
#define EDGE_CMODBUS_SHIM_H
#include <modbus.h>
#endif

#ifndef EDGE_CYAML_SHIM_H
#define EDGE_CYAML_SHIM_H
#include <yaml.h>
#endif

// libFuzzer's entry for programs that own main() (compiler-rt FuzzerInterface.h / FuzzerDriver.cpp).
// SwiftPM links every executable with main = <Target>_main, so each fuzz target's
// <Target>_main hands argc/argv to libFuzzer through this call.
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*user_callback)(const uint8_t *data, size_t size));

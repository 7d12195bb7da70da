#!/usr/bin/env python3
"""The pymodbus peer for the Modbus throughput comparison (a client nobody here wrote).

Polls units 1..UNITS the way the agent polls a ref-luminaire (holding 0-1, then input 0-5:
two transactions per luminaire) back to back for SECONDS with pymodbus's synchronous TCP
client, then prints `T <transactions> <failures> <seconds>` (the same line as peers/mbloop.c).

Usage: pymodbus_loop.py PORT UNITS SECONDS
"""
import sys
import time

from pymodbus.client import ModbusTcpClient


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    port, units, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    if not client.connect():
        print("pymodbus_loop: cannot connect", file=sys.stderr)
        return 1
    done = failed = 0
    start = time.monotonic()
    end = start + seconds
    now = start
    while now < end:
        for unit in range(1, units + 1):
            for call, count in ((client.read_holding_registers, 2), (client.read_input_registers, 6)):
                try:
                    r = call(0, count=count, device_id=unit)
                    if r.isError():
                        failed += 1
                    else:
                        done += 1
                except Exception:  # noqa: BLE001 - a failed transaction is counted, not fatal
                    failed += 1
            now = time.monotonic()
            if now >= end:
                break
    print(f"T {done} {failed} {now - start:.6f}", flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The soak's field and processes: the simulated board (edge-sim config, board file, agent
config) and the child processes (mosquitto, centre subscriber, edge-sim, edge-agent,
cyclictest), each in its own session, with SIGTERM as parent-death signal so nothing
outlives the driver, and stopped one by one by pid."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

GATEWAY = "soak-gw"
PREFIX = "edge/v1"
ROOT = f"{PREFIX}/{GATEWAY}"


@dataclass(frozen=True)
class Timing:
    """Field timings: short, so bollards and buses cycle at high rates."""
    travel_up_s: float = 1.5
    travel_down_s: float = 1.0
    pre_warning_s: float = 1.0
    travel_timeout_s: float = 4.0
    auto_raise_after_s: float = 2.0
    max_reversals: int = 3
    max_hold_s: float = 15.0
    min_interval_s: float = 3.0
    ack_delay_ms: int = 150
    street_poll_ms: int = 200
    safety_poll_ms: int = 50
    telemetry_s: int = 5
    period_ms: int = 10


# Lighting groups: lamps (unit ids), Modbus presence sensors, GPIO presence lines.
GROUPS = {
    "rue-liberte": {"lamps": range(1, 7), "pir": ["pir-01", "pir-02"], "gpio": ["pir-g1"], "neighbours": ["rue-musette"]},
    "rue-musette": {"lamps": range(7, 13), "pir": ["pir-03", "pir-04"], "gpio": [], "neighbours": ["rue-liberte"]},
    "place-darcy": {"lamps": range(13, 17), "pir": ["pir-05"], "gpio": ["pir-g2"], "neighbours": ["rue-liberte"]},
    "quai-nord": {"lamps": range(17, 21), "pir": ["pir-06"], "gpio": [], "neighbours": []},
}
MODBUS_PIR = {f"pir-0{i}": 20 + i for i in range(1, 7)}          # name -> unit 21..26
GPIO_PIR = {"pir-g1": "presence-a", "pir-g2": "presence-b"}       # device -> line
BOLLARDS = {"bollard-1": 30, "bollard-2": 31, "bollard-3": 32}
JUNCTION_UNIT = 40
# Approach -> (approach number, check-in line, check-out line).
APPROACHES = {
    "north": (1, "bus-in-north", "stopline-north"),
    "south": (2, "bus-in-south", "stopline-south"),
    "east": (3, "bus-in-east", "stopline-east"),
}
GPIO_LINES = list(GPIO_PIR.values()) + [l for _, a, b in APPROACHES.values() for l in (a, b)]


def lamp_name(unit: int) -> str:
    return f"lamp-{unit:02d}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_config(port: int, control: str, t: Timing) -> str:
    units = [f"  {u}: {{type: ref-luminaire, name: {lamp_name(u)}, rated_w: 60}}" for g in GROUPS.values() for u in g["lamps"]]
    units += [f"  {u}: {{type: ref-presence, name: {n}, lux: 5}}" for n, u in MODBUS_PIR.items()]
    units += [f"  {u}: {{type: ref-bollard, name: {n}, travel_up: {int(t.travel_up_s * 1000)}ms, travel_down: {int(t.travel_down_s * 1000)}ms}}"
              for n, u in BOLLARDS.items()]
    units.append(f"  {JUNCTION_UNIT}: {{type: ref-signal-io, name: junction, ack_delay: {t.ack_delay_ms}ms}}")
    return "\n".join([
        "# edge-sim field of the soak (scripts/soak.sh).",
        f"tcp: 127.0.0.1:{port}",
        f"control: {control}",
        "tick: 10ms",
        "units:", *units,
        "gpio:", *[f"  {l}: input" for l in GPIO_LINES],
    ]) + "\n"


def board_config(sim_socket: str) -> str:
    lines = [f"    {l}: {{chip: sim0, offset: {i}, direction: input, debounce: 5ms}}" for i, l in enumerate(GPIO_LINES)]
    return "\n".join([
        "name: soak-sim",
        "description: simulated board of the soak (edge-sim hosts the GPIO lines)",
        "gpio:",
        "  backend: simulated",
        f"  simulator_socket: {sim_socket}",
        "  lines:", *lines,
    ]) + "\n"


def agent_config(run: Path, sim_port: int, broker_port: int, profiles: Path, t: Timing, realtime_priority: int) -> str:
    dev = []
    for g in GROUPS.values():
        for u in g["lamps"]:
            dev.append(f"  {lamp_name(u)}: {{profile: ref-luminaire, bus: street, unit: {u}}}")
    for n, u in MODBUS_PIR.items():
        dev.append(f"  {n}: {{profile: ref-presence, bus: street, unit: {u}}}")
    for n, line in GPIO_PIR.items():
        dev.append(f"  {n}: {{gpio: {line}}}")
    for n, u in BOLLARDS.items():
        dev.append(f"  {n}: {{profile: ref-bollard, bus: safety, unit: {u}}}")
    dev.append(f"  junction: {{profile: ref-signal-io, bus: safety, unit: {JUNCTION_UNIT}}}")
    for name, (_, cin, cout) in APPROACHES.items():
        dev.append(f"  bus-in-{name}: {{gpio: {cin}}}")
        dev.append(f"  bus-out-{name}: {{gpio: {cout}}}")
    light = []
    for gname, g in GROUPS.items():
        lamps = ", ".join(lamp_name(u) for u in g["lamps"])
        presence = ", ".join(g["pir"] + g["gpio"])
        light += [f"  {gname}:", f"    lamps: [{lamps}]", f"    presence: [{presence}]",
                  "    base: 30", "    boost: 100", "    hold: 1s", "    fade_up: 500ms", "    fade_down: 2s",
                  f"    neighbours: [{', '.join(g['neighbours'])}]", "    rated_w: 60"]
    bollards = [f"  {n}: {{pre_warning: {int(t.pre_warning_s * 1000)}ms, travel_timeout: {int(t.travel_timeout_s * 1000)}ms, "
                f"auto_raise_after: {int(t.auto_raise_after_s * 1000)}ms, max_reversals: {t.max_reversals}}}" for n in BOLLARDS]
    prio = [f"  {n}: {{device: junction, approach: {a}, checkin: bus-in-{n}, checkout: bus-out-{n}, "
            f"max_hold: {int(t.max_hold_s)}s, min_interval: {int(t.min_interval_s * 1000)}ms}}" for n, (a, _, _) in APPROACHES.items()]
    return "\n".join([
        "# edge-agent on the soak's simulated board (scripts/soak.sh).",
        "gateway:",
        f"  id: {GATEWAY}",
        "  location: {lat: 47.3220, lon: 5.0415}",
        "  timezone: Europe/Paris",
        f"  state_dir: {run / 'state'}",
        f"  control_socket: {run / 'control.sock'}",
        "uplink:",
        f"  broker: mqtt://127.0.0.1:{broker_port}",
        f"  prefix: {PREFIX}",
        f"  telemetry_interval: {t.telemetry_s}s",
        "  outbox: {max_messages: 1000000, max_age: 7d}",
        "board: board.yaml",
        f"profiles_dir: {profiles}",
        f"control: {{period: {t.period_ms}ms, realtime_priority: {realtime_priority}}}",
        "buses:",
        f'  street: {{tcp: "127.0.0.1:{sim_port}", timeout: 200ms, poll: {t.street_poll_ms}ms}}',
        f'  safety: {{tcp: "127.0.0.1:{sim_port}", timeout: 200ms, poll: {t.safety_poll_ms}ms}}',
        "devices:", *dev,
        "lighting:", *light,
        "bollards:", *bollards,
        "priority:", *prio,
    ]) + "\n"


def mosquitto_config(port: int) -> str:
    # max_queued_messages 0: the broker never drops QoS 1 messages queued for the centre, so a
    # gap can only come from the gateway.
    # Run as root, mosquitto would switch to its own user, which clears the parent-death
    # signal: keep the user so it still dies with the driver.
    user = "user root\n" if os.geteuid() == 0 else ""
    return f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n{user}"


class Child:
    """A child process in its own session (Ctrl-C reaches only the driver), killed with
    SIGTERM if the driver dies (setpriv --pdeathsig), stdout/stderr to files."""

    def __init__(self, name: str, argv: list[str], logs: Path, stdout: Path | None = None, env: dict[str, str] | None = None):
        self.name = name
        self.stdout_path = stdout or logs / f"{name}.out"
        self.stderr_path = logs / f"{name}.log"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "TERM", "--", *argv], stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, start_new_session=True, env=full_env)
        self.pid = self.proc.pid
        self.exit_code: int | None = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Sends `sig`, waits up to `timeout`, then SIGKILL. Returns the exit code (negative:
        killed by that signal)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.exit_code = self.proc.returncode
        self._out.close()
        self._err.close()
        return self.exit_code

    def wait_stdout(self, text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if text in self.stdout_path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            if not self.running:
                return False
            time.sleep(0.05)
        return False


def proc_figures(pid: int) -> dict[str, float]:
    """RSS/PSS (kB), CPU seconds, threads, open fds of a live process."""
    from analysis import smaps_rollup
    out: dict[str, float] = {}
    try:
        roll = smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
        out["rss_kb"] = roll.get("Rss", 0)
        out["pss_kb"] = roll.get("Pss", 0)
        out["anon_kb"] = roll.get("Anonymous", 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        tck = os.sysconf("SC_CLK_TCK")
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tck
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm_kb"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        pass
    return out

"""The street scene the soak plays on edge-sim, for as long as it runs: pedestrians on the
presence sensors, buses checking in and out on the approaches, bollard cycles (lower for a
vehicle, auto-raise or raise command), vehicles and pedestrians arriving during a rise or its
pre-warning, rare emergencies. It watches the simulated devices (10 Hz) to time its
injections and to measure what the junction controller saw (request on-times).

Obstructions are injected only once the motor is running (or early in the pre-warning): a
vehicle entering the loop within one poll period before the agent energises motor-up is the
polling race described in docs/reliability/soak.md, probed apart (`--race-probe`)."""
from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter

from rig import APPROACHES, BOLLARDS, GPIO_PIR, MODBUS_PIR, Timing


class SimCommandError(Exception):
    pass


class SimLink:
    """One connection to edge-sim's control socket; one command line, one JSON reply."""

    def __init__(self, path: str):
        self.path = path
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.commands = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_unix_connection(self.path)

    async def cmd(self, line: str) -> dict:
        assert self.reader and self.writer
        async with self.lock:
            self.writer.write((line + "\n").encode())
            await self.writer.drain()
            raw = await asyncio.wait_for(self.reader.readline(), timeout=10)
            self.commands += 1
        if not raw:
            raise SimCommandError(f"edge-sim closed the control socket (command: {line})")
        obj = json.loads(raw)
        if not obj.get("ok"):
            raise SimCommandError(f"edge-sim refused '{line}': {obj.get('error')}")
        return obj

    async def close(self) -> None:
        if self.writer:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


class Scene:
    """Runs every injector until `stop` is set; counts what it injected and what it saw."""

    def __init__(self, sim: SimLink, edgectl: list[str], timing: Timing, rng: random.Random, log,
                 presence_rate: float = 4.0, bus_interval_s: float = 5.0):
        self.sim = sim
        self.edgectl_argv = edgectl
        self.t = timing
        self.rng = rng
        self.log = log
        self.presence_rate = presence_rate
        self.bus_interval_s = bus_interval_s
        self.stop = asyncio.Event()
        self.injected: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.anomalies: Counter[str] = Counter()
        self.anomaly_details: list[str] = []
        self.state: dict[str, dict] = {}
        self.state_at = 0.0
        self.junction_samples: dict[int, list[tuple[float, bool]]] = {a: [] for a, _, _ in APPROACHES.values()}
        self.observed_reversals = 0
        self.max_motor_up_with_obstruction_s = 0.0
        self._obstructed_since: dict[str, float] = {}
        self.line_locks = {l: asyncio.Lock() for _, a, b in APPROACHES.values() for l in (a, b)}
        self.active_presence: set[str] = set()
        self.tasks: list[asyncio.Task] = []
        self.t0 = time.monotonic()

    # MARK: helpers

    def anomaly(self, kind: str, detail: str) -> None:
        self.anomalies[kind] += 1
        text = f"t={time.monotonic() - self.t0:.1f}s {kind}: {detail}"
        if len(self.anomaly_details) < 50:
            self.anomaly_details.append(text)
        self.log(f"anomaly {text}")

    async def sleep(self, seconds: float) -> bool:
        """Sleeps unless stopping; returns False when the scene is stopping."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))
            return False
        except asyncio.TimeoutError:
            return True

    async def edgectl(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(*self.edgectl_argv, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            self.anomaly("edgectl_timeout", " ".join(args))
            return 124, ""
        text = (out + err).decode(errors="replace").strip()
        if proc.returncode == 1:
            # "edgectl: refused: interlock: ..." -> interlock
            code = text.split("refused:", 1)[-1].strip().split(":", 1)[0] if "refused:" in text else "refused"
            self.refusals[f"{args[0]} {args[1]}: {code}"] += 1
        elif proc.returncode != 0:
            self.anomaly("edgectl_failed", f"{' '.join(args)} -> {proc.returncode}: {text[:200]}")
        return proc.returncode, text

    async def wait_state(self, device: str, pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.state.get(device)
            if st is not None and pred(st):
                return True
            if self.stop.is_set():
                return False
            await asyncio.sleep(0.02)
        return False

    # MARK: watcher

    async def watch(self) -> None:
        """Samples the bollards and the junction at 10 Hz."""
        names = list(BOLLARDS) + ["junction"]
        while not self.stop.is_set():
            now = time.monotonic()
            for n in names:
                st = await self.sim.cmd(f"get {n}")
                prev = self.state.get(n)
                self.state[n] = st
                if n == "junction":
                    for a in self.junction_samples:
                        self.junction_samples[a].append((now, bool(st["request"][a - 1])))
                else:
                    if prev and prev.get("position") == "raising" and st.get("position") == "lowering":
                        self.observed_reversals += 1
                    obstructed = st.get("motor_up") and (st.get("loop") or st.get("photocell"))
                    if obstructed:
                        since = self._obstructed_since.setdefault(n, now)
                        self.max_motor_up_with_obstruction_s = max(self.max_motor_up_with_obstruction_s, now - since)
                    else:
                        self._obstructed_since.pop(n, None)
            self.state_at = now
            await asyncio.sleep(0.1)

    # MARK: presence

    async def presence(self) -> None:
        sensors = [(n, "modbus") for n in MODBUS_PIR] + [(n, "gpio") for n in GPIO_PIR]
        while await self.sleep(self.rng.expovariate(self.presence_rate)):
            free = [s for s in sensors if s[0] not in self.active_presence]
            if not free:
                continue
            name, kind = self.rng.choice(free)
            self.active_presence.add(name)
            self.spawn(self.presence_pulse(name, kind))
            if self.rng.random() < 0.03:
                pir = self.rng.choice(list(MODBUS_PIR))
                await self.sim.cmd(f"set {pir} lux {self.rng.randint(0, 400)}")
                self.injected["lux change"] += 1

    async def presence_pulse(self, name: str, kind: str) -> None:
        try:
            # A Modbus PIR holds its output longer than the 200 ms poll; a GPIO contact may be short.
            hold = self.rng.uniform(0.3, 2.0) if kind == "modbus" else self.rng.uniform(0.05, 1.5)
            if kind == "modbus":
                await self.sim.cmd(f"set {name} presence 1")
            else:
                await self.sim.cmd(f"gpio {GPIO_PIR[name]} 1")
            self.injected[f"presence ({kind})"] += 1
            await asyncio.sleep(hold)
            if kind == "modbus":
                await self.sim.cmd(f"set {name} presence 0")
            else:
                await self.sim.cmd(f"gpio {GPIO_PIR[name]} 0")
        finally:
            self.active_presence.discard(name)

    # MARK: bus priority

    async def pulse(self, line: str) -> None:
        """One detector pulse (80-150 ms, well over the 5 ms debounce), spaced on its line."""
        async with self.line_locks[line]:
            await self.sim.cmd(f"gpio {line} 1")
            await asyncio.sleep(self.rng.uniform(0.08, 0.15))
            await self.sim.cmd(f"gpio {line} 0")
            await asyncio.sleep(0.06)

    async def approach(self, name: str) -> None:
        _, cin, cout = APPROACHES[name]
        while await self.sleep(self.rng.expovariate(1 / self.bus_interval_s)):
            self.spawn(self.bus(name, cin, cout))

    async def bus(self, name: str, cin: str, cout: str) -> None:
        await self.pulse(cin)
        self.injected["bus check-in"] += 1
        if not await self.sleep(self.rng.uniform(2.0, 10.0)):
            await self.pulse(cout)           # check out even when stopping: leave no bus behind
            self.injected["bus check-out"] += 1
            return
        if self.rng.random() < 0.1:
            self.injected["bus check-out lost"] += 1   # the request must end at max_hold
            return
        await self.pulse(cout)
        self.injected["bus check-out"] += 1

    # MARK: bollards

    def pos(self, b: str) -> str:
        return self.state.get(b, {}).get("position", "?")

    async def set_b(self, b: str, signal: str, value: int) -> None:
        await self.sim.cmd(f"set {b} {signal} {value}")

    async def vehicle_pass(self, b: str) -> None:
        """A vehicle drives over the loop (and through the photocell) of a lowered bollard."""
        await self.set_b(b, "loop", 1)
        await asyncio.sleep(self.rng.uniform(0.1, 0.4))
        await self.set_b(b, "photocell", 1)
        await asyncio.sleep(self.rng.uniform(0.2, 0.8))
        await self.set_b(b, "photocell", 0)
        await asyncio.sleep(self.rng.uniform(0.1, 0.6))
        await self.set_b(b, "loop", 0)

    async def ensure_up(self, b: str) -> None:
        """Waits for the bollard to be up (auto-raise); sends `raise` when it is not coming."""
        t = self.t
        rise = t.auto_raise_after_s + t.pre_warning_s + t.travel_up_s
        if await self.wait_state(b, lambda s: s["position"] == "up", rise + 2.0):
            return
        if self.stop.is_set():
            return
        rc, text = await self.edgectl("bollard", "raise", b)
        self.injected["bollard raise command"] += 1
        if rc != 0:
            self.anomaly("raise_refused", f"{b} in {self.pos(b)}: {text[:160]}")
            await self.sleep(1.0)
            return
        if not await self.wait_state(b, lambda s: s["position"] == "up", t.pre_warning_s + t.travel_up_s + 3.0):
            if not self.stop.is_set():
                self.anomaly("not_up_after_raise", f"{b} is {self.pos(b)} {t.pre_warning_s + t.travel_up_s + 3.0:.1f}s after raise")

    async def bollard(self, b: str) -> None:
        t = self.t
        rng = self.rng
        # Start: the sim's bollards are down; a raise puts the agent in mode up (auto-raise armed).
        await self.ensure_up(b)
        while not self.stop.is_set():
            if rng.random() < 0.3:
                await self.sleep(rng.uniform(0.2, 1.5))
                await self.set_b(b, "photocell", 1)     # a pedestrian walks past the raised bollard
                await asyncio.sleep(rng.uniform(0.1, 0.5))
                await self.set_b(b, "photocell", 0)
                self.injected["photocell blip (up)"] += 1
            if not await self.sleep(rng.uniform(0.3, 2.0)):
                break
            if rng.random() < 0.03:
                await self.emergency(b)
                await self.ensure_up(b)
                continue
            rc, _ = await self.edgectl("bollard", "lower", b)
            self.injected["bollard lower command"] += 1
            if rc != 0:
                await self.sleep(1.0)
                await self.ensure_up(b)
                continue
            if not await self.wait_state(b, lambda s: s["position"] == "down", t.travel_down_s + 2.5):
                if self.stop.is_set():
                    break
                self.anomaly("not_down_after_lower", f"{b} is {self.pos(b)}")
                await self.ensure_up(b)
                continue
            await asyncio.sleep(rng.uniform(0.1, 0.8))
            await self.vehicle_pass(b)
            self.injected["vehicle passes"] += 1
            if rng.random() < 0.25:
                await asyncio.sleep(rng.uniform(0.2, t.auto_raise_after_s * 0.8))   # a tailgater before auto-raise
                await self.vehicle_pass(b)
                self.injected["vehicle passes (tailgater)"] += 1
            r = rng.random()
            if r < 0.05:
                rc, _ = await self.edgectl("bollard", "raise", b)
                self.injected["bollard raise command"] += 1
            elif r < 0.20:
                await self.obstruct_rise(b)
            elif r < 0.30:
                await self.obstruct_prewarning(b)
            await self.ensure_up(b)

    async def obstruct_rise(self, b: str) -> None:
        """A vehicle (or pedestrian) arrives while the bollard rises: the agent must reverse."""
        t = self.t
        if not await self.wait_state(b, lambda s: s["motor_up"], t.auto_raise_after_s + t.pre_warning_s + 3.0):
            if not self.stop.is_set():
                self.anomaly("no_auto_raise", f"{b} is {self.pos(b)} (motor up never seen)")
            return
        await asyncio.sleep(self.rng.uniform(0.0, 0.6) * t.travel_up_s)
        sig = "loop" if self.rng.random() < 0.6 else "photocell"
        await self.set_b(b, sig, 1)
        self.injected[f"obstruction during rise ({sig})"] += 1
        reversed_ = await self.wait_state(b, lambda s: not s["motor_up"], 1.0)
        if not reversed_ and not self.stop.is_set():
            self.anomaly("no_reversal", f"{b} motor-up still on 1 s after {sig} was set")
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        await self.set_b(b, sig, 0)

    async def obstruct_prewarning(self, b: str) -> None:
        """A pedestrian crosses the photocell early in the pre-warning: the raise is aborted."""
        t = self.t
        if not await self.wait_state(b, lambda s: s["warning"] and not s["motor_up"] and s["position"] == "down",
                                     t.auto_raise_after_s + 3.0):
            return
        await asyncio.sleep(self.rng.uniform(0.0, 0.3) * t.pre_warning_s)
        st = self.state.get(b, {})
        if st.get("motor_up"):
            return
        await self.set_b(b, "photocell", 1)
        self.injected["obstruction during pre-warning"] += 1
        await asyncio.sleep(self.rng.uniform(0.3, 1.0))
        await self.set_b(b, "photocell", 0)

    async def emergency(self, b: str) -> None:
        """Fire brigade: key input or emergency-lower command, then cleared locally."""
        if self.rng.random() < 0.5:
            await self.set_b(b, "emergency", 1)
            self.injected["emergency (key input)"] += 1
            await self.wait_state(b, lambda s: s["position"] == "down", self.t.travel_down_s + 2.5)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await self.set_b(b, "emergency", 0)
        else:
            await self.edgectl("bollard", "emergency-lower", b)
            self.injected["emergency (command)"] += 1
            await self.wait_state(b, lambda s: s["position"] == "down", self.t.travel_down_s + 2.5)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        await asyncio.sleep(0.3)   # the agent sees the key gone before the clear
        rc, text = await self.edgectl("bollard", "clear", b)
        if rc != 0:
            self.anomaly("clear_refused", f"{b}: {text[:160]}")
        if not await self.sleep(0.5):
            return
        rc, text = await self.edgectl("bollard", "raise", b)
        self.injected["bollard raise command"] += 1

    # MARK: run

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        try:
            self.tasks.remove(task)
        except ValueError:
            pass
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.anomaly("driver_error", f"{type(exc).__name__}: {exc}")

    def start(self) -> None:
        self.spawn(self.watch())
        self.spawn(self.presence())
        for a in APPROACHES:
            self.spawn(self.approach(a))
        for b in BOLLARDS:
            self.spawn(self.bollard(b))

    async def finish(self, grace: float = 15.0) -> None:
        """Stops the injectors, lets running pulses and buses end, then clears every input."""
        self.stop.set()
        end = time.monotonic() + grace
        while self.tasks and time.monotonic() < end:
            await asyncio.sleep(0.1)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.sleep(0.1)
        for n in MODBUS_PIR:
            await self.sim.cmd(f"set {n} presence 0")
        for line in GPIO_PIR.values():
            await self.sim.cmd(f"gpio {line} 0")
        for _, cin, cout in APPROACHES.values():
            await self.sim.cmd(f"gpio {cin} 0")
            await self.sim.cmd(f"gpio {cout} 0")
        for b in BOLLARDS:
            for sig in ("loop", "photocell", "emergency"):
                await self.set_b(b, sig, 0)


async def race_probe(sim: SimLink, edgectl, t: Timing, b: str, log, tries: int = 20) -> dict:
    """The polling race: a vehicle enters the loop just as the pre-warning ends. Returns the
    sim's violation count before/after and how often motor-up was seen with the loop set."""
    before = (await sim.cmd("stats"))["safety_violations"]
    hits = 0
    on_ms: list[float] = []
    leads: list[tuple[int, bool]] = []
    for i in range(tries):
        # Lowered for one vehicle, vehicle gone: the auto-raise runs its pre-warning.
        proc = await asyncio.create_subprocess_exec(*edgectl, "bollard", "lower", b, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()
        for _ in range(100):
            if (await sim.cmd(f"get {b}"))["position"] == "down":
                break
            await asyncio.sleep(0.05)
        await sim.cmd(f"set {b} loop 1")
        await asyncio.sleep(0.3)
        await sim.cmd(f"set {b} loop 0")
        warn_at = None
        for _ in range(400):
            st = await sim.cmd(f"get {b}")
            if st["warning"]:
                warn_at = time.monotonic()
                break
            await asyncio.sleep(0.005)
        if warn_at is None:
            log(f"race probe {i}: no pre-warning seen")
            continue
        # Enter the loop 0-60 ms before the pre-warning ends.
        lead = random.uniform(0.0, 0.06)
        await asyncio.sleep(max(0.0, t.pre_warning_s - lead - (time.monotonic() - warn_at)))
        await sim.cmd(f"set {b} loop 1")
        lead = t.pre_warning_s - (time.monotonic() - warn_at)
        up_at = None
        for _ in range(60):
            st = await sim.cmd(f"get {b}")
            if st["motor_up"] and up_at is None:
                up_at = time.monotonic()
                hits += 1
            elif not st["motor_up"] and up_at is not None:
                on_ms.append((time.monotonic() - up_at) * 1000)
                break
            await asyncio.sleep(0.005)
        leads.append((round(lead * 1000), up_at is not None))
        await asyncio.sleep(1.0)
        await sim.cmd(f"set {b} loop 0")
        for _ in range(200):
            st = await sim.cmd(f"get {b}")
            if st["position"] == "up":
                break
            await asyncio.sleep(0.05)
        else:
            proc = await asyncio.create_subprocess_exec(*edgectl, "bollard", "raise", b, stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()
            await asyncio.sleep(t.pre_warning_s + t.travel_up_s + 0.5)
    after = (await sim.cmd("stats"))
    return {"tries": tries, "motor_up_seen_with_loop": hits,
            "motor_up_on_ms_max": round(max(on_ms), 1) if on_ms else None,
            "lead_ms_vs_hit": sorted(leads),
            "violations_added": after["safety_violations"] - before, "violations": after["violations"][-5:]}

#!/usr/bin/env python3
"""edge-agent soak: hours on the simulated board under a busy street scene, then a verdict.

Started by scripts/soak.sh (which builds the release products). Everything binds 127.0.0.1
or unix sockets in the run folder; every child is stopped by its pid at the end, on Ctrl-C
(first: finish early with a report; second: stop at once) or if this driver dies
(parent-death signal).

Verdict (exit 1 when any fails; 0 when all pass; 130 when interrupted before the end):
- no seq missing at the centre: every seq 1..last was received, or is still in the outbox
  when the agent stopped (that one is delivered at the next start, not lost);
- zero safety violations counted by edge-sim;
- RSS slope after the warm-up <= --rss-slope-max (kB/h, least squares over the samples;
  judged only when the window after warm-up is at least --min-slope-window);
- control loop (100 Hz) p99 lateness <= --p99-late-max-us (2 ms) and worst <= --worst-late-max-us
  (20 ms), or, when cyclictest ran beside it (same SCHED_FIFO priority, 100 Hz) and saw a worse
  stall itself, worst <= 1.5x cyclictest's worst (the benchmark's ratio; the stall is the machine's);
- every priority request on the junction's coil ended within max_hold + 1 s;
- the agent ran the whole time and exited 0 on SIGTERM, with motor-up off afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analysis import analyse_centre, on_intervals, parse_cyclictest, slope_per_hour  # noqa: E402
from rig import (APPROACHES, BOLLARDS, GPIO_LINES, ROOT, Child, Timing, agent_config, board_config,  # noqa: E402
                 free_port, mosquitto_config, proc_figures, sim_config)
from scenario import Scene, SimLink, race_probe  # noqa: E402

REPO = HERE.parent.parent


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (use e.g. 90s, 2m, 1h)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def fmt_dur(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{(s % 3600) // 60:02d}m{s % 60:02d}s"


class Log:
    def __init__(self, path: Path):
        self.f = open(path, "a", buffering=1)

    def __call__(self, msg: str) -> None:
        line = f"[soak {time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        self.f.write(line + "\n")


def loadavg() -> tuple[float, float, float]:
    a = open("/proc/loadavg").read().split()
    return float(a[0]), float(a[1]), float(a[2])


def steal_seconds() -> float:
    """CPU time the hypervisor took from this VM, all CPUs, seconds since boot (/proc/stat)."""
    for line in open("/proc/stat"):
        if line.startswith("cpu "):
            f = line.split()
            return int(f[8]) / os.sysconf("SC_CLK_TCK") if len(f) > 8 else 0.0
    return 0.0


class Soak:
    def __init__(self, args):
        self.args = args
        self.t = Timing()
        self.run = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="edge-soak-"))
        self.run.mkdir(parents=True, exist_ok=True)
        self.logs = self.run / "logs"
        self.logs.mkdir(exist_ok=True)
        self.log = Log(self.run / "soak.log")
        self.bin = Path(args.bin)
        self.children: list[Child] = []
        self.samples: list[dict] = []
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.interrupted = False
        self.agent_exit: int | None = None
        self.started_wall = dt.datetime.now().astimezone()
        self.t_start = 0.0
        self.t_end = 0.0
        self.scene: Scene | None = None
        self.cyclic: Child | None = None
        self.last_seq_drained: int | None = None
        self.drained = False
        self.sim_stats: dict = {}
        self.after_stop: dict = {}

    # MARK: processes

    def spawn(self, name: str, argv: list[str], **kw) -> Child:
        c = Child(name, argv, self.logs, **kw)
        self.children.append(c)
        self.log(f"started {name} (pid {c.pid})")
        return c

    def stop_all(self) -> None:
        for c in reversed(self.children):
            if c.running:
                code = c.stop(signal.SIGTERM, timeout=10)
                self.log(f"stopped {c.name} (pid {c.pid}) -> {code}")

    def start_field(self) -> None:
        a, t = self.args, self.t
        for tool in ("mosquitto", "mosquitto_sub", "setpriv"):
            if not any((Path(p) / tool).exists() for p in os.environ.get("PATH", "").split(":") + ["/usr/sbin"]):
                raise SystemExit(f"soak: {tool} not found (apt-get install mosquitto mosquitto-clients util-linux)")
        self.broker_port = free_port()
        (self.run / "mosquitto.conf").write_text(mosquitto_config(self.broker_port))
        mosq = "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else "mosquitto"
        self.spawn("mosquitto", [mosq, "-c", str(self.run / "mosquitto.conf")])
        deadline = time.monotonic() + 10
        while not self._port_open(self.broker_port):
            if time.monotonic() > deadline:
                raise SystemExit("soak: mosquitto did not listen")
            time.sleep(0.05)
        # The centre: subscribes (QoS 1, persistent session) before the gateway starts.
        self.centre_file = self.run / "centre.log"
        self.spawn("centre", ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker_port), "-q", "1", "-c",
                              "-i", "soak-centre", "-v", "-t", f"{ROOT}/#"], stdout=self.centre_file)
        time.sleep(0.5)
        self.sim_port = free_port()
        self.sim_socket = str(self.run / "sim.sock")
        (self.run / "sim.yaml").write_text(sim_config(self.sim_port, self.sim_socket, t))
        self.sim = self.spawn("edge-sim", [str(self.bin / "edge-sim"), "--config", str(self.run / "sim.yaml")])
        if not self.sim.wait_stdout("edge-sim ready", 20):
            raise SystemExit(f"soak: edge-sim did not start; see {self.sim.stderr_path}")
        (self.run / "board.yaml").write_text(board_config(self.sim_socket))
        self.config_path = self.run / "agent.yaml"
        self.config_path.write_text(agent_config(self.run, self.sim_port, self.broker_port, REPO / "Profiles", t, a.rt_priority))
        self.control_socket = str(self.run / "control.sock")
        self.edgectl = [str(self.bin / "edgectl"), "--socket", self.control_socket]
        self.agent = self.spawn("edge-agent", [str(self.bin / "edge-agent"), "--config", str(self.config_path)])
        deadline = time.monotonic() + 20
        import subprocess
        while True:
            r = subprocess.run(self.edgectl + ["status", "--json"], capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                break
            if not self.agent.running or time.monotonic() > deadline:
                raise SystemExit(f"soak: edge-agent did not start ({r.stderr.strip()}); see {self.agent.stderr_path}")
            time.sleep(0.2)
        if not a.no_cyclictest and not a.race_probe:
            self.cyclic = self.spawn("cyclictest", ["cyclictest", "-t1", f"-p{a.rt_priority}" if a.rt_priority else "-p0",
                                                    "-i10000", "-q", "-h", "20000"])
        else:
            self.cyclic = None

    @staticmethod
    def _port_open(port: int) -> bool:
        import socket
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    # MARK: sampling

    async def status(self) -> dict | None:
        proc = await asyncio.create_subprocess_exec(*self.edgectl, "status", "--json", stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return None
        if proc.returncode != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    async def sample(self) -> dict:
        now = time.monotonic()
        s: dict = {"t": round(now - self.t_start, 1), "wall": time.strftime("%H:%M:%S"), "load": loadavg(),
                   "steal_s": steal_seconds()}
        s.update(proc_figures(self.agent.pid))
        st = await self.status()
        if st:
            loop = st.get("loop", {})
            up = st.get("uplink", {})
            s.update({"ticks": loop.get("ticks"), "worst_late_us": loop.get("worst_late_us"), "p99_late_us": loop.get("p99_late_us"),
                      "realtime": loop.get("realtime"), "outbox_depth": up.get("outbox_depth"), "last_seq": up.get("last_seq"),
                      "inflight": up.get("inflight"), "connected": up.get("connected"),
                      "dropped": (up.get("dropped_telemetry") or 0) + (up.get("dropped_events") or 0),
                      "outbox_errors": up.get("outbox_errors"), "alarms": len(st.get("alarms", [])),
                      "offline": sorted(n for n, d in st.get("devices", {}).items() if d.get("online") is False)})
        else:
            s["status_failed"] = True
        stats = await self.simlink.cmd("stats")
        s["violations"] = stats["safety_violations"]
        s["sim_writes"] = stats["writes"]
        sim_fig = proc_figures(self.sim.pid)
        s["sim_rss_kb"] = sim_fig.get("rss_kb")
        try:
            s["state_kb"] = sum(f.stat().st_size for f in (self.run / "state").iterdir() if f.is_file()) // 1024
        except OSError:
            pass
        self.samples.append(s)
        with open(self.run / "samples.jsonl", "a") as f:
            f.write(json.dumps(s) + "\n")
        return s

    # MARK: run

    async def main(self) -> None:
        a = self.args
        loop = asyncio.get_running_loop()
        stop_early = asyncio.Event()
        main_task = asyncio.current_task()

        def on_signal(signame: str) -> None:
            if not stop_early.is_set():
                self.log(f"{signame}: finishing early (again to stop at once)")
                self.interrupted = True
                stop_early.set()
            else:
                self.log(f"{signame}: stopping at once")
                main_task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig.name)

        self.simlink = SimLink(self.sim_socket)
        await self.simlink.connect()
        rng = random.Random(a.seed)
        self.log(f"seed {a.seed}; run folder {self.run}")

        if a.race_probe:
            await self.simlink.cmd("set bollard-1 loop 0")
            proc = await asyncio.create_subprocess_exec(*self.edgectl, "bollard", "raise", "bollard-1")
            await proc.wait()
            await asyncio.sleep(self.t.pre_warning_s + self.t.travel_up_s + 1)
            self.race = await race_probe(self.simlink, self.edgectl, self.t, "bollard-1", self.log, a.race_probe)
            self.log(f"race probe: {json.dumps(self.race)}")
            return

        self.scene = Scene(self.simlink, self.edgectl, self.t, rng, self.log, presence_rate=a.presence_rate,
                           bus_interval_s=a.bus_interval)
        self.t_start = time.monotonic()
        self.scene.t0 = self.t_start
        self.scene.start()
        first = await self.sample()
        self.log(f"running for {fmt_dur(a.duration)}: agent pid {self.agent.pid}, rss {first.get('rss_kb')} kB, "
                 f"realtime loop {first.get('realtime')}")
        end = self.t_start + a.duration
        next_sample = self.t_start + a.sample_every
        next_progress = self.t_start + 60
        while time.monotonic() < end and not stop_early.is_set():
            try:
                await asyncio.wait_for(stop_early.wait(), timeout=max(0.0, min(end, next_sample) - time.monotonic()))
            except asyncio.TimeoutError:
                pass
            if not self.agent.running:
                self.failures.append(f"edge-agent died during the run (exit {self.agent.proc.returncode}); see {self.agent.stderr_path}")
                self.log(self.failures[-1])
                break
            if not self.sim.running:
                self.failures.append(f"edge-sim died during the run; see {self.sim.stderr_path}")
                break
            if time.monotonic() >= next_sample:
                s = await self.sample()
                next_sample += a.sample_every
                if time.monotonic() >= next_progress:
                    next_progress += 60
                    inj = sum(self.scene.injected.values())
                    self.log(f"{fmt_dur(s['t'])}: rss {s.get('rss_kb')} kB, cpu {s.get('cpu_s', 0):.0f} s, seq {s.get('last_seq')}, "
                             f"outbox {s.get('outbox_depth')}, late p99/worst {s.get('p99_late_us')}/{s.get('worst_late_us')} µs, "
                             f"violations {s.get('violations')}, injected {inj}, anomalies {sum(self.scene.anomalies.values())}, "
                             f"load {s['load'][0]:.2f}")
        self.t_end = time.monotonic()
        self.log("injection over: letting pulses and buses finish, clearing inputs")
        if self.agent.running:
            await self.scene.finish()
            self.final = await self.sample()
            # Let the uplink drain what is queued before the verdict.
            drained = False
            for _ in range(600):
                st = await self.status()
                up = (st or {}).get("uplink", {})
                if up.get("outbox_depth") == 0 and up.get("inflight") == 0:
                    drained = True
                    self.last_seq_drained = up.get("last_seq")
                    break
                await asyncio.sleep(0.1)
            if not drained:
                self.notes.append("the outbox did not drain within 60 s after the injection stopped")
                self.last_seq_drained = None
            self.drained = drained
        await self.simlink.close()

    # MARK: teardown and verdict

    def finish(self) -> int:
        a = self.args
        if self.cyclic is not None and self.cyclic.running:
            self.cyclic.stop(signal.SIGINT, timeout=10)
        agent_alive = self.agent.running
        code = self.agent.stop(signal.SIGTERM, timeout=20)
        self.agent_exit = code
        self.log(f"edge-agent stopped by SIGTERM -> exit {code}")
        if agent_alive and code != 0:
            self.failures.append(f"edge-agent exited {code} on SIGTERM (contract: 0); see {self.agent.stderr_path}")
        after_stop = {}
        if self.sim.running:
            import subprocess
            for b in BOLLARDS:
                r = subprocess.run([str(self.bin / "edge-sim"), "ctl", "--control", self.sim_socket, "get", b],
                                   capture_output=True, text=True, timeout=10)
                try:
                    after_stop[b] = json.loads(r.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    pass
            r = subprocess.run([str(self.bin / "edge-sim"), "ctl", "--control", self.sim_socket, "stats"],
                               capture_output=True, text=True, timeout=10)
            try:
                self.sim_stats = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self.sim_stats = {}
        else:
            self.sim_stats = {}
        self.after_stop = after_stop
        time.sleep(1.0)   # the centre writes what is in flight
        self.stop_all()
        return self.verdict()

    def outbox_left(self) -> tuple[set[int], int | None]:
        """Seqs still in the outbox after the stop (not lost: sent at the next start), and the
        persisted last seq."""
        db = self.run / "state" / "outbox.db"
        if not db.exists():
            return set(), None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            left = {r[0] for r in con.execute("SELECT seq FROM messages")}
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
        return left, meta.get("last_seq")

    def verdict(self) -> int:
        a, t = self.args, self.t
        if a.race_probe:
            print(json.dumps(getattr(self, "race", {}), indent=2))
            return 0
        left, meta_last = self.outbox_left()
        with open(self.centre_file, errors="replace") as f:
            centre_lines = f.readlines()
        expected_last = max(x for x in (self.last_seq_drained, max(left) if left else None, 0) if x is not None) or None
        seq = analyse_centre(centre_lines + [f"{ROOT}/outbox {{\"seq\":{s}}}\n" for s in sorted(left)], ROOT, expected_last=expected_last)
        # The outbox lines above are not centre messages: take them out of the counts again.
        seq.messages -= len(left)
        seq.with_seq -= len(left)
        seq.by_kind["other"] = seq.by_kind.get("other", 0) - len(left)
        if not seq.by_kind["other"]:
            del seq.by_kind["other"]
        if seq.gaps:
            self.failures.append(f"{seq.missing} seq missing at the centre (neither received nor in the outbox): "
                                 f"{seq.gaps[:10]}{' ...' if len(seq.gaps) > 10 else ''}")
        if seq.unparsable:
            self.failures.append(f"{seq.unparsable} messages at the centre are not JSON objects")
        violations = self.sim_stats.get("safety_violations")
        if violations is None and self.samples:
            violations = self.samples[-1].get("violations")
        if violations:
            self.failures.append(f"{violations} safety violations counted by edge-sim: {self.sim_stats.get('violations', [])[:5]}")
        for b, st in self.after_stop.items():
            if st.get("motor_up"):
                self.failures.append(f"{b}: motor-up still energised after the agent stopped")
        # Memory.
        warm = [s for s in self.samples if s["t"] >= a.warmup and "rss_kb" in s]
        rss_slope = slope_per_hour([(s["t"], s["rss_kb"]) for s in warm])
        pss_slope = slope_per_hour([(s["t"], s["pss_kb"]) for s in warm])
        window = (warm[-1]["t"] - warm[0]["t"]) if len(warm) >= 2 else 0
        slope_judged = window >= a.min_slope_window
        if slope_judged and rss_slope is not None and rss_slope > a.rss_slope_max:
            self.failures.append(f"RSS grows {rss_slope:.0f} kB/h after warm-up (bound {a.rss_slope_max:.0f} kB/h)")
        # Loop. cyclictest ran beside the agent at the same priority and period: a stall it saw
        # too is the machine's (a shared VM), not the agent's.
        cyc = None
        cyc_path = self.logs / "cyclictest.out"
        if cyc_path.exists():
            cyc = parse_cyclictest(cyc_path.read_text(errors="replace"))
        machine_worst = cyc.max_us if cyc and cyc.samples and cyc.max_us is not None else None
        worst_bound = a.worst_late_max_us
        if machine_worst is not None:
            worst_bound = max(worst_bound, 1.5 * machine_worst)
        self.worst_bound = worst_bound
        last = next((s for s in reversed(self.samples) if s.get("worst_late_us") is not None), {})
        worst, p99 = last.get("worst_late_us"), last.get("p99_late_us")
        if worst is None:
            self.failures.append("no control-loop figures (edgectl status failed)")
        else:
            if worst > worst_bound:
                self.failures.append(f"loop worst lateness {worst:.0f} µs > bound {worst_bound:.0f} µs "
                                     f"(max of {a.worst_late_max_us:.0f} µs and 1.5x cyclictest's worst {machine_worst} µs)")
            elif worst > a.worst_late_max_us:
                self.notes.append(f"loop worst lateness {worst:.0f} µs is over the absolute {a.worst_late_max_us:.0f} µs, but "
                                  f"cyclictest beside it saw {machine_worst} µs: a stall of the machine, within 1.5x of it")
            if p99 > a.p99_late_max_us:
                self.failures.append(f"loop p99 lateness {p99:.0f} µs > bound {a.p99_late_max_us} µs")
        # Priority holds as the junction controller saw them.
        holds = []
        for ap, samples in self.scene.junction_samples.items():
            holds += [d for _, d in on_intervals(samples)]
        max_hold_seen = max(holds) if holds else None
        if max_hold_seen is not None and max_hold_seen > t.max_hold_s + 1.0:
            self.failures.append(f"a priority request stayed on {max_hold_seen:.1f} s at the junction (max_hold {t.max_hold_s:.0f} s)")
        if self.scene.anomalies.get("driver_error"):
            self.failures.append(f"the driver itself failed {self.scene.anomalies['driver_error']} times (see anomalies)")
        self.figures = dict(seq=seq, rss_slope=rss_slope, pss_slope=pss_slope, slope_judged=slope_judged, window=window,
                            worst=worst, p99=p99, holds=holds, max_hold_seen=max_hold_seen, violations=violations,
                            left=left, meta_last=meta_last, cyc=cyc, last=last, warm=warm)
        report = self.render()
        print(report)
        if a.report:
            Path(a.report).write_text(report)
            Path(a.report + ".json").write_text(json.dumps(self.machine_summary(), indent=2, default=str))
            self.log(f"report written to {a.report} (+ .json)")
        (self.run / "report.md").write_text(report)
        if self.failures:
            return 1
        return 130 if self.interrupted else 0

    def machine_summary(self) -> dict:
        f = self.figures
        seq = f["seq"]
        return {
            "duration_s": round(self.t_end - self.t_start, 1), "interrupted": self.interrupted, "failures": self.failures,
            "injected": dict(self.scene.injected), "refusals": dict(self.scene.refusals), "anomalies": dict(self.scene.anomalies),
            "messages": seq.messages, "distinct_seq": seq.distinct, "duplicates": seq.duplicates, "gaps": seq.gaps,
            "missing": seq.missing, "in_outbox_at_stop": len(f["left"]), "last_seq": seq.expected_last,
            "violations": f["violations"], "rss_slope_kb_h": f["rss_slope"], "pss_slope_kb_h": f["pss_slope"],
            "worst_late_us": f["worst"], "p99_late_us": f["p99"], "max_hold_s": f["max_hold_seen"],
            "priority_requests": seq.events.get("priority.request", 0), "samples": len(self.samples),
            "agent_exit": self.agent_exit,
        }

    def render(self) -> str:
        a, t, f = self.args, self.t, self.figures
        seq = f["seq"]
        sc = self.scene
        warm = f["warm"]
        samples = [s for s in self.samples if "rss_kb" in s]
        dur = self.t_end - self.t_start
        loads = [s["load"][0] for s in self.samples]
        rss_start = warm[0] if warm else (samples[0] if samples else {})
        rss_end = samples[-1] if samples else {}
        rss_max = max(samples, key=lambda s: s["rss_kb"]) if samples else {}
        first_cpu = samples[0].get("cpu_s", 0) if samples else 0
        cpu = (rss_end.get("cpu_s", 0) - first_cpu)
        cyc = f["cyc"]
        L = []
        verdict = "PASS" if not self.failures else "FAIL"
        if self.interrupted and not self.failures:
            verdict = "INTERRUPTED (no failure so far)"
        L.append(f"# edge-agent soak: {verdict}")
        L.append("")
        L.append(f"- started {self.started_wall:%Y-%m-%d %H:%M %Z}, ran {fmt_dur(dur)} (asked {fmt_dur(a.duration)}), seed {a.seed}, "
                 f"run folder `{self.run}`")
        L.append(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}; load average 1 min "
                 f"min/mean/max {min(loads, default=0):.2f} / {sum(loads) / max(1, len(loads)):.2f} / {max(loads, default=0):.2f} "
                 f"(shared with other builds and benchmarks)")
        L.append(f"- field: {sum(len(g['lamps']) for g in __import__('rig').GROUPS.values())} luminaires in 4 groups, "
                 f"6 Modbus + 2 GPIO presence sensors, {len(BOLLARDS)} bollards, {len(APPROACHES)} priority approaches "
                 f"({len(GPIO_LINES)} GPIO lines); buses `street` (poll {t.street_poll_ms} ms) and `safety` (poll {t.safety_poll_ms} ms) "
                 f"on one edge-sim; control loop {t.period_ms} ms, SCHED_FIFO {a.rt_priority} "
                 f"(realtime={f['last'].get('realtime')}); telemetry every {t.telemetry_s} s")
        L.append(f"- timings: bollard travel up/down {t.travel_up_s}/{t.travel_down_s} s, pre-warning {t.pre_warning_s} s, "
                 f"auto-raise after {t.auto_raise_after_s} s, max {t.max_reversals} reversals; priority max_hold {t.max_hold_s:.0f} s, "
                 f"min_interval {t.min_interval_s} s")
        L.append("")
        if self.failures:
            L.append("## Failures")
            L += [f"- {x}" for x in self.failures]
            L.append("")
        L.append("## Figures")
        L.append("")
        L.append("| figure | value | bound |")
        L.append("|---|---|---|")
        L.append(f"| events injected | {sum(sc.injected.values())} ({sum(sc.injected.values()) / max(dur, 1):.1f}/s) | |")
        L.append(f"| messages received at the centre | {seq.messages} ({seq.messages / max(dur, 1):.1f}/s); seq 1..{seq.expected_last} | |")
        L.append(f"| seq missing (gaps) | {seq.missing} | 0 |")
        L.append(f"| seq still in the outbox at stop (not lost) | {len(f['left'])} | |")
        L.append(f"| duplicates (same seq twice) | {seq.duplicates} | counted only |")
        L.append(f"| messages without seq | {seq.without_seq} (the goodbye/will `status` offline) | |")
        L.append(f"| safety violations (edge-sim) | {f['violations']} | 0 |")
        L.append(f"| agent RSS after warm-up ({a.warmup:.0f} s) / end / max | {rss_start.get('rss_kb')} / {rss_end.get('rss_kb')} / "
                 f"{rss_max.get('rss_kb')} kB (max at {fmt_dur(rss_max.get('t', 0))}) | |")
        slope_txt = "n/a" if f["rss_slope"] is None else f"{f['rss_slope']:+.0f} kB/h"
        judged = "" if f["slope_judged"] else f" (not judged: window {fmt_dur(f['window'])} < {fmt_dur(a.min_slope_window)})"
        L.append(f"| agent RSS slope after warm-up (least squares, {len(warm)} samples) | {slope_txt}{judged} | <= {a.rss_slope_max:.0f} kB/h |")
        pss_txt = "n/a" if f["pss_slope"] is None else f"{f['pss_slope']:+.0f} kB/h"
        L.append(f"| agent PSS start / end, slope | {rss_start.get('pss_kb')} / {rss_end.get('pss_kb')} kB, {pss_txt} | |")
        L.append(f"| agent threads / fds start -> end | {rss_start.get('threads')} / {rss_start.get('fds')} -> "
                 f"{rss_end.get('threads')} / {rss_end.get('fds')} | |")
        L.append(f"| agent CPU | {cpu:.0f} s in {fmt_dur(dur)} ({100 * cpu / max(dur, 1):.1f} % of one core) | |")
        if samples and "steal_s" in samples[0]:
            steal = rss_end.get("steal_s", 0) - samples[0]["steal_s"]
            L.append(f"| CPU time stolen by the hypervisor (all CPUs) | {steal:.1f} s | info |")
        L.append(f"| state folder (outbox, audit) end | {rss_end.get('state_kb')} kB | |")
        L.append(f"| edge-sim RSS start / end | {samples[0].get('sim_rss_kb') if samples else None} / {rss_end.get('sim_rss_kb')} kB | |")
        ticks = f["last"].get("ticks")
        L.append(f"| control loop ticks | {ticks:.0f} ({ticks / max(f['last'].get('t', 1), 1):.1f}/s) | |" if ticks else "| control loop ticks | n/a | |")
        L.append(f"| loop lateness p99 (power-of-two bucket) / worst | {f['p99']} / {f['worst']} µs | <= {a.p99_late_max_us:.0f} / <= {self.worst_bound:.0f} µs |")
        if cyc and cyc.samples:
            ratio = (f["p99"] / cyc.percentile(99)) if f["p99"] and cyc.percentile(99) else None
            L.append(f"| cyclictest beside it (same priority, 100 Hz) p50/p99/max | {cyc.percentile(50):.0f} / {cyc.percentile(99):.0f} / "
                     f"{cyc.max_us} µs ({cyc.samples} loops); agent p99 / cyclictest p99 = "
                     f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | info (benchmark: <= 1.5x) |")
        L.append(f"| priority requests (events) / granted / timeouts | {seq.events.get('priority.request', 0)} / "
                 f"{seq.events.get('priority.granted', 0)} / {seq.events.get('priority.timeout', 0)} | |")
        mh = f["max_hold_seen"]
        L.append(f"| longest request on the junction coil (sim, 10 Hz) | {'n/a' if mh is None else f'{mh:.1f} s'} over {len(f['holds'])} requests | "
                 f"<= max_hold + 1 s = {t.max_hold_s + 1:.0f} s |")
        if seq.priority_timeout_max_held_ms is not None:
            L.append(f"| longest hold reported by priority.timeout | {seq.priority_timeout_max_held_ms / 1000:.2f} s | |")
        if seq.priority_request_max_latency_ms is not None:
            L.append(f"| worst detect-to-request latency (not delayed) | {seq.priority_request_max_latency_ms:.1f} ms | |")
        if seq.priority_granted_max_latency_ms is not None:
            L.append(f"| worst request-to-ack latency (sim ack delay {t.ack_delay_ms} ms) | {seq.priority_granted_max_latency_ms:.1f} ms | |")
        L.append(f"| reversals seen at the sim (raising -> lowering) | {sc.observed_reversals} | |")
        L.append(f"| longest motor-up with loop/photocell set (sim, 10 Hz) | {sc.max_motor_up_with_obstruction_s * 1000:.0f} ms | "
                 f"sim counts a violation after 1000 ms |")
        L.append(f"| agent exit on SIGTERM | {self.agent_exit} | 0 |")
        L.append("")
        L.append("## Injected, by kind")
        L.append("")
        for k, v in sorted(sc.injected.items()):
            L.append(f"- {k}: {v}")
        if sc.refusals:
            L.append("")
            L.append("Refused edgectl commands (expected when an interlock holds): " +
                     ", ".join(f"{k} x{v}" for k, v in sorted(sc.refusals.items())))
        L.append("")
        L.append("## At the centre")
        L.append("")
        L.append("- by topic: " + ", ".join(f"{k} {v}" for k, v in sorted(seq.by_kind.items())))
        L.append("- events: " + ", ".join(f"{k} {v}" for k, v in sorted(seq.events.items())))
        if seq.bollard_causes:
            L.append("- bollard.state (state/cause): " + ", ".join(f"{k} {v}" for k, v in sorted(seq.bollard_causes.items())))
        if seq.checkout_reasons:
            L.append("- priority.checkout reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(seq.checkout_reasons.items())))
        L.append("- alarms raised: " + (", ".join(f"{k} {v}" for k, v in sorted(seq.alarms_raised.items())) or "none"))
        if sc.anomalies:
            L.append("")
            L.append("## Driver anomalies (scene expectations not met; not safety violations)")
            L.append("")
            L.append(", ".join(f"{k} {v}" for k, v in sorted(sc.anomalies.items())))
            L += [f"- {d}" for d in sc.anomaly_details[:15]]
        if self.notes:
            L.append("")
            L += [f"- note: {n}" for n in self.notes]
        L.append("")
        L.append("## Samples (taken every %d s; about 12 shown, evenly spaced, and the last)" % a.sample_every)
        L.append("")
        L.append("| t | load | RSS kB | PSS kB | CPU s | thr | fds | seq | outbox | p99/worst µs | viol |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        picks = []
        if samples:
            step = max(1, len(samples) // 12)
            picks = samples[::step]
            if picks[-1] is not samples[-1]:
                picks.append(samples[-1])
        for s in picks:
            L.append(f"| {fmt_dur(s['t'])} | {s['load'][0]:.2f} | {s.get('rss_kb')} | {s.get('pss_kb')} | {s.get('cpu_s', 0):.0f} | "
                     f"{s.get('threads')} | {s.get('fds')} | {s.get('last_seq')} | {s.get('outbox_depth')} | "
                     f"{s.get('p99_late_us')}/{s.get('worst_late_us')} | {s.get('violations')} |")
        return "\n".join(L) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="edge-agent soak on the simulated board")
    p.add_argument("--bin", required=True, help="folder with the release edge-agent, edgectl, edge-sim")
    p.add_argument("--duration", type=parse_duration, default=parse_duration("1h"))
    p.add_argument("--report", help="write the summary (Markdown) here, and FILE.json")
    p.add_argument("--run-dir", help="run folder (default: a new /tmp/edge-soak-*)")
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--warmup", type=parse_duration, default=60.0)
    p.add_argument("--sample-every", type=parse_duration, default=10.0)
    p.add_argument("--rss-slope-max", type=float, default=1024.0, help="kB per hour (default 1024)")
    p.add_argument("--min-slope-window", type=parse_duration, default=600.0)
    p.add_argument("--worst-late-max-us", type=float, default=20000.0)
    p.add_argument("--p99-late-max-us", type=float, default=2000.0)
    p.add_argument("--rt-priority", type=int, default=50, help="agent loop SCHED_FIFO priority (0 = none)")
    p.add_argument("--presence-rate", type=float, default=4.0, help="presence events per second")
    p.add_argument("--bus-interval", type=float, default=5.0, help="mean seconds between buses per approach")
    p.add_argument("--no-cyclictest", action="store_true")
    p.add_argument("--race-probe", type=int, default=0, metavar="N",
                   help="instead of the soak: N vehicles entering the loop as the pre-warning ends")
    args = p.parse_args()
    soak = Soak(args)
    rc = 1
    try:
        soak.start_field()
        try:
            asyncio.run(soak.main())
        except asyncio.CancelledError:
            soak.log("stopped at once; no report")
            return 130
        rc = soak.finish()
    except KeyboardInterrupt:
        soak.log("interrupted; no report")
        rc = 130
    finally:
        soak.stop_all()
    soak.log(f"done -> exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

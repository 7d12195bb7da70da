#!/usr/bin/env python3
"""A fleet of edge-agents against one mosquitto on this machine (issue 17).

Starts N agents (default 100), each with a small simulated field (one luminaire and one
presence sensor on Modbus TCP; one edge-sim serves up to 40 agents, 80 units), one mosquitto
on a free loopback port, and a centre (`mosquitto_sub`, persistent session, QoS 1) that
timestamps every message. Then, for each reconnect-jitter setting asked for:

  1. steady state: every gateway online, then a window (--window s) measuring each agent's
     RSS and CPU (from /proc), mosquitto's and the simulators', and the centre's message rate;
  2. broker restart: mosquitto stopped (SIGTERM: it saves its persistence file, so the
     centre's session survives) for --outage seconds while the agents keep storing, then
     started again; measured from the restart: the time until every gateway's `online`
     status reached the centre, and until every gateway's backlog reached it (the centre has
     each gateway's last seq as read from `edgectl status` just before the restart).

Prints the figures as a Markdown table and as JSON (--json FILE). Loopback only; every
process it started is stopped at the end (also on Ctrl-C). Not part of the test suite.

  python3 Benchmarks/fleet.py --agents 100 --bin-dir .build/release
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_cpu_rss(pid):
    """(cpu seconds so far, rss bytes) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        rss = int(fields[21]) * PAGE
        return cpu, rss
    except (OSError, IndexError, ValueError):
        return None


class Fleet:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="edge-fleet-")
        self.bin = os.path.abspath(args.bin_dir)
        self.procs = []          # everything started, stopped at the end
        self.agents = []         # (gateway id, Popen, control socket)
        self.sims = []
        self.broker = None
        self.centre = None
        self.broker_port = free_port()
        self.centre_file = os.path.join(self.dir, "centre.txt")

    def spawn(self, argv, log, **kw):
        f = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    # -- broker and centre

    def start_broker(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        user = os.environ.get("USER") or "root"
        with open(conf, "w") as f:
            f.write(f"""listener {self.broker_port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {self.dir}/
autosave_interval 3600
max_queued_messages 1000000
max_inflight_messages 0
log_dest none
user {user}
""")
        self.broker = self.spawn(["mosquitto", "-c", conf], "mosquitto.log")
        if not wait_port(self.broker_port):
            raise SystemExit("mosquitto did not start")

    def stop_broker(self):
        self.broker.send_signal(signal.SIGTERM)
        self.broker.wait(timeout=20)

    def start_centre(self):
        # %U: receive time (unix, ns); persistent session so a broker restart loses nothing.
        self.centre = self.spawn(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker_port), "-q", "1", "-c",
                                  "-i", "fleet-centre", "-t", "fleet/#", "-F", "%U %t %p"], "centre.txt")

    def centre_lines(self):
        out = []
        try:
            with open(self.centre_file, encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.rstrip("\n").split(" ", 2)
                    if len(parts) == 3:
                        try:
                            out.append((float(parts[0]), parts[1], parts[2]))
                        except ValueError:
                            pass
        except OSError:
            pass
        return out

    # -- field and agents

    def start_sims(self, n_agents):
        per = 40
        for s in range((n_agents + per - 1) // per):
            port = free_port()
            sock = os.path.join(self.dir, f"sim{s}.sock")
            units = []
            for j in range(min(per, n_agents - s * per)):
                units.append(f"  {2 * j + 1}: {{type: ref-luminaire, name: lamp-{s}-{j}, rated_w: 60}}")
                units.append(f"  {2 * j + 2}: {{type: ref-presence, name: pir-{s}-{j}}}")
            cfg = os.path.join(self.dir, f"sim{s}.yaml")
            with open(cfg, "w") as f:
                f.write(f"tcp: 127.0.0.1:{port}\ncontrol: {sock}\ntick: 100ms\nunits:\n" + "\n".join(units) + "\n")
            p = self.spawn([os.path.join(self.bin, "edge-sim"), "--config", cfg], f"sim{s}.log")
            if not wait_port(port):
                raise SystemExit(f"edge-sim {s} did not start")
            with open(os.path.join(self.dir, f"board{s}.yaml"), "w") as f:
                f.write(f"name: fleet\ndescription: fleet benchmark board\ngpio:\n  backend: simulated\n  simulator_socket: {sock}\n  lines: {{}}\n")
            self.sims.append((p, port, sock))

    def agent_config(self, i, jitter):
        s, j = divmod(i, 40)
        gw = f"cab-{i:04d}"
        state = os.path.join(self.dir, gw)
        os.makedirs(state, exist_ok=True)
        return gw, state, f"""gateway:
  id: {gw}
  location: {{lat: 47.3220, lon: 5.0415}}
  timezone: Europe/Paris
  state_dir: {state}/state
  control_socket: {state}/control.sock
uplink:
  broker: mqtt://127.0.0.1:{self.broker_port}
  prefix: fleet
  telemetry_interval: {self.args.telemetry}
  keep_alive: 10s
  reconnect: {{initial: 500ms, max: 10s, jitter: {jitter}}}
  outbox: {{max_messages: 100000, max_age: 1d}}
board: {self.dir}/board{s}.yaml
profiles_dir: {ROOT}/Profiles
control: {{period: 10ms, realtime_priority: 0}}
buses:
  field: {{tcp: "127.0.0.1:{self.sims[s][1]}", timeout: 200ms, poll: 1s}}
devices:
  lamp-01: {{profile: ref-luminaire, bus: field, unit: {2 * j + 1}}}
  pir-01: {{profile: ref-presence, bus: field, unit: {2 * j + 2}}}
lighting:
  street:
    lamps: [lamp-01]
    presence: [pir-01]
    base: 30
    boost: 100
    hold: 5s
    fade_up: 500ms
    fade_down: 2s
"""

    def start_agents(self, n, jitter):
        self.agents = []
        for i in range(n):
            gw, state, cfg = self.agent_config(i, jitter)
            path = os.path.join(state, "agent.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            p = self.spawn([os.path.join(self.bin, "edge-agent"), "--config", path], f"{gw}.log")
            self.agents.append((gw, p, os.path.join(state, "control.sock")))
            time.sleep(self.args.start_gap)

    def stop_agents(self):
        for _, p, _ in self.agents:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p, _ in self.agents:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def status(self, sock):
        try:
            r = subprocess.run([os.path.join(self.bin, "edgectl"), "--socket", sock, "status", "--json"], capture_output=True, timeout=20)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError):
            return None

    def statuses(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            return list(ex.map(lambda a: self.status(a[2]), self.agents))

    # -- measurements

    def online_after(self, t0):
        """gateway -> first receive time of an `online` status after t0."""
        seen = {}
        for t, topic, payload in self.centre_lines():
            if t >= t0 and topic.endswith("/status") and '"state":"online"' in payload:
                gw = topic.split("/")[1]
                seen.setdefault(gw, t)
        return seen

    def max_seq_times(self, targets, t0):
        """gateway -> receive time at which the centre had received seq >= targets[gw]."""
        done = {}
        for t, topic, payload in self.centre_lines():
            if t < t0:
                continue
            gw = topic.split("/")[1]
            if gw in done or gw not in targets:
                continue
            try:
                seq = json.loads(payload).get("seq")
            except ValueError:
                continue
            if isinstance(seq, int) and seq >= targets[gw]:
                done[gw] = t
        return done

    def steady(self, window):
        pids = [p.pid for _, p, _ in self.agents]
        before = {pid: proc_cpu_rss(pid) for pid in pids}
        others = {"mosquitto": self.broker.pid, **{f"sim{i}": s[0].pid for i, s in enumerate(self.sims)}}
        before_o = {k: proc_cpu_rss(v) for k, v in others.items()}
        t0 = time.time()
        n0 = len(self.centre_lines())
        time.sleep(window)
        t1 = time.time()
        n1 = len(self.centre_lines())
        after = {pid: proc_cpu_rss(pid) for pid in pids}
        after_o = {k: proc_cpu_rss(v) for k, v in others.items()}
        cpu = [100 * (after[p][0] - before[p][0]) / (t1 - t0) for p in pids if before[p] and after[p]]
        rss = [after[p][1] / 2**20 for p in pids if after[p]]
        sims_cpu = sum(100 * (after_o[k][0] - before_o[k][0]) / (t1 - t0) for k in others if k.startswith("sim") and after_o[k] and before_o[k])
        mosq = after_o["mosquitto"]
        return {
            "agents": len(pids),
            "agent_cpu_pct_mean": statistics.mean(cpu), "agent_cpu_pct_p50": statistics.median(cpu), "agent_cpu_pct_max": max(cpu),
            "agent_rss_mib_mean": statistics.mean(rss), "agent_rss_mib_p50": statistics.median(rss), "agent_rss_mib_max": max(rss),
            "centre_msgs_per_s": (n1 - n0) / (t1 - t0),
            "mosquitto_cpu_pct": 100 * (mosq[0] - before_o["mosquitto"][0]) / (t1 - t0) if mosq and before_o["mosquitto"] else None,
            "mosquitto_rss_mib": mosq[1] / 2**20 if mosq else None,
            "sims_cpu_pct": sims_cpu,
            "window_s": t1 - t0,
            "load_avg": open("/proc/loadavg").read().split()[:3],
        }

    def restart_storm(self, outage):
        # Outage: broker stopped, agents keep storing.
        self.stop_broker()
        t_down = time.time()
        time.sleep(outage)
        # What each gateway has stored so far (its last seq) is the backlog to drain.
        targets = {}
        for (gw, _, _), st in zip(self.agents, self.statuses()):
            if st and isinstance(st.get("uplink"), dict) and isinstance(st["uplink"].get("last_seq"), (int, float)):
                targets[gw] = int(st["uplink"]["last_seq"])
        backlog = sum((st or {}).get("uplink", {}).get("outbox_depth", 0) or 0 for st in self.statuses())
        self.broker = self.spawn(["mosquitto", "-c", os.path.join(self.dir, "mosquitto.conf")], "mosquitto.log")
        t_up = time.time()
        wait_port(self.broker_port)
        n = len(self.agents)
        deadline = t_up + self.args.recovery_timeout
        online = drained = {}
        while time.time() < deadline:
            online = self.online_after(t_up)
            drained = self.max_seq_times(targets, t_up)
            if len(online) >= n and len(drained) >= len(targets):
                break
            time.sleep(0.5)
        on_times = sorted(t - t_up for t in online.values())
        dr_times = sorted(t - t_up for t in drained.values())

        def pct(xs, q):
            return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None
        return {
            "outage_s": t_up - t_down, "backlog_messages": backlog,
            "online": len(online), "online_first_s": on_times[0] if on_times else None, "online_p50_s": pct(on_times, 0.5), "online_p90_s": pct(on_times, 0.9), "online_all_s": on_times[-1] if len(online) >= n else None,
            "drained": len(drained), "drained_p50_s": pct(dr_times, 0.5), "drained_all_s": dr_times[-1] if len(drained) >= len(targets) and targets else None,
        }

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, ".build/release"))
    ap.add_argument("--telemetry", default="10s", help="uplink.telemetry_interval of every agent")
    ap.add_argument("--window", type=float, default=60, help="steady-state measuring window, s")
    ap.add_argument("--outage", type=float, default=20, help="broker down, s")
    ap.add_argument("--jitter", default="0,1", help="reconnect jitter settings to run, comma-separated")
    ap.add_argument("--start-gap", type=float, default=0.05, help="s between agent starts")
    ap.add_argument("--recovery-timeout", type=float, default=180)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = ap.parse_args()
    for exe in ("edge-agent", "edge-sim", "edgectl"):
        if not os.access(os.path.join(args.bin_dir, exe), os.X_OK):
            raise SystemExit(f"{exe} not found in {args.bin_dir} (swift build -c release)")
    fleet = Fleet(args)
    results = {"agents": args.agents, "telemetry_interval": args.telemetry, "runs": []}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        fleet.start_broker()
        fleet.start_centre()
        fleet.start_sims(args.agents)
        for jitter in args.jitter.split(","):
            t0 = time.time()
            fleet.start_agents(args.agents, jitter)
            deadline = time.time() + args.recovery_timeout
            while len(fleet.online_after(t0)) < args.agents and time.time() < deadline:
                time.sleep(0.5)
            up = len(fleet.online_after(t0))
            print(f"jitter {jitter}: {up}/{args.agents} gateways online after {time.time() - t0:.1f} s", flush=True)
            time.sleep(5)   # let the start-up bursts settle
            steady = fleet.steady(args.window)
            print(f"  steady: {json.dumps(steady)}", flush=True)
            storm = fleet.restart_storm(args.outage)
            print(f"  restart: {json.dumps(storm)}", flush=True)
            results["runs"].append({"jitter": float(jitter), "steady": steady, "restart": storm})
            fleet.stop_agents()
    finally:
        fleet.cleanup()
    print()
    print("| reconnect jitter | agents | agent RSS MiB mean / max | agent CPU % of a core mean / max | centre msgs/s | mosquitto CPU % / RSS MiB | backlog at restart | online after restart, s (first / p50 / p90 / all) | all backlogs drained, s (p50 / all) |")
    print("|---|---|---|---|---|---|---|---|---|")
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
    for r in results["runs"]:
        s, x = r["steady"], r["restart"]
        print(f"| {r['jitter']:g} | {s['agents']} | {f(s['agent_rss_mib_mean'])} / {f(s['agent_rss_mib_max'])} | {f(s['agent_cpu_pct_mean'], 2)} / {f(s['agent_cpu_pct_max'], 2)} "
              f"| {f(s['centre_msgs_per_s'])} | {f(s['mosquitto_cpu_pct'], 2)} / {f(s['mosquitto_rss_mib'])} | {x['backlog_messages']} "
              f"| {f(x['online_first_s'], 2)} / {f(x['online_p50_s'], 2)} / {f(x['online_p90_s'], 2)} / {f(x['online_all_s'], 2)} ({x['online']}) | {f(x['drained_p50_s'], 2)} / {f(x['drained_all_s'], 2)} ({x['drained']}) |")
    if args.json:
        with open(args.json, "w") as fjs:
            json.dump(results, fjs, indent=2)


if __name__ == "__main__":
    main()

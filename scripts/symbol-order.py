#!/usr/bin/env python3
"""Writes Sources/edge-agent/symbol-order.txt, the order release builds lay out the agent's code in
(lld --symbol-ordering-file, Package.swift `releaseLink`): the functions the agent runs, idle first.

It runs the static release agent (`swift build -c release --static-swift-stdlib`; give its bin
folder) under callgrind on the reference cabinet of Benchmarks/bench.py: start-up, 20 s idle, 20 s
of the busy scene, stop, with a callgrind dump between phases, and lists the agent's functions of
each phase: idle, then busy, stop, start-up. A few minutes. Rerun it when the agent's code or the
toolchain changed much: a function missing from the list is only laid out after the listed ones.

    scripts/symbol-order.py --bin .build-bench-static/release [--out Sources/edge-agent/symbol-order.txt]
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Benchmarks"))
import bench  # noqa: E402

def functions(path: Path, binary: str) -> list[str]:
    """The functions of `binary` in one callgrind dump, in their order of appearance."""
    names: dict[str, str] = {}
    obs: dict[str, str] = {}
    out: list[str] = []
    seen = set()
    ob = None
    cur = None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("ob="):
            m = re.match(r"ob=(?:\((\d+)\))?\s*(.*)", line)
            if m.group(2): obs[m.group(1)] = m.group(2)
            ob = obs.get(m.group(1), m.group(2)) if m.group(1) else m.group(2)
        elif line.startswith("fn="):
            m = re.match(r"fn=(?:\((\d+)\))?\s*(.*)", line)
            if m.group(2) and m.group(1): names[m.group(1)] = m.group(2)
            cur = names.get(m.group(1), m.group(2)) if m.group(1) else m.group(2)
            if cur: cur = re.sub(r"'\d+$", "", cur)
            if ob and os.path.basename(ob) == binary and cur and not cur.startswith("0x") and cur not in seen:
                seen.add(cur); out.append(cur)
        elif line.startswith(("cfn=", "cob=")):
            m = re.match(r"c(fn|ob)=(?:\((\d+)\))?\s*(.*)", line)
            if m.group(3) and m.group(2):
                (names if m.group(1) == "fn" else obs)[m.group(2)] = m.group(3)
    return out

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "Sources/edge-agent/symbol-order.txt")
    ap.add_argument("--idle", type=float, default=20)
    ap.add_argument("--busy", type=float, default=20)
    args = ap.parse_args()
    prod = bench.Products(args.bin, Path("/nonexistent"), "order")
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"symbol-order-{os.getpid()}"
    rig = bench.Rig(base, "rig")
    try:
        nodebug = rig.dir / "edge-agent"
        subprocess.run(["objcopy", "--strip-debug", str(prod.agent), str(nodebug)], check=True)
        units, lines, devices, sections, board_lines = bench.reference_cabinet()
        broker = bench.mosquitto(rig)
        sim = bench.Sim(rig, prod, units, lines)
        cfg = bench.agent_config(rig, "agent", broker_port=broker,
                                 buses={"field": f'{{tcp: "127.0.0.1:{sim.port}", timeout: 200ms}}'},
                                 devices=devices, sections=sections, lines=board_lines, sim_socket=sim.control, rt=50)
        out = rig.dir / "cg.out"
        agent = bench.agent_under_callgrind(rig, prod, nodebug, cfg, out, ("--dump-line=no", "--compress-pos=no", "--demangle=no"),
                                            timeout=300)
        proc = agent.proc
        time.sleep(3)
        def dump():
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, timeout=120)
        dump()  # 1: start-up
        time.sleep(args.idle)
        dump()  # 2: idle
        scene = bench.Scene(sim, agent, bollards=4, gpio_presence=False, checkout=False)
        scene.start(); time.sleep(args.busy); scene.stop()
        agent.status()
        dump()  # 3: busy
        proc.stop(timeout=300)
        dumps = sorted(rig.dir.glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
        start, idle, busy = (functions(p, nodebug.name) for p in dumps[:3])
        stop = functions(out, nodebug.name)
        order, seen = [], set()
        for group in (idle, busy, stop, start):
            for f in group:
                if f not in seen:
                    seen.add(f); order.append(f)
        args.out.write_text("\n".join(order) + "\n")
        print(f"symbol-order: {len(order)} functions (idle {len(idle)}, busy {len(busy)}, stop {len(stop)}, start {len(start)})", file=sys.stderr)
    finally:
        rig.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""An independent Sparkplug B 3.0 decoder and checker for edge-agent's Sparkplug dialect.

Decodes with pysparkplug's compiled Tahu schema (sparkplug_b_pb2, protobuf) -- no code of
the agent -- and checks a capture against the edge-node assertions of the Sparkplug 3.0
specification listed in docs/SPARKPLUG.md (ids S1...S14 below).

  sparkplug-check.py check CAPTURE [--group G] [--node N]
      CAPTURE: lines as `mosquitto_sub -F '%t %q %r %x'` prints them (topic, QoS, retained
      flag, payload in hex), subscribed with QoS 1 to spBv1.0/#. Prints one line per problem
      and a JSON summary on the last line; exits 1 on any problem.
  sparkplug-check.py ncmd-rebirth OUT          an NCMD payload: Node Control/Rebirth = true
  sparkplug-check.py dcmd OUT --bytes-file F   a DCMD payload: metric Command (Bytes) = F's bytes
  sparkplug-check.py dcmd OUT --int NAME=V     a DCMD payload writing an Int32 metric NAME
"""
import argparse
import json
import sys
import time

from pysparkplug._protobuf import sparkplug_b_pb2 as pb

UINT64, BOOLEAN, STRING, BYTES, INT32 = 8, 11, 12, 17, 3
TYPES = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD", "STATE")


def value_of(m):
    kind = m.WhichOneof("value")
    return None if kind is None else getattr(m, kind)


def check(path, group=None, node=None):
    problems = []
    summary = {"messages": 0, "by_type": {}, "sessions": 0, "bdseqs": [], "will_bdseqs": [], "historical_metrics": 0,
               "live_metrics": 0, "devices_born": [], "rebirths": 0, "replies": [], "units": {}, "events": 0}
    session = None          # per NBIRTH: {"seq", "aliases": {alias: (device, name, type)}, "born": set()}
    last_nbirth_bdseq = None

    def problem(lineno, text):
        problems.append(f"{path}:{lineno}: {text}")

    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    for lineno, line in enumerate(lines, 1):
        parts = line.split(" ")
        if len(parts) < 3:
            problem(lineno, f"unreadable capture line: {line[:80]}")
            continue
        topic, qos, retained = parts[0], int(parts[1]), parts[2] == "1"
        hexpayload = parts[3] if len(parts) > 3 else ""
        levels = topic.split("/")
        summary["messages"] += 1
        # S1: topic namespace spBv1.0/<group>/<type>/<edge node>[/<device>]
        if levels[0] != "spBv1.0" or len(levels) < 3:
            problem(lineno, f"S1 topic not in the spBv1.0 namespace: {topic}")
            continue
        if levels[1] == "STATE":
            continue
        mtype = levels[2]
        summary["by_type"][mtype] = summary["by_type"].get(mtype, 0) + 1
        if mtype not in TYPES or len(levels) not in (4, 5) or (len(levels) == 5) != mtype.startswith("D"):
            problem(lineno, f"S1 bad topic {topic}")
            continue
        if group and levels[1] != group or node and levels[3] != node:
            problem(lineno, f"S1 unexpected group or node in {topic}")
        if mtype in ("NCMD", "DCMD"):
            continue  # the host's messages (the test's own)
        device = levels[4] if len(levels) == 5 else ""
        try:
            p = pb.Payload()
            p.ParseFromString(bytes.fromhex(hexpayload))
        except Exception as e:  # noqa: BLE001 - any decode failure is a finding
            problem(lineno, f"S2 payload does not decode as a Sparkplug B Payload: {e}")
            continue
        # S3: retain false on everything the edge node publishes
        if retained:
            problem(lineno, f"S3 {mtype} is retained")
        # S4: payload timestamp present (UTC ms)
        if mtype != "NDEATH" and not p.HasField("timestamp"):
            problem(lineno, f"S4 {mtype} without a payload timestamp")
        if mtype == "NDEATH":
            # S5: NDEATH carries bdSeq equal to the NBIRTH's of that session (QoS 1, will)
            bd = [value_of(m) for m in p.metrics if m.name == "bdSeq"]
            if not bd:
                problem(lineno, "S5 NDEATH without a bdSeq metric")
            else:
                summary["will_bdseqs"].append(bd[0])
                if last_nbirth_bdseq is not None and bd[0] != last_nbirth_bdseq:
                    problem(lineno, f"S5 NDEATH bdSeq {bd[0]} != NBIRTH bdSeq {last_nbirth_bdseq}")
            if qos != 1:
                problem(lineno, f"S5 NDEATH with QoS {qos} (the will is QoS 1)")
            session = None
            continue
        # S6: seq 0...255 on every other message
        if not p.HasField("seq") or not 0 <= p.seq <= 255:
            problem(lineno, f"S6 {mtype} without seq 0-255")
            continue
        # S7: births, data and device deaths with QoS 0
        if qos != 0:
            problem(lineno, f"S7 {mtype} with QoS {qos} (Sparkplug: QoS 0)")
        if mtype == "NBIRTH":
            # S8: NBIRTH has seq 0, a bdSeq (UInt64) and Node Control/Rebirth (Boolean false)
            if p.seq != 0:
                problem(lineno, f"S8 NBIRTH seq {p.seq} (must be 0)")
            names = {m.name: m for m in p.metrics}
            bd = names.get("bdSeq")
            if bd is None or bd.datatype != UINT64:
                problem(lineno, "S8 NBIRTH without a UInt64 bdSeq metric")
            else:
                last_nbirth_bdseq = value_of(bd)
                summary["bdseqs"].append(last_nbirth_bdseq)
            rb = names.get("Node Control/Rebirth")
            if rb is None or rb.datatype != BOOLEAN or value_of(rb) is not False:
                problem(lineno, "S8 NBIRTH without Node Control/Rebirth = false (Boolean)")
            if session is not None:
                summary["rebirths"] += 1
            session = {"seq": p.seq, "aliases": {}, "born": set(), "types": {}}
            summary["sessions"] += 1
            register(session, "", p, lineno, problem, summary)
            continue
        if session is None:
            problem(lineno, f"S9 {mtype} before any NBIRTH of the session")
            continue
        # S10: seq increments by one, modulo 256
        expected = (session["seq"] + 1) % 256
        if p.seq != expected:
            problem(lineno, f"S10 {mtype} seq {p.seq}, expected {expected}")
        session["seq"] = p.seq
        if mtype == "DBIRTH":
            session["born"].add(device)
            if device not in summary["devices_born"]:
                summary["devices_born"].append(device)
            register(session, device, p, lineno, problem, summary)
        elif mtype == "DDEATH":
            # S11: a DDEATH only for a born device; no DDATA after it until a DBIRTH
            if device not in session["born"]:
                problem(lineno, f"S11 DDEATH for {device}, which is not born")
            session["born"].discard(device)
        else:
            # S12: DATA for a born device (DDATA) and by known aliases with the birth's datatype
            if mtype == "DDATA" and device not in session["born"]:
                problem(lineno, f"S12 DDATA for {device} before its DBIRTH (or after its DDEATH)")
            for m in p.metrics:
                key = m.alias if m.HasField("alias") else None
                known = session["aliases"].get(key) if key is not None else None
                if known is None and m.name:
                    known = next((v for v in session["aliases"].values() if v[0] == device and v[1] == m.name), None)
                if known is None:
                    problem(lineno, f"S12 {mtype} metric {m.name or m.alias} not in the births")
                    continue
                if known[0] != device:
                    problem(lineno, f"S12 {mtype} alias {m.alias} belongs to device '{known[0]}', not '{device}'")
                if m.HasField("datatype") and m.datatype != known[2]:
                    problem(lineno, f"S12 {known[1]} datatype {m.datatype} != birth {known[2]}")
                # S13: every metric has a timestamp
                if not m.HasField("timestamp"):
                    problem(lineno, f"S13 {known[1]} without a timestamp")
                if m.is_historical:
                    summary["historical_metrics"] += 1
                else:
                    summary["live_metrics"] += 1
                if known[1] == "Node Control/Reply":
                    summary["replies"].append(json.loads(value_of(m)))
                if known[1] in ("Event", "Node Event"):
                    summary["events"] += 1
    # S14: bdSeq changes from one NBIRTH to the next of a new connection (restart or reconnect)
    summary["problems"] = len(problems)
    return problems, summary


def register(session, device, p, lineno, problem, summary):
    """Births: every metric has a name, a datatype and an alias unique within the edge node (S2b)."""
    for m in p.metrics:
        if not m.name or not m.HasField("datatype"):
            problem(lineno, f"S2b birth metric without name or datatype ({m.name!r})")
            continue
        if not m.HasField("alias"):
            problem(lineno, f"S2b birth metric {m.name} without an alias")
            continue
        owner = session["aliases"].get(m.alias)
        if owner is not None and (owner[0], owner[1]) != (device, m.name):
            problem(lineno, f"S2b alias {m.alias} of {device}/{m.name} already names {owner[0]}/{owner[1]}")
        session["aliases"][m.alias] = (device, m.name, m.datatype)
        for k, v in zip(m.properties.keys, m.properties.values):
            if k == "engUnit":
                summary["units"][m.name] = v.string_value


def payload(metrics):
    p = pb.Payload()
    p.timestamp = int(time.time() * 1000)
    for name, datatype, field, value in metrics:
        m = p.metrics.add()
        m.name = name
        m.timestamp = p.timestamp
        m.datatype = datatype
        setattr(m, field, value)
    return p.SerializeToString()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "ncmd-rebirth", "dcmd"])
    ap.add_argument("path")
    ap.add_argument("--group")
    ap.add_argument("--node")
    ap.add_argument("--bytes-file")
    ap.add_argument("--int")
    args = ap.parse_args()
    if args.mode == "check":
        problems, summary = check(args.path, args.group, args.node)
        for p in problems:
            print(p)
        print(json.dumps(summary, sort_keys=True))
        return 1 if problems else 0
    if args.mode == "ncmd-rebirth":
        data = payload([("Node Control/Rebirth", BOOLEAN, "boolean_value", True)])
    elif args.bytes_file:
        with open(args.bytes_file, "rb") as f:
            data = payload([("Command", BYTES, "bytes_value", f.read().strip())])
    else:
        name, _, v = args.int.partition("=")
        data = payload([(name, INT32, "int_value", int(v))])
    with open(args.path, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Validates captured MQTT messages against docs/asyncapi.yaml (AsyncAPI 3.0).

Usage: asyncapi-check.py ASYNCAPI.yaml CAPTURE [--prefix edge/v1] [--require status,will,...]

CAPTURE holds one message per line as `mosquitto_sub -v` prints it: `TOPIC PAYLOAD`.
Every line's topic must match exactly one channel address of the document (parameters by
their x-pattern) and its payload must be valid JSON matching one of that channel's messages
(JSON Schema, draft 2020-12, with the document's $refs). A signed command envelope's `cmd`
bytes are also checked against components/schemas/Command. --require lists message names
that must have been seen at least once. Prints one line per problem and a summary; exits 1
on any problem (drift between the agent and the document), 0 otherwise.

Independent of the agent's code: only PyYAML and jsonschema.
"""
import argparse
import base64
import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:edge-agent:asyncapi"


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if str(doc.get("asyncapi")) != "3.0.0":
        raise SystemExit(f"{path}: not an AsyncAPI 3.0.0 document (asyncapi: {doc.get('asyncapi')!r})")
    for key in ("info", "channels", "operations", "components"):
        if key not in doc:
            raise SystemExit(f"{path}: missing top-level '{key}'")
    return doc


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def structural_problems(doc):
    """A few AsyncAPI 3.0 rules the checker relies on (refs resolve, operations name channels)."""
    problems = []
    for name, op in doc["operations"].items():
        if op.get("action") not in ("send", "receive"):
            problems.append(f"operation {name}: action must be send or receive")
        ch = op.get("channel", {}).get("$ref", "")
        if not ch.startswith("#/channels/") or ch.split("/")[-1] not in doc["channels"]:
            problems.append(f"operation {name}: channel {ch!r} does not resolve")
    for name, ch in doc["channels"].items():
        params = set(re.findall(r"{(\w+)}", ch["address"]))
        if params != set(ch.get("parameters", {})):
            problems.append(f"channel {name}: address parameters {sorted(params)} != declared {sorted(ch.get('parameters', {}))}")
        for mname, m in ch.get("messages", {}).items():
            m = deref(doc, m)
            if "payload" not in m:
                problems.append(f"channel {name} message {mname}: no payload schema")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("asyncapi")
    ap.add_argument("capture")
    ap.add_argument("--prefix", default=None)
    ap.add_argument("--require", default="")
    args = ap.parse_args()

    doc = load(args.asyncapi)
    problems = structural_problems(doc)
    registry = Registry().with_resource(BASE, Resource.from_contents(doc, default_specification=DRAFT202012))
    Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})

    def validator(ref):
        return Draft202012Validator({"$ref": BASE + ref}, registry=registry)

    channels = []
    for name, ch in doc["channels"].items():
        regex = re.escape(ch["address"])
        for pname, p in ch.get("parameters", {}).items():
            p = deref(doc, p)
            pattern = re.escape(args.prefix) if (pname == "prefix" and args.prefix) else p.get("x-pattern", "[^/]+")
            regex = regex.replace(re.escape("{" + pname + "}"), f"(?:{pattern})")
        msgs = []
        for mname, m in ch.get("messages", {}).items():
            ref = m["$ref"] if "$ref" in m else None
            target = deref(doc, m)
            pref = target["payload"]["$ref"] if "$ref" in target["payload"] else None
            msgs.append((mname, validator(pref if pref else ref + "/payload")))
        channels.append((name, re.compile("^" + regex + "$"), msgs))
    command_validator = validator("#/components/schemas/Command")

    seen = {}
    count = 0
    with open(args.capture, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            count += 1
            topic, _, payload = line.partition(" ")
            where = f"{args.capture}:{lineno}: {topic}"
            matches = [c for c in channels if c[1].match(topic)]
            if len(matches) != 1:
                problems.append(f"{where}: matches {len(matches)} channels (expected exactly one)")
                continue
            cname, _, msgs = matches[0]
            try:
                obj = json.loads(payload)
            except ValueError as e:
                problems.append(f"{where}: payload is not JSON ({e}): {payload[:120]}")
                continue
            errors = {}
            ok = None
            for mname, v in msgs:
                errs = sorted(v.iter_errors(obj), key=lambda e: list(e.path))
                if not errs:
                    ok = mname
                    break
                errors[mname] = errs
            if ok is None:
                detail = "; ".join(f"{m}: {e[0].message} at /{'/'.join(map(str, e[0].path))}" for m, e in errors.items())
                problems.append(f"{where}: payload matches no message of channel {cname}: {detail} -- {payload[:200]}")
                continue
            seen[ok] = seen.get(ok, 0) + 1
            if ok == "command":
                try:
                    cmd = json.loads(base64.b64decode(obj["cmd"]))
                except ValueError as e:
                    problems.append(f"{where}: cmd is not base64 JSON: {e}")
                    continue
                for e in command_validator.iter_errors(cmd):
                    problems.append(f"{where}: signed command: {e.message} at /{'/'.join(map(str, e.path))}")
            if ok == "reply":
                kind = "reply_ok" if obj.get("ok") else "reply_error"
                seen[kind] = seen.get(kind, 0) + 1
            if ok == "status":
                kind = "status_" + obj["state"]
                seen[kind] = seen.get(kind, 0) + 1

    for name in filter(None, args.require.split(",")):
        if name not in seen:
            problems.append(f"no '{name}' message was captured (required)")
    for p in problems:
        print(p)
    print(f"asyncapi-check: {count} messages, seen {json.dumps(seen, sort_keys=True)}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

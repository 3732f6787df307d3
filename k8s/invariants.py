"""Patto's invariants over rendered overlays, the ones schemas and checkov cannot see.

Usage: invariants.py RENDERED.yaml...   (run by k8s/validate.sh with the tools venv's Python)

- a workload's selector matches its own pod template, and every Service selects some pod;
- every ConfigMap a pod names (envFrom, volumes) is rendered, hash suffix included;
- the drain fits: terminationGracePeriodSeconds >= preStop sleep + PATTO_SHUTDOWN_GRACE_SECS + 5;
- every image carries an explicit tag that is not `latest`;
- the gateway and every service have startup, readiness and liveness probes.
"""

import os
import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
# Slack after the drain for the trace flush and the exit itself.
EXIT_MARGIN_SECS = 5


def main(paths):
    problems = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        overlay = os.path.splitext(os.path.basename(path))[0]
        problems += [f"overlays/{overlay}: {p}" for p in check(docs)]
    for p in problems:
        print(f"k8s-validate: {p}", file=sys.stderr)
    if not problems:
        print(f"k8s-validate: invariants hold in {len(paths)} overlay(s)")
    return 1 if problems else 0


def check(docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    config_maps = by_kind.get("ConfigMap", {})
    templates = []
    for kind in WORKLOADS:
        for name, w in by_kind.get(kind, {}).items():
            where = f"{kind}/{name}"
            pod = w["spec"]["template"]
            labels = pod["metadata"].get("labels", {})
            templates.append(labels)
            selector = w["spec"]["selector"].get("matchLabels", {})
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                yield f"{where}: selector {selector} does not match its pod labels {labels}"
            yield from check_pod(where, pod["spec"], config_maps, labels)
    for name, svc in by_kind.get("Service", {}).items():
        selector = svc["spec"].get("selector", {})
        if not any(all(t.get(k) == v for k, v in selector.items()) for t in templates):
            yield f"Service/{name}: selector {selector} matches no pod"


def check_pod(where, spec, config_maps, labels):
    env = {}
    for c in spec["containers"]:
        image = c["image"]
        tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest":
            yield f"{where}: image {image} needs an explicit tag other than latest"
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            if ref is not None:
                if ref not in config_maps:
                    yield f"{where}: envFrom names ConfigMap {ref}, which is not rendered"
                else:
                    env.update(config_maps[ref].get("data", {}))
        for var in c.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
        if labels.get("app.kubernetes.io/component") in ("service", "gateway"):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in c:
                    yield f"{where}: container {c['name']} has no {probe}"
    for volume in spec.get("volumes", []):
        ref = volume.get("configMap", {}).get("name")
        if ref is not None and ref not in config_maps:
            yield f"{where}: volume {volume['name']} names ConfigMap {ref}, which is not rendered"
    if "PATTO_SHUTDOWN_GRACE_SECS" in env:
        pre_stop = max(
            (c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
             for c in spec["containers"]),
            default=0,
        )
        need = pre_stop + int(env["PATTO_SHUTDOWN_GRACE_SECS"]) + EXIT_MARGIN_SECS
        have = spec.get("terminationGracePeriodSeconds", 30)
        if have < need:
            yield (f"{where}: terminationGracePeriodSeconds {have} < preStop {pre_stop} + "
                   f"PATTO_SHUTDOWN_GRACE_SECS {env['PATTO_SHUTDOWN_GRACE_SECS']} + {EXIT_MARGIN_SECS}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Lint of deploy/ that runs without Docker, Kubernetes or Grafana (tests/observability).

usage: lint_deploy.py REPO_ROOT DYT_SCHEDULER_BINARY DYT_WORKER_BINARY DYT_TRAIN_BINARY

Checks, each failure printed as "file: problem" (exit 1 if any):
  - every YAML file parses; the Grafana dashboard JSON parses and is consistent (unique panel
    ids, one datasource uid that the provisioned datasource defines, an expr on every target);
  - Prometheus configs (deploy/prometheus, the compose one, the Kubernetes ConfigMap) have the
    scrape job names the alerts and dashboard select on; the compose one passes promtool;
  - Dockerfiles: stages, COPY --from targets, a Debian 12 build stage, a non-root USER, an
    ENTRYPOINT; the build packages cover scripts/setup.sh's -dev packages; the runtime stage
    installs the Debian package of every shared library the binaries built here load
    (readelf NEEDED -> ldconfig -> dpkg -S; same Debian 12 packages); EXPOSEd ports match the
    flags;
  - compose.yaml: services, build files, bind-mounted paths, named volumes, the GPU reservation;
  - Kubernetes manifests: required keys, selectors matching pod labels, Service target ports,
    volumes and claims, the DaemonSet's nvidia.com/gpu limit, the StatefulSet's PVC template;
  - every dyt-scheduler / dyt-worker flag used anywhere in deploy/ is one the binary accepts
    (from its --help); every scheduler serves TLS (never --insecure) and every worker has the
    CA and a token file; every scheduler command line really starts (paths and ports moved
    into a temp dir, certificates from scripts/dyt-certs.sh) and stops on SIGTERM with 0;
  - systemd units pass `systemd-analyze verify` (with the built binaries' paths).
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

errors = []


def err(path, msg):
    errors.append(f"{path}: {msg}")


def rel(path):
    return os.path.relpath(path, ROOT)


def load_yaml_docs(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        err(rel(path), f"YAML does not parse: {e}")
        return []


def binary_flags(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout + out.stderr))
    if not flags:
        err(binary, "--help lists no flags")
    return flags


def check_flags(where, program, args):
    DEPLOYED.append((where, program, list(args)))
    known = FLAGS[program]
    for a in args:
        if not a.startswith("--"):
            continue
        flag = a.split("=", 1)[0]
        if flag not in known:
            err(where, f"{program} has no flag {flag}")


def flag_value(args, flag):
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def port_of(hostport):
    return int(hostport.rsplit(":", 1)[1]) if hostport else None


# ---------------------------------------------------------------------------- Prometheus


def scrape_jobs(config):
    return {j.get("job_name") for j in config.get("scrape_configs", [])}


def alert_jobs():
    jobs = set()
    for g in ALERTS.get("groups", []):
        for r in g.get("rules", []):
            jobs |= set(re.findall(r'job="([^"]+)"', r.get("expr", "")))
    return jobs


def check_prometheus():
    main = os.path.join(DEPLOY, "prometheus/prometheus.yml")
    docs = load_yaml_docs(main)
    if not docs:
        return
    cfg = docs[0]
    want = {"dyt-scheduler", "dyt-worker"}
    if scrape_jobs(cfg) != want:
        err(rel(main), f"scrape jobs {sorted(scrape_jobs(cfg))}, want {sorted(want)}")
    if not alert_jobs() <= want:
        err("deploy/prometheus/alerts.yml", f"selects unknown jobs {alert_jobs() - want}")
    worker = [j for j in cfg.get("scrape_configs", []) if j.get("job_name") == "dyt-worker"]
    if worker and not worker[0].get("file_sd_configs"):
        err(rel(main), "dyt-worker has no file_sd_configs")
    if worker and worker[0].get("static_configs"):
        # A worker target with no worker behind it pages DytWorkerDown for ever.
        err(rel(main), "dyt-worker lists static targets: workers belong in file_sd files")
    if "alerts.yml" not in cfg.get("rule_files", []):
        err(rel(main), "rule_files does not load alerts.yml")

    compose_prom = os.path.join(DEPLOY, "docker/prometheus.yml")
    docs = load_yaml_docs(compose_prom)
    if docs:
        if scrape_jobs(docs[0]) != want:
            err(rel(compose_prom), f"scrape jobs {sorted(scrape_jobs(docs[0]))}")
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(compose_prom, tmp)
            shutil.copy(os.path.join(DEPLOY, "prometheus/alerts.yml"), tmp)
            r = subprocess.run(["promtool", "check", "config", os.path.join(tmp, "prometheus.yml")],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                err(rel(compose_prom), "promtool check config failed:\n" + r.stdout + r.stderr)

    # Kubernetes: Debian's Prometheus is built without Kubernetes service discovery, so promtool
    # cannot load this one; check its shape instead.
    k8s = os.path.join(DEPLOY, "k8s/prometheus-config.yaml")
    cms = [d for d in load_yaml_docs(k8s) if d.get("kind") == "ConfigMap"]
    if not cms:
        err(rel(k8s), "no ConfigMap")
        return
    text = cms[0].get("data", {}).get("prometheus.yml", "")
    try:
        kcfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        err(rel(k8s), f"data.prometheus.yml does not parse: {e}")
        return
    for job in kcfg.get("scrape_configs", []):
        if not job.get("kubernetes_sd_configs"):
            err(rel(k8s), f"scrape job {job.get('job_name')} has no kubernetes_sd_configs")
        targets = [r.get("target_label") for r in job.get("relabel_configs", [])]
        if "job" not in targets or "__address__" not in targets:
            err(rel(k8s), "relabel_configs must set job (alerts select on it) and __address__")
    if not any(f.endswith("alerts.yml") for f in kcfg.get("rule_files", [])):
        err(rel(k8s), "rule_files does not load alerts.yml")


# ---------------------------------------------------------------------------- Grafana


def check_grafana():
    ds_file = os.path.join(DEPLOY, "grafana/provisioning/datasources/dyt-prometheus.yml")
    ds_docs = load_yaml_docs(ds_file)
    ds_uids = set()
    if ds_docs:
        for d in ds_docs[0].get("datasources", []):
            ds_uids.add(d.get("uid"))
            if d.get("type") != "prometheus":
                err(rel(ds_file), f"datasource {d.get('name')} is not of type prometheus")
    prov_file = os.path.join(DEPLOY, "grafana/provisioning/dashboards/dyt.yml")
    prov = load_yaml_docs(prov_file)
    if prov:
        for p in prov[0].get("providers", []):
            if p.get("type") != "file" or not p.get("options", {}).get("path"):
                err(rel(prov_file), "provider needs type file and options.path")
    dashboards = glob.glob(os.path.join(DEPLOY, "grafana/dashboards/*.json"))
    if not dashboards:
        err("deploy/grafana/dashboards", "no dashboard JSON")
    for path in dashboards:
        try:
            with open(path) as f:
                dash = json.load(f)
        except json.JSONDecodeError as e:
            err(rel(path), f"JSON does not parse: {e}")
            continue
        for key in ("uid", "title", "panels", "templating", "schemaVersion"):
            if key not in dash:
                err(rel(path), f"no {key}")
        ids = []

        def walk(panels):
            for p in panels:
                ids.append(p.get("id"))
                if "gridPos" not in p:
                    err(rel(path), f"panel {p.get('title')}: no gridPos")
                if p.get("type") != "row":
                    uid = p.get("datasource", {}).get("uid")
                    if uid not in ds_uids:
                        err(rel(path), f"panel {p.get('title')}: datasource uid {uid} not provisioned")
                    if not p.get("targets"):
                        err(rel(path), f"panel {p.get('title')}: no targets")
                    for t in p.get("targets", []):
                        if not t.get("expr") or not t.get("refId"):
                            err(rel(path), f"panel {p.get('title')}: a target without expr/refId")
                walk(p.get("panels", []))

        walk(dash.get("panels", []))
        if len(ids) != len(set(ids)):
            err(rel(path), "panel ids are not unique")
        names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
        if "job_id" not in names:
            err(rel(path), "no job_id template variable")
        for v in dash.get("templating", {}).get("list", []):
            if v.get("datasource", {}).get("uid") not in ds_uids:
                err(rel(path), f"variable {v.get('name')}: datasource not provisioned")


# ---------------------------------------------------------------------------- Docker


def dockerfile_instructions(path):
    """(instruction, argument text) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if s.strip().startswith("#") and not cur:
                continue
            if s.strip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            if cur.strip():
                word, _, rest = cur.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def setup_packages():
    text = open(os.path.join(ROOT, "scripts/setup.sh")).read()
    m = re.search(r"packages=\((.*?)\)", text, re.S)
    return set(m.group(1).split()) if m else set()


BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}  # essential in every Debian image
# CUDA libraries by soname prefix -> the package of NVIDIA's Debian repository providing them
# ("libcublas-*": any CUDA version's).
CUDA_PACKAGES = [("libcublasLt.", "libcublas-*"), ("libcublas.", "libcublas-*"),
                 ("libnccl.", "libnccl2")]


def runtime_packages(binary):
    """The Debian packages of the shared libraries `binary` links directly."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True).stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    # dpkg records a path as the package shipped it: /lib or /usr/lib (merged /usr), through a
    # symlink or not. One dpkg -S call for every candidate (each call reads the whole database).
    candidates = {}
    for soname in needed:
        m = re.search(r"^\s*" + re.escape(soname) + r" \(libc6,x86-64\) => (\S+)$", cache, re.M)
        if not m:
            err(binary, f"cannot resolve {soname}")
            continue
        paths = []
        for path in (m.group(1), os.path.realpath(m.group(1))):
            paths += [path, re.sub(r"^/usr/lib/", "/lib/", path)]
        candidates[soname] = paths
    all_paths = sorted({p for paths in candidates.values() for p in paths})
    out = subprocess.run(["dpkg", "-S"] + all_paths, capture_output=True, text=True).stdout
    owners = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        owners[path.strip()] = package.split(":")[0]
    packages = set()
    for soname, paths in candidates.items():
        owner = next((owners[p] for p in paths if p in owners), None)
        if owner is None and paths[0].startswith("/usr/local/cuda"):
            # The CUDA toolkit here is NVIDIA's installer, not packages; images take the same
            # libraries from NVIDIA's Debian 12 repository (libcublas-<version>, libnccl2).
            owner = next((pkg for prefix, pkg in CUDA_PACKAGES if soname.startswith(prefix)), None)
        if owner is None:
            err(binary, f"no Debian package owns {paths[0]}")
            continue
        # libopenblas.so.0 is an alternative: any libopenblas0-* variant provides it.
        packages.add("libopenblas0-*" if owner.startswith("libopenblas0-") else owner)
    return packages - BASE_PACKAGES


def check_dockerfile(path, program, extra_binary, binaries):
    ins = dockerfile_instructions(path)
    stages, final = [], None
    for word, arg in ins:
        if word == "FROM":
            parts = arg.split()
            stages.append(parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None)
            final = parts[0]
    if not stages:
        err(rel(path), "no FROM")
        return
    froms = [a.split()[0] for w, a in ins if w == "FROM"]
    if not any(f == "debian:12" for f in froms):
        err(rel(path), "no Debian 12 build stage (FROM debian:12)")
    for word, arg in ins:
        m = re.search(r"--from=(\S+)", arg) if word == "COPY" else None
        if m and m.group(1) not in stages:
            err(rel(path), f"COPY --from={m.group(1)}: no such stage")
    # The final stage: non-root user, entrypoint, exposed ports matching the CMD's flags.
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    tail = ins[last:]
    users = [a for w, a in tail if w == "USER"]
    if not users or users[-1] in ("root", "0"):
        err(rel(path), "the final stage runs as root (no USER)")
    entry = [a for w, a in tail if w == "ENTRYPOINT"]
    if not entry or program not in entry[-1]:
        err(rel(path), f"ENTRYPOINT is not {program}")
    cmd = [json.loads(a) for w, a in tail if w == "CMD"]
    exposed = {int(p) for w, a in tail if w == "EXPOSE" for p in a.split()}
    if cmd:
        check_flags(rel(path) + " CMD", program, cmd[-1])
        for flag in ("--listen", "--metrics-listen"):
            port = port_of(flag_value(cmd[-1], flag))
            if port and port not in exposed:
                err(rel(path), f"{flag} port {port} is not EXPOSEd")
    copies = " ".join(a for w, a in tail if w == "COPY")
    for b in (program, extra_binary):
        if b not in copies:
            err(rel(path), f"the final stage does not COPY {b}")
    # Build packages: every -dev / build tool of scripts/setup.sh the services need.
    installed = set()
    for w, a in ins:
        if w == "RUN" and "apt-get install" in a:
            installed |= set(re.findall(r"(?<![-$\w])([a-z0-9][a-z0-9.+-]+)", a))
    # Test-only packages (the fuzz targets' libFuzzer/sanitizer runtime) are not built into images.
    test_only = {"libclang-rt-14-dev"}
    needed = {p for p in setup_packages() if (p.endswith("-dev") or p in (
        "cmake", "ninja-build", "build-essential", "pkg-config", "protobuf-compiler",
        "protobuf-compiler-grpc")) and p not in test_only}
    missing = needed - installed
    if missing:
        err(rel(path), f"build stage lacks scripts/setup.sh packages {sorted(missing)}")
    runtime = set()
    for w, a in tail:
        if w == "RUN" and "apt-get install" in a:
            runtime |= set(re.findall(r"(?<![-$\w])([a-z0-9][a-z0-9.+-]+)", a))
    runtime |= {"libopenblas0-*" for p in runtime if p.startswith("libopenblas0-")}
    runtime |= {"libcublas-*" for p in runtime if p.startswith("libcublas-")}
    for b in binaries:
        lacking = runtime_packages(b) - runtime
        if lacking:
            err(rel(path), f"runtime stage lacks {sorted(lacking)} ({os.path.basename(b)} loads "
                           "their libraries)")
    ignore = path + ".dockerignore"
    if not os.path.exists(ignore) or "build" not in open(ignore).read():
        err(rel(path), "no .dockerignore keeping build/ out of the context")


def check_compose():
    path = os.path.join(DEPLOY, "docker/compose.yaml")
    docs = load_yaml_docs(path)
    if not docs:
        return
    c = docs[0]
    here = os.path.dirname(path)
    services = c.get("services", {})
    for name in ("scheduler", "worker", "prometheus", "grafana"):
        if name not in services:
            err(rel(path), f"no service {name}")
    volumes = set((c.get("volumes") or {}).keys())
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            err(rel(path), f"{name}: neither image nor build")
        b = s.get("build")
        if b:
            ctx = os.path.normpath(os.path.join(here, b.get("context", ".")))
            if not os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
                err(rel(path), f"{name}: build file {b.get('dockerfile')} not found")
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("./secrets/"):
                # The operator's TLS files and tokens, made as the file's header says.
                if src.split("/")[-1] not in open(path).read().split("services:")[0] and \
                        not src.startswith("./secrets/tls"):
                    err(rel(path), f"{name}: the header does not say how to make {src}")
            elif src.startswith(".") or src.startswith("/"):
                if not os.path.exists(os.path.normpath(os.path.join(here, src))):
                    err(rel(path), f"{name}: bind mount {src} does not exist")
            elif src not in volumes:
                err(rel(path), f"{name}: volume {src} not declared")
        for dep in s.get("depends_on", []):
            if dep not in services:
                err(rel(path), f"{name}: depends on unknown service {dep}")
        image = s.get("image", "")
        if image.startswith("dyt-scheduler"):
            check_flags(f"{rel(path)} {name}", "dyt-scheduler", s.get("command", []))
        if image.startswith("dyt-worker"):
            check_flags(f"{rel(path)} {name}", "dyt-worker", s.get("command", []))
    devices = (services.get("worker", {}).get("deploy", {}).get("resources", {})
               .get("reservations", {}).get("devices", []))
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices):
        err(rel(path), "worker reserves no nvidia GPU")
    # The compose Prometheus scrapes the ports the services listen on.
    prom = load_yaml_docs(os.path.join(here, "prometheus.yml"))
    targets = set()
    if prom:
        for j in prom[0].get("scrape_configs", []):
            for sc in j.get("static_configs", []):
                targets |= set(sc.get("targets", []))
            for sd in j.get("dns_sd_configs", []):  # names the services Docker's DNS resolves
                targets |= {f"{n}:{sd.get('port')}" for n in sd.get("names", [])}
    for name, s in services.items():
        port = port_of(flag_value(s.get("command", []), "--metrics-listen"))
        if port and f"{name}:{port}" not in targets:
            err(rel(path), f"{name}:{port} is not a target of deploy/docker/prometheus.yml")


# ---------------------------------------------------------------------------- Kubernetes


def check_k8s():
    docs = []
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s/*.yaml"))):
        for d in load_yaml_docs(path):
            docs.append((rel(path), d))
    by_kind = {}
    for path, d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                err(path, f"a document without {key}")
        if not d.get("metadata", {}).get("name"):
            err(path, f"{d.get('kind')} without metadata.name")
        if d.get("kind") not in ("Namespace",) and d.get("metadata", {}).get("namespace") != "dyt":
            err(path, f"{d.get('kind')} {d['metadata'].get('name')} is not in namespace dyt")
        by_kind.setdefault(d.get("kind"), []).append((path, d))
    pvcs = {d["metadata"]["name"] for _, d in by_kind.get("PersistentVolumeClaim", [])}
    services = by_kind.get("Service", [])

    def check_workload(path, d):
        spec = d.get("spec", {})
        tmpl = spec.get("template", {})
        labels = tmpl.get("metadata", {}).get("labels", {})
        sel = spec.get("selector", {}).get("matchLabels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            err(path, f"{d['kind']}: selector {sel} does not match the pod labels {labels}")
        pod = tmpl.get("spec", {})
        vols = {v["name"] for v in pod.get("volumes", [])}
        vols |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for v in pod.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in pvcs:
                err(path, f"volume {v['name']}: no PersistentVolumeClaim {claim}")
        ports = {}
        for c in pod.get("containers", []):
            for key in ("name", "image"):
                if not c.get(key):
                    err(path, f"a container without {key}")
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    err(path, f"container {c.get('name')}: mounts unknown volume {m['name']}")
            for p in c.get("ports", []):
                ports[p.get("name")] = p["containerPort"]
            image = c.get("image", "")
            program = "dyt-scheduler" if "scheduler" in image else "dyt-worker"
            check_flags(f"{path} {d['kind']}", program, c.get("args", []))
            mport = port_of(flag_value(c.get("args", []), "--metrics-listen"))
            ann = tmpl.get("metadata", {}).get("annotations", {})
            if mport is None or str(mport) != ann.get("prometheus.io/port"):
                err(path, f"prometheus.io/port {ann.get('prometheus.io/port')} is not the "
                          f"--metrics-listen port {mport}")
            if ann.get("prometheus.io/scrape") != "true":
                err(path, "pod not annotated prometheus.io/scrape: \"true\"")
        return labels, ports

    for path, d in by_kind.get("StatefulSet", []):
        labels, ports = check_workload(path, d)
        spec = d["spec"]
        if not spec.get("volumeClaimTemplates"):
            err(path, "StatefulSet without volumeClaimTemplates (the RocksDB state)")
        names = {s["metadata"]["name"] for _, s in services}
        if spec.get("serviceName") not in names:
            err(path, f"serviceName {spec.get('serviceName')} is no Service")
        for spath, s in services:
            sel = s["spec"].get("selector", {})
            if all(labels.get(k) == v for k, v in sel.items()):
                for p in s["spec"].get("ports", []):
                    tp = p.get("targetPort")
                    if tp not in ports and tp not in ports.values():
                        err(spath, f"Service port {p.get('name')}: targetPort {tp} not a container port")
    if not by_kind.get("StatefulSet"):
        err("deploy/k8s", "no StatefulSet (scheduler)")
    for path, d in by_kind.get("DaemonSet", []):
        check_workload(path, d)
        limits = [c.get("resources", {}).get("limits", {})
                  for c in d["spec"]["template"]["spec"].get("containers", [])]
        if not any("nvidia.com/gpu" in l for l in limits):
            err(path, "DaemonSet requests no nvidia.com/gpu")
    if not by_kind.get("DaemonSet"):
        err("deploy/k8s", "no DaemonSet (worker)")
    for spath, s in services:
        if not any(all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                       for k, v in s["spec"].get("selector", {}).items())
                   for kind in ("StatefulSet", "DaemonSet") for _, d in by_kind.get(kind, [])):
            err(spath, f"Service {s['metadata']['name']} selects no pods")


# ---------------------------------------------------------------------------- systemd


def check_systemd():
    units = sorted(glob.glob(os.path.join(DEPLOY, "systemd/*.service")))
    if len(units) < 2:
        err("deploy/systemd", "want dyt-scheduler.service and dyt-worker.service")
    analyze = shutil.which("systemd-analyze")
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for u in units:
            text = open(u).read()
            program = "dyt-scheduler" if "scheduler" in os.path.basename(u) else "dyt-worker"
            m = re.search(r"^ExecStart=(.*?)(?<!\\)$", text.replace("\\\n", " "), re.M)
            if not m:
                err(rel(u), "no ExecStart")
                continue
            args = shlex.split(m.group(1))
            if os.path.basename(args[0]) != program:
                err(rel(u), f"ExecStart runs {args[0]}, not {program}")
            check_flags(rel(u), program, args[1:])
            for section in ("[Unit]", "[Service]", "[Install]"):
                if section not in text:
                    err(rel(u), f"no {section}")
            text = text.replace("/usr/local/bin/dyt-scheduler", BINARIES["dyt-scheduler"])
            text = text.replace("/usr/local/bin/dyt-worker", BINARIES["dyt-worker"])
            copy = os.path.join(tmp, os.path.basename(u))
            open(copy, "w").write(text)
            copies.append(copy)
        if analyze is None:
            err("deploy/systemd", "systemd-analyze not found (Debian package systemd)")
        elif copies:
            r = subprocess.run([analyze, "verify"] + copies, capture_output=True, text=True,
                               timeout=60, cwd=tmp)
            # Lines about the host's own units are not ours.
            ours = [l for l in (r.stdout + r.stderr).splitlines()
                    if any(os.path.basename(c) in l for c in copies)]
            if r.returncode != 0 or ours:
                err("deploy/systemd", "systemd-analyze verify:\n" + r.stdout + r.stderr)


# ---------------------------------------------------------------------------- secure starts

# What every deployment must pass: the scheduler serves TLS (it refuses to start without it or
# --insecure), a worker trusts the cluster CA and authenticates with its own token.
REQUIRED = {"dyt-scheduler": ("--tls-cert", "--tls-key"),
            "dyt-worker": ("--scheduler", "--ca-file", "--token-file")}


def flag_pairs(args):
    """(flag, value or None) of an argument list, `--f=v` and `--f v` alike; `$VAR` dropped."""
    pairs, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("$"):
            i += 1
            continue
        if "=" in a:
            pairs.append(tuple(a.split("=", 1)))
        elif i + 1 < len(args) and not args[i + 1].startswith(("--", "$")):
            pairs.append((a, args[i + 1]))
            i += 1
        else:
            pairs.append((a, None))
        i += 1
    return pairs


def start_scheduler(where, args, tmp, tls):
    """Starts dyt-scheduler with a deployment's flags (its paths and ports moved into `tmp`)
    and checks that it serves and stops cleanly: flags that each exist can still be refused
    together (TLS required), which only a start shows."""
    moved = {"--listen": "127.0.0.1:0", "--metrics-listen": "127.0.0.1:0",
             "--data-dir": os.path.join(tmp, "state"),
             "--artifact-root": os.path.join(tmp, "artifacts"),
             "--data-root": os.path.join(tmp, "data"),
             "--tls-cert": os.path.join(tls, "server.crt"),
             "--tls-key": os.path.join(tls, "server.key")}
    argv = [BINARIES["dyt-scheduler"]]
    for flag, value in flag_pairs(args):
        argv += [flag] if value is None else [flag, moved.get(flag, value)]
    os.makedirs(os.path.join(tmp, "data"), exist_ok=True)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()  # "listening on ..." once it serves, EOF if it exits
        if not line.startswith("listening on "):
            p.wait(timeout=30)
            err(where, f"dyt-scheduler does not start with these flags (exit {p.returncode}): "
                       + p.stderr.read().strip()[-500:])
            return
        p.send_signal(15)
        if p.wait(timeout=30) != 0:
            err(where, f"dyt-scheduler exited {p.returncode} on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def check_secure_starts():
    with tempfile.TemporaryDirectory() as tmp:
        tls = os.path.join(tmp, "tls")
        r = subprocess.run([os.path.join(ROOT, "scripts/dyt-certs.sh"), tls],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            err("scripts/dyt-certs.sh", r.stderr)
            return
        for i, (where, program, args) in enumerate(DEPLOYED):
            given = {flag for flag, _ in flag_pairs(args)}
            for flag in REQUIRED[program]:
                if flag not in given:
                    err(where, f"{program} without {flag}")
            if "--insecure" in given:
                err(where, f"{program} with --insecure (plaintext, no tokens)")
            if program == "dyt-scheduler":
                start_scheduler(where, args, os.path.join(tmp, str(i)), tls)


def main():
    global ROOT, DEPLOY, ALERTS, FLAGS, BINARIES, TRAIN, DEPLOYED
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    ROOT = os.path.abspath(sys.argv[1])
    DEPLOY = os.path.join(ROOT, "deploy")
    BINARIES = {"dyt-scheduler": os.path.abspath(sys.argv[2]),
                "dyt-worker": os.path.abspath(sys.argv[3])}
    TRAIN = os.path.abspath(sys.argv[4])
    FLAGS = {k: binary_flags(v) for k, v in BINARIES.items()}
    DEPLOYED = []  # (where, program, args) of every command line in deploy/
    for path in glob.glob(os.path.join(DEPLOY, "**/*.y*ml"), recursive=True):
        load_yaml_docs(path)
    ALERTS = (load_yaml_docs(os.path.join(DEPLOY, "prometheus/alerts.yml")) or [{}])[0]
    check_prometheus()
    check_grafana()
    check_dockerfile(os.path.join(DEPLOY, "docker/Dockerfile.scheduler"), "dyt-scheduler", "dytctl",
                     [BINARIES["dyt-scheduler"]])
    check_dockerfile(os.path.join(DEPLOY, "docker/Dockerfile.worker"), "dyt-worker", "dyt-train",
                     [BINARIES["dyt-worker"], TRAIN])
    check_compose()
    check_k8s()
    check_systemd()
    check_secure_starts()
    if not os.path.isfile(os.path.join(DEPLOY, "README.md")):
        err("deploy", "no README.md")
    for e in errors:
        print(e)
    print(f"lint_deploy: {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

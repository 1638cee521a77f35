"""Benchmark the real daemon (``twistd -n slurm-sd``) against synthetic 1k-100k node clusters.

    .venv/bin/python benchmarks/run.py [--sizes 1000,10000,100000] [--refreshes 3]
                                       [--quiet-refreshes 3] [--interval 6]

For each size: generate (or reuse) a v0.0.41 body (benchmarks/generate.py), time the floor
(a bare msgspec decode of that body into Structs of the needed fields, benchmarks/floor.py,
median of fresh processes), serve the body from a stand-in slurmrestd on a UNIX socket
(benchmarks/stand_in_slurmrestd.py), start the daemon on a free loopback port, and sample
the RSS and CPU time of the daemon and all its descendants from /proc every 20 ms.  Then:

- loaded phase: a client (benchmarks/client.py) polls ``/targets?prom_job=node`` in a
  tight keep-alive loop through ``--refreshes`` refreshes: the latency figures
  (p50/p99/max, corrected for coordinated omission) and the "loaded" refresh times;
- quiet phase: a light client (20 ms between requests, ``prom_job=ipmi``) only watches
  for the end of ``--quiet-refreshes`` more refreshes: the "quiet" refresh times, which
  are compared with the floor (measured quiet as well).

A refresh starts when the stand-in receives the nodes request and ends when a client
first receives the data of that request (the stand-in puts a per-request cluster name in
``meta.slurm.cluster``; the config sets no ``cluster_name``, so the daemon serves it as
``__meta_slurm_cluster``).  Prints a reST table and the goals (PASS/FAIL; exit status 1
if any fails), and writes benchmarks/out/results.json and results.rst; client samples,
the daemon's log and /proc traces stay in benchmarks/out/ for inspection.

The daemon runs with ``state_file`` (written after every refresh, in its thread pool)
unless ``--no-state-file`` is given (needed with ``--daemon-argv`` for a build that
does not know the key); benchmarks/state_bench.py times the state file's steps alone.
"""
import argparse
import http.client
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)

import generate  # noqa: E402
from stand_in_slurmrestd import tag  # noqa: E402

PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
#: The benchmark's job names, in config order.
JOB_NAMES = ("node", "dcgm", "ipmi")

#: The benchmark's jobs (also timed alone by convert_bench.py).
JOBS_YAML = """\
jobs:
  - node:
      port: 9100
  - dcgm:
      port: 9400
      partitions: [gpu, gpu-interactive]
      group_by: node
  - ipmi:
      port: 9290
      exclude_states: [powered_down]
"""

CONFIG = """\
slurmrestd:
  url: unix:{socket}
  api_version: v0.0.41
  timeout: 120
interval: {interval}
listen: tcp:{port}:interface=127.0.0.1
{state}""" + JOBS_YAML

#: With ``--source command``: the daemon runs benchmarks/stand_in_command.py per poll.
COMMAND_CONFIG = """\
slurmrestd:
  url: {url}
  timeout: 120
interval: {interval}
listen: tcp:{port}:interface=127.0.0.1
{state}""" + JOBS_YAML


# ---------------------------------------------------------------- processes


class Procs:
    """The processes this run started; stop() ends each by pid (SIGTERM, then SIGKILL)."""

    def __init__(self):
        """Start with none."""
        self.procs = []

    def start(self, name, argv, **kw):
        """Start ``argv``; remember it under ``name``."""
        p = subprocess.Popen(argv, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=10.0):
        """Stop one process: SIGTERM, wait up to ``timeout`` s, then SIGKILL."""
        if p.poll() is not None:
            return p.returncode
        try:
            p.send_signal(signal.SIGTERM)
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(10)

    def stop_all(self):
        """Stop every process still running, newest first."""
        for _, p in reversed(self.procs):
            self.stop(p)
        self.procs = []


class Lines(threading.Thread):
    """Read JSON event lines from a pipe into a list (in a daemon thread)."""

    def __init__(self, pipe):
        """Follow ``pipe``."""
        super().__init__(daemon=True)
        self.pipe = pipe
        self.events = []
        self.cond = threading.Condition()

    def run(self):
        """Collect until EOF."""
        for line in self.pipe:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def wait_for(self, predicate, deadline):
        """Wait until ``predicate(events)`` is true or ``deadline``; return whether it was."""
        with self.cond:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
            return True

    def of(self, kind):
        """Return a copy of the events of one kind."""
        with self.cond:
            return [e for e in self.events if e.get("event") == kind]


# ---------------------------------------------------------------- /proc sampling


def _stat(pid):
    """Return (ppid, utime+stime, cutime+cstime) in seconds for ``pid``, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    return ppid, own, reaped


def _rss(pid):
    """Return the resident set size of ``pid`` in bytes, or 0 if it is gone."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def _all_ppids():
    """Return {pid: ppid} for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st[0]
    return out


class Sampler(threading.Thread):
    """Sample RSS and CPU of a process and its descendants every ``period`` seconds."""

    def __init__(self, pid, period=0.02):
        """Watch ``pid``."""
        super().__init__(daemon=True)
        self.pid = pid
        self.period = period
        self.samples = []  # (t, daemon_rss, children_rss, tree_cpu_s, n_children)
        self.stopping = threading.Event()

    def _descendants(self):
        """Return the pids below self.pid."""
        parents = _all_ppids()
        found, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parents.items() if pp == p]
            found.extend(kids)
            todo.extend(kids)
        return found

    def run(self):
        """Sample until stop()."""
        kids = []
        i = 0
        while not self.stopping.is_set():
            t = time.monotonic()
            if i % 3 == 0:
                kids = self._descendants()
            i += 1
            st = _stat(self.pid)
            if st is None:
                break
            cpu = st[1] + st[2]
            kids_rss = 0
            for k in kids:
                kst = _stat(k)
                if kst is not None:
                    cpu += kst[1]
                    kids_rss += _rss(k)
            self.samples.append((t, _rss(self.pid), kids_rss, cpu, len(kids)))
            self.stopping.wait(max(0.0, self.period - (time.monotonic() - t)))

    def stop(self):
        """Stop sampling."""
        self.stopping.set()
        self.join(5)

    def cpu_at(self, t):
        """Return the tree's CPU seconds at the sample nearest ``t``."""
        best = min(self.samples, key=lambda s: abs(s[0] - t))
        return best[3]


# ---------------------------------------------------------------- measurements


def machine():
    """Describe this machine."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    model = "%s (family %s model %s%s)" % (
        fields.get("model name", "?"), fields.get("cpu family", "?"), fields.get("model", "?"),
        ", virtual machine" if "hypervisor" in fields.get("flags", "").split() else "")
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    import msgspec

    import twisted

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "msgspec": msgspec.__version__,
        "twisted": twisted.__version__,
    }


def measure_floor(body, runs):
    """Time the bare decode ``runs`` times, each in a fresh process; return the median."""
    got = []
    for _ in range(runs):
        out = subprocess.run([PY, os.path.join(HERE, "floor.py"), body], check=True,
                             capture_output=True, timeout=300)
        got.append(json.loads(out.stdout))
    got.sort(key=lambda r: r["decode_s"])
    median = got[len(got) // 2]
    return {"decode_s": median["decode_s"], "decode_s_all": [r["decode_s"] for r in got],
            "read_s": median["read_s"], "peak_rss_bytes": max(r["peak_rss_bytes"] for r in got)}


#: ``twistd -n --pidfile= slurm-sd`` with this Python (add ``--config PATH``).
TWISTD = [PY, "-c", "import sys; sys.argv[0] = 'twistd'; "
          "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "slurm-sd"]


def daemon_env():
    """The environment the daemon runs in: this checkout first on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def start_standin(procs, sock, body):
    """Start a stand-in slurmrestd serving ``body`` on ``sock``; its event lines, once it
    listens."""
    standin = procs.start("stand-in", [
        PY, os.path.join(HERE, "stand_in_slurmrestd.py"), "--socket", sock,
        "--body", body], stdout=subprocess.PIPE, text=True)
    events = Lines(standin.stdout)
    events.start()
    if not events.wait_for(lambda ev: ev, time.monotonic() + 15):
        raise RuntimeError("stand-in slurmrestd did not start")
    return standin, events


def free_port():
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    """GET ``path`` from the daemon; return (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def pct(values, q):
    """Return the ``q``-quantile (0..1) of ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def latency_stats(values):
    """Return count, p50, p99 and max of ``values`` (seconds) in milliseconds."""
    return {"count": len(values), "p50_ms": pct(values, 0.5) * 1e3,
            "p99_ms": pct(values, 0.99) * 1e3,
            "max_ms": max(values) * 1e3 if values else float("nan")}


def corrected(values, interval):
    """Return ``values`` corrected for coordinated omission (as HdrHistogram does).

    The client waits for each answer before it asks again, so a 1 s stall costs it one
    slow sample, where requests arriving on their own (several Prometheus servers, other
    jobs) would have met the stall every ``interval`` seconds: add the samples those
    requests would have recorded (L - interval, L - 2 * interval, ...).
    """
    out = list(values)
    if interval <= 0:
        return out
    for lat in values:
        missed = lat - interval
        while missed > interval and len(out) < 5_000_000:
            out.append(missed)
            missed -= interval
    return out


def run_size(nodes, args, procs):
    """Benchmark one cluster size; return its result dict."""
    body = generate.ensure(OUT, nodes)
    body_size = os.path.getsize(body)
    print("== %d nodes: body %s (%.1f MB)" % (nodes, body, body_size / MB), flush=True)
    floor = measure_floor(body, args.floor_runs)
    print("   floor: decode %.3f s (runs %s), peak RSS %.0f MB" % (
        floor["decode_s"], ", ".join("%.3f" % x for x in floor["decode_s_all"]),
        floor["peak_rss_bytes"] / MB), flush=True)

    work = tempfile.mkdtemp(prefix="slurm-sd-bench-")
    sock = os.path.join(work, "slurmrestd.sock")
    port = free_port()
    cfg = os.path.join(work, "slurm-sd.yaml")
    with open(cfg, "w") as f:
        state = "" if args.no_state_file else "state_file: %s\n" % os.path.join(work, "state")
        if args.source == "command":
            fifo, counter = os.path.join(work, "events"), os.path.join(work, "counter")
            url = "command:" + shlex.join([PY, os.path.join(HERE, "stand_in_command.py"),
                                           "--body", body, "--events", fifo,
                                           "--counter", counter])
            f.write(COMMAND_CONFIG.format(url=json.dumps(url), interval=args.interval,
                                          port=port, state=state))
        else:
            # With a state file (the default), every refresh also writes it: the latency
            # figures show whether that stays off the reactor's critical path.
            f.write(CONFIG.format(socket=sock, interval=args.interval, port=port, state=state))
    log_path = os.path.join(OUT, "daemon-%d.log" % nodes)
    deadline = time.monotonic() + 60 + (args.refreshes + args.quiet_refreshes) * (
        args.interval + 60)
    sampler = None
    standin = None
    try:
        if args.source == "command":
            # Each run of the stand-in command writes its events here; opened
            # read-write so that it never reads end-of-file between runs.
            os.mkfifo(fifo, 0o600)
            standin_events = Lines(os.fdopen(os.open(fifo, os.O_RDWR), "r"))
            standin_events.start()
        else:
            standin, standin_events = start_standin(procs, sock, body)

        env = daemon_env()
        if args.daemon_argv:
            argv = [a.format(config=cfg, python=PY) for a in shlex.split(args.daemon_argv)]
        else:
            argv = TWISTD + ["--config", cfg]
        with open(log_path, "w") as log:
            daemon = procs.start("daemon", argv, cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        sampler = Sampler(daemon.pid, args.sample_ms / 1000.0)
        sampler.start()
        phase = dict(procs=procs, port=port, deadline=deadline, daemon=daemon,
                     log_path=log_path)
        # Loaded: a tight loop on the big node job, for the latency figures.
        loaded = _poll_phase(path="/targets?prom_job=%s" % args.poll_job, gap_ms=args.gap_ms,
                             out=os.path.join(OUT, "client-%d.json" % nodes),
                             wanted=args.refreshes, **phase)
        # Quiet: a light client on a small job, only to see when each refresh ends;
        # the refresh times compared with the floor (measured quiet too) come from here.
        quiet = _poll_phase(path="/targets?prom_job=%s" % args.quiet_job,
                            gap_ms=args.quiet_gap_ms,
                            out=os.path.join(OUT, "client-quiet-%d.json" % nodes),
                            wanted=args.refreshes + args.quiet_refreshes,
                            settle=args.settle, **phase)

        served = {}
        for job in JOB_NAMES + (None,):
            path = "/targets" if job is None else "/targets?prom_job=%s" % job
            status, data = get(port, path)
            served[job or "(all)"] = {"status": status, "bytes": len(data)}
        status, metrics = get(port, "/metrics")
        with open(os.path.join(OUT, "metrics-%d.txt" % nodes), "wb") as f:
            f.write(metrics)

        quiet.finish()
        sampler.stop()
        procs.stop(daemon)
        if standin is not None:
            procs.stop(standin)
    finally:
        if sampler is not None:
            sampler.stop()
        procs.stop_all()
        for name in ("slurm-sd.yaml", "slurmrestd.sock", "events", "counter",
                     "state"):
            try:
                os.unlink(os.path.join(work, name))
            except OSError:
                pass
        try:
            os.rmdir(work)
        except OSError:
            pass

    with open(os.path.join(OUT, "trace-%d.json" % nodes), "w") as f:
        json.dump({"standin": standin_events.events, "samples": sampler.samples}, f)
    return analyse(nodes, body_size, floor, standin_events, loaded, quiet, sampler, served,
                   args)


class _Phase:
    """One client run: its process, events and, once finished, its samples."""

    def __init__(self, procs, client, events, out, started):
        self.procs = procs
        self.client = client
        self.events = events
        self.out = out
        self.started = started
        self.polled = None

    def finish(self):
        """Stop the client and read its samples."""
        if self.polled is None:
            self.procs.stop(self.client)
            with open(self.out) as f:
                self.polled = json.load(f)
        return self.polled


def _poll_phase(procs, port, deadline, daemon, log_path, path, gap_ms, out, wanted,
                settle=0.0):
    """
    Poll ``path`` until the data of stand-in request ``wanted`` is served (or the
    deadline), stay ``settle`` seconds more; the client keeps running until finish().
    """
    started = time.monotonic()
    client = procs.start("client", [
        PY, os.path.join(HERE, "client.py"), "--port", str(port), "--path", path,
        "--out", out, "--gap-ms", str(gap_ms),
        "--duration", str(deadline - time.monotonic() + 30)],
        stdout=subprocess.PIPE, text=True)
    events = Lines(client.stdout)
    events.start()
    want = tag(wanted)
    while time.monotonic() < deadline:
        if events.wait_for(lambda ev: any(e.get("tag") == want for e in ev),
                           min(deadline, time.monotonic() + 1.0)):
            break
        if daemon.poll() is not None:
            raise RuntimeError("daemon exited with %s; see %s" % (daemon.returncode, log_path))
    else:
        print("   WARNING: %s: saw %s, not %s, before the deadline" % (
            path, [e.get("tag") for e in events.of("change")], want))
    # Stay a little after the last refresh, to sample the RSS between refreshes.
    time.sleep(min(settle, max(0.0, deadline - time.monotonic())))
    phase = _Phase(procs, client, events, out, started)
    if not settle:
        phase.finish()
    return phase


def analyse(nodes, body_size, floor, standin_events, loaded, quiet, sampler, served, args):
    """Turn the raw events and samples of one size into its result dict."""
    requests = {e["n"]: e["t"] for e in standin_events.of("request")}
    sent = {e["n"]: e["t"] for e in standin_events.of("sent")}
    phases = {"loaded": loaded, "quiet": quiet}
    seen = {}
    for name, phase in phases.items():
        seen[name] = {}
        for _, t_end, value in phase.polled["changes"]:
            seen[name].setdefault(value, t_end)

    def phase_of(t):
        """The client phase running at time ``t``."""
        return "quiet" if t >= quiet.started else "loaded"

    refreshes = []
    for n in sorted(requests):
        start = requests[n]
        name = phase_of(start)
        end = seen[name].get(tag(n))
        if end is None:
            continue
        refreshes.append({"n": n, "phase": name, "start": start, "end": end,
                          "wall_s": end - start,
                          # until the stand-in had handed the whole body to the socket
                          "fetch_s": sent[n] - start if n in sent else None,
                          "cpu_s": sampler.cpu_at(end) - sampler.cpu_at(start)})
    # Between refreshes: from 0.5 s after one refresh ended until the next request.
    starts = sorted(requests.values())
    idle = []
    for r in refreshes:
        nxt = [t for t in starts if t > r["end"]]
        idle.append((r["end"] + 0.5, nxt[0] if nxt else float("inf")))
    samples = sampler.samples
    idle_samples = [x for x in samples if any(a <= x[0] < b for a, b in idle)]
    rss_between = max((x[1] + x[2] for x in idle_samples), default=0)

    # Serving cost: the clients keep the daemon busy between refreshes too.  CPU seconds
    # per request, measured between refreshes, times the requests served during a
    # refresh, is taken off that refresh's CPU time (per phase: the jobs differ).
    per_request = {}
    for name, phase in phases.items():
        spent, count = 0.0, 0
        for a, b in idle:
            inside = [x for x in samples if a <= x[0] < b and phase_of(x[0]) == name]
            if len(inside) >= 2 and inside[-1][0] - inside[0][0] > 0.2:
                spent += inside[-1][3] - inside[0][3]
                count += sum(1 for t0 in phase.polled["start"]
                             if inside[0][0] <= t0 < inside[-1][0])
        per_request[name] = spent / count if count else 0.0
    for r in refreshes:
        during = sum(1 for t0 in phases[r["phase"]].polled["start"]
                     if r["start"] <= t0 < r["end"])
        r["requests"] = during
        r["cpu_net_s"] = max(0.0, r["cpu_s"] - per_request[r["phase"]] * during)

    # Latency: the loaded client, from the first nodes request on.
    polled = loaded.polled
    windows = [(r["start"], r["end"]) for r in refreshes if r["phase"] == "loaded"]
    t_first = min(requests.values()) if requests else 0.0
    lat_all, lat_refresh = [], []
    for t0, lat in zip(polled["start"], polled["latency"]):
        if t0 < t_first:
            continue
        lat_all.append(lat)
        if any(a - lat <= t0 <= b for a, b in windows):
            lat_refresh.append(lat)
    # Expected interval between requests: the median latency when no refresh runs,
    # plus the client's pause between requests.
    calm = [lat for t0, lat in zip(polled["start"], polled["latency"])
            if any(a <= t0 < b for a, b in idle)]
    interval = statistics.median(calm or lat_all or [0.0]) + args.gap_ms / 1000.0
    statuses = {}
    for code in polled["status"]:
        statuses[str(code)] = statuses.get(str(code), 0) + 1

    def summary(name):
        """Median and max wall and CPU time of one phase's refreshes."""
        chosen = [r for r in refreshes if r["phase"] == name]
        if not chosen:
            return {"count": 0, "median": None, "max": None, "cpu_median": None,
                    "cpu_net_median": None, "fetch_median": None}
        return {"count": len(chosen),
                "median": statistics.median(r["wall_s"] for r in chosen),
                "max": max(r["wall_s"] for r in chosen),
                "cpu_median": statistics.median(r["cpu_s"] for r in chosen),
                "cpu_net_median": statistics.median(r["cpu_net_s"] for r in chosen),
                "fetch_median": statistics.median(r["fetch_s"] or 0 for r in chosen)}

    return {
        "nodes": nodes,
        "body_bytes": body_size,
        "floor": floor,
        "refreshes": refreshes,
        "refresh_quiet": summary("quiet"),
        "refresh_loaded": summary("loaded"),
        "serving_cpu_per_request_s": per_request,
        "peak_rss_bytes": max((x[1] + x[2] for x in samples), default=0),
        "peak_rss_daemon_bytes": max((x[1] for x in samples), default=0),
        "peak_rss_children_bytes": max((x[2] for x in samples), default=0),
        "rss_between_bytes": rss_between,
        "latency_raw": latency_stats(lat_all),
        "latency_all": latency_stats(corrected(lat_all, interval)),
        "latency_interval_ms": interval * 1e3,
        "latency_refresh": latency_stats(corrected(lat_refresh, interval)),
        "statuses": statuses,
        "client_errors": polled["error_count"],
        "served": served,
    }


# ---------------------------------------------------------------- report


def goals(results):
    """Evaluate the issue's goals; return a list of (goal, measured, PASS/FAIL)."""
    out = []
    by = {r["nodes"]: r for r in results}
    big = by.get(100000)
    if big is not None:
        floor = big["floor"]["decode_s"]
        wall = big["refresh_quiet"]["median"]
        if wall is None:
            out.append(("100k: refresh wall (quiet, median) <= 2x floor", "no refresh seen",
                        False))
        else:
            out.append(("100k: refresh wall (quiet, median) <= 2x floor",
                        "%.2f s / %.2f s = %.2fx" % (wall, floor, wall / floor),
                        wall <= 2 * floor))
        peak = big["peak_rss_bytes"]
        out.append(("100k: peak RSS daemon+children <= 1.5x body",
                    "%.0f MB / %.0f MB = %.2fx" % (peak / MB, big["body_bytes"] / MB,
                                                   peak / big["body_bytes"]),
                    peak <= 1.5 * big["body_bytes"]))
        between = big["rss_between_bytes"]
        out.append(("100k: RSS between refreshes <= 150 MB", "%.0f MB" % (between / MB),
                    0 < between <= 150 * MB))
        lat = big["latency_all"]
        out.append(("100k: /targets p99 <= 20 ms", "%.1f ms" % lat["p99_ms"],
                    lat["p99_ms"] <= 20))
        out.append(("100k: /targets max <= 100 ms", "%.1f ms" % lat["max_ms"],
                    lat["max_ms"] <= 100))
    mid = by.get(10000)
    if mid is not None:
        lat = mid["latency_all"]
        out.append(("10k: /targets max <= 20 ms", "%.1f ms" % lat["max_ms"],
                    lat["max_ms"] <= 20))
    return [(g, m, "PASS" if ok else "FAIL") for g, m, ok in out]


def rst_table(header, rows):
    """Return a reST simple table."""
    cols = list(zip(header, *rows))
    widths = [max(len(str(c)) for c in col) for col in cols]
    rule = "  ".join("=" * w for w in widths)
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([rule, line(header), rule] + [line(r) for r in rows] + [rule])


def _f(value, fmt):
    """``fmt % value``, or "-" for None."""
    return "-" if value is None else fmt % value


def report(results, info, args):
    """Return the printable report (reST)."""
    header = ("nodes", "body MB", "floor s", "refresh s quiet med/max", "x floor",
              "refresh s loaded med/max", "CPU s", "peak RSS MB", "x body", "RSS between MB",
              "p50 ms", "p99 ms", "max ms", "/targets?prom_job=node MB")
    rows = []
    for r in results:
        floor = r["floor"]["decode_s"]
        quiet, loaded = r["refresh_quiet"], r["refresh_loaded"]
        rows.append((
            r["nodes"], "%.1f" % (r["body_bytes"] / MB), "%.3f" % floor,
            "%s / %s" % (_f(quiet["median"], "%.3f"), _f(quiet["max"], "%.3f")),
            _f(quiet["median"] and quiet["median"] / floor, "%.2f"),
            "%s / %s" % (_f(loaded["median"], "%.3f"), _f(loaded["max"], "%.3f")),
            _f(quiet["cpu_net_median"], "%.2f"),
            "%.0f" % (r["peak_rss_bytes"] / MB), "%.2f" % (r["peak_rss_bytes"] / r["body_bytes"]),
            "%.0f" % (r["rss_between_bytes"] / MB),
            "%.1f" % r["latency_all"]["p50_ms"], "%.1f" % r["latency_all"]["p99_ms"],
            "%.1f" % r["latency_all"]["max_ms"],
            "%.2f" % (r["served"]["node"]["bytes"] / MB),
        ))
    parts = [rst_table(header, rows), ""]
    detail = ("nodes", "floor RSS MB", "daemon peak MB", "worker peak MB",
              "refreshes loaded+quiet", "fetch s loaded/quiet", "in-refresh p99/max ms",
              "requests", "serving CPU ms/request", "bytes served node/dcgm/ipmi/all")
    drows = []
    for r in results:
        served = r["served"]
        quiet, loaded = r["refresh_quiet"], r["refresh_loaded"]
        drows.append((
            r["nodes"], "%.0f" % (r["floor"]["peak_rss_bytes"] / MB),
            "%.0f" % (r["peak_rss_daemon_bytes"] / MB),
            "%.0f" % (r["peak_rss_children_bytes"] / MB),
            "%d+%d" % (loaded["count"], quiet["count"]),
            "%s / %s" % (_f(loaded["fetch_median"], "%.2f"), _f(quiet["fetch_median"], "%.2f")),
            "%.1f / %.1f" % (r["latency_refresh"]["p99_ms"], r["latency_refresh"]["max_ms"]),
            r["latency_raw"]["count"],
            "%.2f" % (r["serving_cpu_per_request_s"]["loaded"] * 1e3),
            "/".join(str(served[k]["bytes"]) for k in ("node", "dcgm", "ipmi", "(all)")),
        ))
    parts += [rst_table(detail, drows), ""]
    g = goals(results)
    if g:
        parts += [rst_table(("goal", "measured", "result"), g), ""]
    parts.append("Machine: %(nproc)s CPUs (%(cpu)s), %(ram_gib)s GiB RAM, Python %(python)s, "
                 "Linux %(kernel)s, msgspec %(msgspec)s, Twisted %(twisted)s." % info)
    parts.append(
        "Per size: %d refreshes (every %g s) with a client in a tight keep-alive loop on "
        "/targets?prom_job=%s (gap %g ms): the latency columns, corrected for coordinated "
        "omission, and 'loaded'; then %d refreshes with a light client (pausing %g ms between "
        "requests to prom_job=%s) that only sees when each ends: 'quiet', compared with the "
        "floor. "
        "Source: %s. "
        "Refresh = slurmrestd request received (or the command started) -> new data "
        "served. CPU s = the daemon's and "
        "its worker's CPU time in a quiet refresh, minus serving. RSS of the daemon and all "
        "its descendants sampled every %g ms. state_file: %s."
        % (args.refreshes, args.interval, args.poll_job, args.gap_ms, args.quiet_refreshes,
           args.quiet_gap_ms, args.quiet_job,
           "a stand-in command run per poll (url command:, stand_in_command.py: sendfile "
           "to the pipe; counted among the descendants)" if args.source == "command"
           else "a stand-in slurmrestd on a UNIX socket", args.sample_ms,
           "off" if args.no_state_file else "on, written after every refresh"))
    return "\n".join(parts)


def main(argv=None):
    """Run the benchmark; exit status 0 if every goal passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--interval", type=float, default=6.0)
    parser.add_argument("--poll-job", default="node")
    parser.add_argument("--quiet-refreshes", type=int, default=3)
    parser.add_argument("--quiet-job", default="ipmi")
    parser.add_argument("--quiet-gap-ms", type=float, default=20.0)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--floor-runs", type=int, default=3)
    parser.add_argument("--sample-ms", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to stay after the last refresh")
    parser.add_argument("--out", default=os.path.join(OUT, "results.json"))
    parser.add_argument("--source", choices=("slurmrestd", "command"), default="slurmrestd",
                        help="serve the body from a stand-in slurmrestd on a UNIX socket, "
                        "or print it from a stand-in command run per poll (command:)")
    parser.add_argument("--no-state-file", action="store_true",
                        help="run the daemon without state_file (it is on by default)")
    parser.add_argument("--daemon-argv", default="",
                        help="run this command instead of twistd slurm-sd (to compare "
                        "another build); {config} and {python} are replaced")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    os.makedirs(OUT, exist_ok=True)
    info = machine()
    procs = Procs()
    results = []
    started = time.monotonic()
    try:
        for nodes in sizes:
            results.append(run_size(nodes, args, procs))
    finally:
        procs.stop_all()
    text = report(results, info, args)
    print()
    print(text)
    print("\n(%.0f s in all)" % (time.monotonic() - started))
    with open(args.out, "w") as f:
        json.dump({"machine": info, "args": vars(args), "results": results,
                   "goals": goals(results)}, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".rst", "w") as f:
        f.write(text + "\n")
    return 0 if all(g[2] == "PASS" for g in goals(results)) else 1


if __name__ == "__main__":
    sys.exit(main())

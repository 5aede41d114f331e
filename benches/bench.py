#!/usr/bin/env python3
"""`make bench` / `lab bench`: every stage of the lab measured side by side with what users would
use instead, on this machine, in this run.

Run through benches/run.sh, which installs the peers (pip venv, apt) and builds `lab` in release
mode. Writes target/bench/results.json and target/bench/report.md and prints one table. Every
figure comes from a process started here and timed here; nothing is copied from an earlier run.

Ratios are "lab speed / peer speed": above 1 means `lab` is faster (for batch: peer time / lab time).
"""

import argparse
import datetime as dt
import glob
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # only `--help` runs without the venv (benches/run.sh); every measurement needs it
    psutil = None

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench"
WORK = OUT / "work"
LOGS = OUT / "logs"
CACHE = REPO / ".cache" / "bench"
SERVICES = REPO / "tests" / "services"
PEERS = REPO / "benches" / "peers"
VENV_PY = Path(sys.executable)

TOPIC_PREFIX = "yelp"
REVIEW_TOPIC = f"{TOPIC_PREFIX}.review"
CLEAN_REVIEW_TOPIC = f"{TOPIC_PREFIX}.review.clean"
PARTITIONS = 3


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Measuring a process: wall time, peak RSS of its whole process tree, CPU time.


class Run:
    def __init__(self, name, wall_s, peak_rss_mb, cpu_s, rc, out_path, err_path):
        self.name, self.wall_s, self.peak_rss_mb, self.cpu_s, self.rc = name, wall_s, peak_rss_mb, cpu_s, rc
        self.out_path, self.err_path = out_path, err_path
        self.broker_cpu_s = None  # CPU the broker spent while this ran (it shares the 2 cores)

    def stdout(self):
        return self.out_path.read_text(errors="replace") if self.out_path else ""

    def last_json(self):
        """The last stdout line that parses as JSON (the stages print a report there)."""
        text = self.stdout().strip()
        try:
            return json.loads(text)
        except ValueError:
            pass
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise RuntimeError(f"{self.name}: no JSON report on stdout (see {self.out_path})")


def proc_field(pid, path, key):
    """A `key: N kB` field of /proc/PID/<path>, in MiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


OWN_CMDLINE = psutil.Process().cmdline() if psutil else []


def process_tree(proc, adopt=None):
    """The processes of the measured run: the root once it has exec'd (between fork and exec it is
    a copy of this Python, whose command line is this script's) and all its descendants. Whatever
    the root runs counts, not only `argv`: spark-submit execs spark-class, which execs the JVM, and
    a check for `argv` missed the JVM (PySpark's peak read 80 MB). Finding the descendants reads
    every process's /proc/PID/stat (this kernel has no /proc/PID/task/TID/children): about 1 ms
    with 70 processes, more with the bench's services up.

    `adopt` ([`Adopted`]): processes the run started that left its tree (a server that
    daemonizes: `lab demo`'s throwaway PostgreSQL, whose postmaster pg_ctl leaves to init); they
    and their descendants count too."""
    try:
        procs = proc.children(recursive=True) if adopt is None else adopt.descendants(proc)
        if proc.cmdline() != OWN_CMDLINE:
            procs.append(proc)
    except psutil.Error:
        return []
    return procs


class Adopted:
    """Processes a run started that left its tree, found by the pid files they write (a glob):
    a server that daemonizes, like `lab demo`'s throwaway PostgreSQL, whose postmaster pg_ctl
    leaves to init. Reading every process's command line instead took 18 ms per look, and
    walking all of /proc with psutil.process_iter 4 ms."""

    def __init__(self, pidfiles):
        self.pidfiles = pidfiles

    def roots(self):
        pids = set()
        for f in glob.glob(self.pidfiles):
            try:
                pid = int(Path(f).read_text().split("\n", 1)[0])
            except (OSError, ValueError):
                continue
            # A negative pid is a single-user backend (initdb's), a child of the run's anyway.
            if pid > 0:
                pids.add(pid)
        return pids

    def descendants(self, proc):
        """`proc`'s descendants, the adopted processes and theirs."""
        found = {q.pid: q for q in proc.children(recursive=True)}
        for pid in self.roots() - {proc.pid}:
            try:
                root = psutil.Process(pid)
                found[pid] = root
                found.update((q.pid, q) for q in root.children(recursive=True))
            except psutil.Error:
                pass
        return list(found.values())


def sample_memory(procs, hwm, with_pss, root):
    """Records each process's own peak RSS (VmHWM) in `hwm` (pid → MiB) and returns the tree's
    current memory when `with_pss`: the PSS of each process but the root (shared pages split
    between the processes sharing them: a JVM's forked Python workers, PostgreSQL's backends),
    plus the root's RSS. PSS walks a process's page tables: for the root, often the largest, that cost the most
    (over `lab demo` on 1M reviews the sampler used 1.2 s of CPU with the root's PSS, 0.8 s with
    its RSS)."""
    total = 0
    for p in procs:
        hwm[p.pid] = max(hwm.get(p.pid, 0), proc_field(p.pid, "status", "VmHWM:"))
        if with_pss:
            total += proc_field(p.pid, "status", "VmRSS:") if p.pid == root else proc_field(
                p.pid, "smaps_rollup", "Pss:")
    return total


class TimedOut(RuntimeError):
    def __init__(self, name, wall_s, peak_rss_mb):
        super().__init__(f"{name} stopped after {wall_s:.0f} s (time limit)")
        self.wall_s, self.peak_rss_mb = wall_s, peak_rss_mb


def measure(name, cmd, env=None, stdout_to_null=False, cwd=None, timeout=1800, sample_s=0.02, adopt=None):
    """Runs cmd to completion; fails loudly on a non-zero exit (a failed run has no figures).
    The root's own peak RSS is read every `sample_s`; every 10th sample the tree is looked for
    again, each of its processes' peak read and its PSS summed. Finding the tree every sample cost
    1.2 ms of CPU per 20 ms, and took `lab batch` on 5M reviews from 6.2–6.7 s to 6.8–7.9 s (DuckDB
    9.3–9.6 s to 9.7–10.2 s): the sampler must not take the CPU of the run it measures. A build's
    many short-lived processes are sampled every second (`sample_s`)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path = None if stdout_to_null else LOGS / f"{name}.out"
    err_path = LOGS / f"{name}.err"
    log(f"run {name}: {' '.join(str(c) for c in cmd)}")
    broker_before = broker_cpu()
    load_before = os.getloadavg()[0]
    argv = [str(c) for c in cmd]
    with open(out_path or os.devnull, "wb") as out, open(err_path, "wb") as err:
        machine_before = machine_cpu()
        sampler_before = time.process_time()
        started = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd or WORK, start_new_session=True)
        try:
            proc = psutil.Process(p.pid)
        except psutil.Error:
            proc = None
        hwm = {}
        tree = []
        # `adopt`: a glob of the pid files of processes the run leaves outside its tree, `{pid}`
        # standing for the root's pid (see `Adopted`).
        adopted = Adopted(adopt.format(pid=p.pid)) if adopt else None
        peak_pss = 0
        samples = 0
        rusage = None
        status = 0
        timed_out = False
        while True:
            pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if proc is not None:
                # Every 10th sample (0.2 s by default), and until the root has exec'd: the tree,
                # each process's own peak (VmHWM), and PSS (a walk of the page tables, which holds
                # a process's memory map lock against its allocator) for a tree of processes only
                # (a single process's own peak is exact). Between, only the root's own peak.
                every_tenth = samples % 10 == 0
                if every_tenth or not tree:
                    tree = process_tree(proc, adopted)
                sampled = tree if every_tenth else [q for q in tree if q.pid == p.pid]
                peak_pss = max(peak_pss, sample_memory(sampled, hwm, every_tenth and len(tree) > 1, p.pid))
                samples += 1
            if time.perf_counter() - started > timeout:
                os.killpg(p.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(sample_s)
        wall = time.perf_counter() - started
        sampler_cpu = time.process_time() - sampler_before
        machine_after = machine_cpu()
        p.returncode = os.waitstatus_to_exitcode(status)
    # Peak memory of the process tree: the largest PSS sum seen (process trees: JVM + Python
    # workers forked from one parent share pages), or the largest single process's own peak RSS
    # (exact for a single process, which samples can miss). Not ru_maxrss: Linux carries the
    # pre-exec (Python) image's peak into it.
    peak_mb = max([peak_pss, *hwm.values()])
    cpu = rusage.ru_utime + rusage.ru_stime
    run = Run(name, wall, peak_mb, cpu, p.returncode, out_path, err_path)
    run.root_peak_mb = hwm.get(p.pid, 0)  # the root process's own peak, its tree's apart
    broker_after = broker_cpu()
    if broker_before is not None and broker_after is not None:
        run.broker_cpu_s = broker_after - broker_before
    # What else used the machine meanwhile: a run that got fewer cores than it can use shows here
    # whether something on this machine took them (others, the sampler) or the host did (steal).
    busy = machine_after[0] - machine_before[0]
    others = busy - cpu - (run.broker_cpu_s or 0) - sampler_cpu
    RUNS.append({"name": name, "rc": p.returncode, "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
                 "peak_rss_mb": round(peak_mb, 1), "root_peak_rss_mb": round(run.root_peak_mb, 1),
                 "broker_cpu_s": run.broker_cpu_s,
                 "machine_busy_s": round(busy, 2), "others_cpu_s": round(others, 2),
                 "sampler_cpu_s": round(sampler_cpu, 2),
                 "steal_s": round(machine_after[1] - machine_before[1], 2),
                 "loadavg_1m_before": load_before, "loadavg_1m_after": os.getloadavg()[0]})
    if timed_out:
        log(f"  {name}: stopped at the time limit ({wall:.0f} s), peak RSS {peak_mb:.0f} MB")
        raise TimedOut(name, wall, peak_mb)
    if p.returncode != 0:
        tail = err_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} exited with {p.returncode} after {wall:.1f} s:\n{tail}")
    broker = f", broker {run.broker_cpu_s:.1f} s CPU" if run.broker_cpu_s is not None else ""
    log(f"  {name}: {wall:.2f} s wall, {cpu:.1f} s CPU, peak RSS {peak_mb:.0f} MB{broker}, "
        f"other processes {others:.1f} s CPU")
    return run


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat's `cpu` line: busy is
    user, nice, system, irq and softirq (guest time is already in user); steal is what the host
    took from this machine's virtual CPUs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def broker_cpu():
    """CPU seconds used so far by the running broker (noida-db), or None when none runs."""
    try:
        pid = int((Path(os.environ["LAB_SERVICES_DIR"]) / "kafka.pid").read_text().strip())
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except (OSError, ValueError, psutil.Error):
        return None


def broker_idle_cores(seconds=3.0):
    """Cores the broker keeps busy while no client talks to it, or None when none runs.

    noida-db rewrites its whole in-memory state (to its JSON snapshot) in a background thread; once
    it holds a million records that thread alone was measured at a full core, idle or not. On two
    cores that is half the machine the stage under measurement does not get.
    """
    before = broker_cpu()
    time.sleep(seconds)
    after = broker_cpu()
    if before is None or after is None:
        return None
    return round((after - before) / seconds, 2)


def quiet(cmd, env=None, check=True, name=None):
    """An untimed helper command (service start/stop); output goes to the logs dir."""
    LOGS.mkdir(parents=True, exist_ok=True)
    name = name or Path(str(cmd[0])).name
    with open(LOGS / "services.log", "ab") as f:
        f.write(f"\n$ {' '.join(str(c) for c in cmd)}\n".encode())
        f.flush()
        r = subprocess.run([str(c) for c in cmd], stdout=f, stderr=f, env=env, cwd=WORK)
    if check and r.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {r.returncode}); see {LOGS / 'services.log'}")
    return r.returncode


# ---------------------------------------------------------------------------------------------
# Environment and services (tests/services/*.sh with the bench's own ports and state dir).


def clean_env(**extra):
    """The caller's environment minus any LAB_* setting that could point `lab` elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_") or k.startswith("LAB_TEST_")}
    env["LAB_SERVICES_DIR"] = os.environ["LAB_SERVICES_DIR"]
    env["NO_COLOR"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def port(name):
    return int(os.environ[name])


def brokers():
    return f"127.0.0.1:{port('LAB_TEST_KAFKA_PORT')}"


def hdfs_url():
    return f"hdfs://127.0.0.1:{port('LAB_TEST_HDFS_PORT')}"


def pg_url():
    return f"host=127.0.0.1 port={port('LAB_TEST_PG_PORT')} user=postgres dbname=postgres"


STARTED = []  # services this run started and must stop


def service(script, action):
    quiet([SERVICES / script, action], env=clean_env(LAB_VENV=VENV_PY.parent.parent))
    if action == "start" and script not in STARTED:
        STARTED.append(script)
    elif action == "stop" and script in STARTED:
        STARTED.remove(script)
    if action == "stop" and script == "kafka.sh":
        wait_port_closed(port("LAB_TEST_KAFKA_PORT"))


def port_open(p):
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", p)) == 0


def wait_port_closed(p, timeout=60):
    """A killed broker holding gigabytes takes a moment to release its memory and its port."""
    deadline = time.perf_counter() + timeout
    while port_open(p):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"127.0.0.1:{p} still in use {timeout} s after the service was stopped")
        time.sleep(0.2)


def stop_all():
    for script in list(reversed(STARTED)):
        try:
            service(script, "stop")
        except Exception as e:  # keep stopping the others
            log(f"could not stop {script}: {e}")


def fresh_broker():
    """A new, empty broker (noida-db keeps everything in memory: never reuse one between runs)."""
    service("kafka.sh", "start")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers()})
    for f in admin.create_topics([NewTopic(REVIEW_TOPIC, PARTITIONS, 1)]).values():
        f.result(15)


def topic_messages(topic, missing_ok=False):
    """Messages in a topic (sum of high watermarks): proof that a producer delivered everything.
    With `missing_ok`, a topic not created yet holds 0."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers(), "group.id": "bench-watermarks"})
    try:
        meta = c.list_topics(topic, timeout=15)
        if missing_ok and (topic not in meta.topics or meta.topics[topic].error is not None):
            return 0
        total = 0
        for p in meta.topics[topic].partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            total += high - low
        return total
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Results


ROWS = []
EXTRA = {}
RUNS = []  # every measured process, in order


def fmt_rate(msgs_s, mb_s=None):
    s = f"{msgs_s / 1000:,.0f}k msg/s" if msgs_s >= 10000 else f"{msgs_s:,.0f} msg/s"
    return s + (f", {mb_s:,.0f} MB/s" if mb_s is not None else "")


def fmt_size(n):
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def add_row(stage, size, lab, lab_fig, peer=None, peer_fig=None, ratio=None, target=None, ok=None,
            detail=None):
    row = {
        "stage": stage,
        "data": size,
        "lab": lab_fig,
        "peer": peer or "—",
        "peer_figure": peer_fig or "—",
        "ratio": None if ratio is None else round(ratio, 2),
        "target": target or "—",
        "result": "—" if ok is None else ("pass" if ok else "short"),
        "detail": detail or {},
    }
    ROWS.append(row)
    shown = f"{ratio:.2f}×" if ratio is not None else ""
    log(f"ROW {stage} [{size}] lab {lab_fig} | {row['peer']} {row['peer_figure']} {shown} {row['result']}")


# ---------------------------------------------------------------------------------------------
# Stages


def dataset_dir(state, reviews, seed):
    # The directory `lab demo --reviews N --seed S` generates into (and reuses) under its state dir.
    return state / "datasets" / f"generated-{reviews}-seed{seed}"


def review_file(data_dir):
    return data_dir / "yelp_academic_dataset_review.json"


def bench_generator(lab, reviews, seed, state):
    """Generates the end-to-end dataset (the demo's own invalid rate) and times it."""
    out = dataset_dir(state, reviews, seed)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run = measure(f"generate-{reviews}", [lab, "dataset", "generate", "--out", out, "--reviews", reviews,
                                          "--seed", seed, "--invalid-rate", "0.001"], env=clean_env())
    size_mb = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    add_row("generator", fmt_size(reviews) + " reviews", "lab dataset generate",
            f"{reviews / run.wall_s / 1000:,.0f}k reviews/s ({size_mb / run.wall_s:,.0f} MB/s)",
            detail={"wall_s": run.wall_s, "reviews_per_s": reviews / run.wall_s, "bytes_mb": size_mb,
                    "peak_rss_mb": run.peak_rss_mb})
    return out


def bench_e2e(lab, reviews, seed, state, parquet=False, name="e2e"):
    cmd = [lab, "--state-dir", state, "demo", "--headless", "--reviews", reviews, "--seed", seed]
    if parquet:
        cmd.append("--parquet")
    # The demo's throwaway PostgreSQL counts: its data directory is `<temp dir>/lab-pg-<demo's
    # pid>-<random>/data` (src/pg/throwaway.rs), where the postmaster writes its pid.
    pidfiles = os.path.join(tempfile.gettempdir(), "lab-pg-{pid}-*", "data", "postmaster.pid")
    run = measure(f"{name}-{reviews}", cmd, env=clean_env(), adopt=pidfiles)
    summary = run.last_json()
    t = summary["timings_ms"]
    stream_s = t["stream"] / 1000
    detail = {
        "wall_s": run.wall_s,
        # With its throwaway PostgreSQL (see `measure`'s adopt); `lab demo` alone: the next.
        "peak_rss_mb": run.peak_rss_mb,
        "lab_peak_rss_mb": run.root_peak_mb,
        "cpu_s": run.cpu_s,
        "timings_ms": t,
        "produced": summary["producer"]["sent"],
        "raw_zone_records": summary["consumer"]["records_written"],
        "dlq": summary["dlq"],
        "serving_rows": summary["serving_rows"],
        "serving": summary["serving"],
        # The batch's two parts: DataFusion's SQL, and the load into the throwaway PostgreSQL.
        "batch_compute_ms": summary["batch"]["compute_ms"],
        "batch_load_ms": summary["batch"]["load_ms"],
        "stream_msgs_per_s": summary["producer"]["sent"] / stream_s if stream_s else None,
        "producer_msgs_per_s": summary["producer"]["sent"] / (summary["producer"]["elapsed_ms"] / 1000),
    }
    return run, summary, detail


def bench_batch(lab, raw_zone, reviews, pyspark_limit_s):
    size = fmt_size(reviews) + " reviews"
    results = {}
    out_root = WORK / f"batch-{reviews}"
    if out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True)
    # `lab batch` takes the raw zone's root and reads its topic prefix's part of it
    # (`<root>/<prefix>/<entity>/…`); the peers are given that part directly.
    prefix_zone = Path(raw_zone) / TOPIC_PREFIX
    # PySpark is the slowest and the first to run out of a 20-minute budget; DuckDB and lab first.
    engines = [
        ("lab", [lab, "--state-dir", WORK / "state-batch", "--raw-zone", raw_zone, "batch", "--json",
                 "--parquet-out", out_root / "lab"]),
        ("duckdb", [VENV_PY, PEERS / "batch_duckdb.py", prefix_zone, out_root / "duckdb"]),
        # 8g: with 4g, 5M reviews failed with AGGREGATE_OUT_OF_MEMORY after 9 minutes.
        ("pyspark", [VENV_PY.parent / "spark-submit", "--master", "local[2]", "--driver-memory", "8g",
                     "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
                     PEERS / "batch_pyspark.py", prefix_zone, out_root / "pyspark"]),
    ]
    spark_env = clean_env(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=VENV_PY,
                          SPARK_HOME=spark_home())
    for engine, cmd in engines:
        # The whole bench must fit in 20 minutes: PySpark gets a time limit, and a run stopped
        # there is reported as "more than" (the ratio then is a lower bound).
        limit = pyspark_limit_s if engine == "pyspark" else 1800
        try:
            run = measure(f"batch-{engine}-{reviews}", cmd, timeout=limit,
                          env=spark_env if engine == "pyspark" else clean_env())
        except TimedOut as t:
            results[engine] = {"wall_s": t.wall_s, "peak_rss_mb": t.peak_rss_mb, "timed_out": True}
            continue
        except RuntimeError as e:
            if engine == "lab":
                raise
            # A peer that fails (PySpark out of memory, say) is a finding, not the end of the stage.
            results[engine] = {"failed": str(e).splitlines()[0]}
            continue
        results[engine] = {"wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb, "cpu_s": run.cpu_s,
                           "rows_in": run.last_json().get("rows_in"),
                           "tables": output_counts(out_root / engine)}
    # Same answer from every engine, or the timing means nothing.
    ref = results["lab"]["tables"]
    for engine, r in results.items():
        if r.get("timed_out") or r.get("failed"):
            continue
        if r["tables"] != ref or r["rows_in"] != results["lab"]["rows_in"]:
            raise RuntimeError(f"batch {reviews}: {engine} produced {r['tables']} (rows_in {r['rows_in']}), "
                               f"lab produced {ref} (rows_in {results['lab']['rows_in']})")
    lab_r = results["lab"]
    lab_fig = f"{lab_r['wall_s']:.2f} s, {lab_r['peak_rss_mb']:,.0f} MB"
    for engine, target, need in (("pyspark", "≥ 5× (time ≤ 1/5)", 5.0), ("duckdb", "time ≤ 1.5× (≥ 0.67×)", 1 / 1.5)):
        r = results[engine]
        peer = "PySpark local[2]" if engine == "pyspark" else "DuckDB (Python)"
        if r.get("failed"):
            add_row("batch (serving SQL → Parquet)", size, "lab batch (DataFusion)", lab_fig, peer,
                    f"failed: {r['failed'][:80]}", None, target, None, detail={"lab": lab_r, engine: r})
            continue
        ratio = r["wall_s"] / lab_r["wall_s"]
        fig = f"{r['wall_s']:.2f} s, {r['peak_rss_mb']:,.0f} MB"
        if r.get("timed_out"):
            # Unfinished: its time is more than the limit, so the ratio is at least this.
            fig = f"> {r['wall_s']:.0f} s (stopped), {r['peak_rss_mb']:,.0f} MB"
            ok = True if ratio >= need else None
        else:
            ok = ratio >= need
        add_row("batch (serving SQL → Parquet)", size, "lab batch (DataFusion)", lab_fig, peer,
                fig, ratio, target, ok, detail={"lab": lab_r, engine: r})
        if r.get("timed_out"):
            ROWS[-1]["ratio_is_lower_bound"] = True
        elif engine == "duckdb":
            # The guide's and issue #21's bar: faster than DuckDB, in at most 1.5x its memory.
            memory = lab_r["peak_rss_mb"] / max(r["peak_rss_mb"], 1)
            add_row("batch (serving SQL → Parquet)", size, "lab batch (DataFusion)", lab_fig, peer,
                    f"{fig} (lab: {memory:.2f}× its memory)", ratio, "time ≤ 1.0×, memory ≤ 1.5× (issue #21)",
                    ratio >= 1 and memory <= 1.5, detail={"memory_ratio": round(memory, 2)})
    EXTRA[f"batch_{reviews}"] = results


def output_counts(out_dir):
    """Rows per serving table in an engine's Parquet output (a file or a Spark directory)."""
    import pyarrow.dataset as ds

    counts = {}
    for name in ("business_summary", "business_daily", "city_category_top", "user_summary"):
        path = out_dir / f"{name}.parquet"
        if not path.exists():
            path = out_dir / name
        counts[name] = ds.dataset(str(path), format="parquet").count_rows()
    return counts


def spark_home():
    import pyspark

    return os.path.dirname(pyspark.__file__)


def bench_producer(lab, data_dir, reviews, kafka_python_reviews):
    reviews_file = review_file(data_dir)
    file_bytes = reviews_file.stat().st_size
    lines = reviews
    work = WORK / "producer"
    work.mkdir(parents=True, exist_ok=True)
    subset = reviews_file
    if kafka_python_reviews < reviews:
        subset = work / f"reviews-{kafka_python_reviews}.json"
        with open(reviews_file, "rb") as src, open(subset, "wb") as dst:
            for i, line in enumerate(src):
                if i >= kafka_python_reviews:
                    break
                dst.write(line)
    # The same records as `lab produce` sends, keyed as it keys them (the business id), for kcat -K:
    # keys spread the records over every partition where kcat without them fills one at a time.
    keyed = work / "reviews-keyed.txt"
    if not keyed.exists() or keyed.stat().st_mtime < reviews_file.stat().st_mtime:
        with open(reviews_file, "rb") as src, open(keyed, "wb") as dst:
            for line in src:
                try:
                    key = json.loads(line).get("business_id") or ""
                except ValueError:
                    key = ""
                dst.write(key.encode() + b"\t" + line)
    runs = {}
    peers = [
        ("lab", [lab, "--state-dir", work / "state", "--brokers", brokers(), "--topic-prefix", TOPIC_PREFIX,
                 "produce", "--data", data_dir, "--entities", "review", "--partitions", PARTITIONS], reviews_file),
        ("kcat", ["kcat", "-P", "-b", brokers(), "-t", REVIEW_TOPIC, "-l", reviews_file], reviews_file),
        # The same delivery settings as `lab produce` on this loopback broker (idempotent, acks=all,
        # linger 20 ms, uncompressed: src/pipeline/kafka.rs compression_for), no keys: how much of the
        # gap to plain kcat is those settings rather than the code around them.
        ("kcat-same", ["kcat", "-P", "-b", brokers(), "-t", REVIEW_TOPIC, "-X", "enable.idempotence=true",
                       "-X", "acks=all", "-X", "linger.ms=20", "-X", "batch.size=1000000", "-l", reviews_file],
         reviews_file),
        # The same with lab's keys (the business id): the records lab sends, key for key.
        ("kcat-keyed", ["kcat", "-P", "-b", brokers(), "-t", REVIEW_TOPIC, "-K", "\t", "-X", "enable.idempotence=true",
                        "-X", "acks=all", "-X", "linger.ms=20", "-X", "batch.size=1000000", "-l", keyed],
         reviews_file),
        # The same plus lz4, what `lab produce` uses for a broker on another machine: what lz4 costs.
        ("kcat-lz4", ["kcat", "-P", "-b", brokers(), "-t", REVIEW_TOPIC, "-z", "lz4", "-X", "enable.idempotence=true",
                      "-X", "acks=all", "-X", "linger.ms=20", "-X", "batch.size=1000000", "-l", reviews_file],
         reviews_file),
        ("confluent-kafka", [VENV_PY, PEERS / "produce_confluent.py", reviews_file, REVIEW_TOPIC, brokers()],
         reviews_file),
        ("kafka-python", [VENV_PY, PEERS / "produce_kafka_python.py", subset, REVIEW_TOPIC, brokers()], subset),
    ]
    for name, cmd, src in peers:
        fresh_broker()
        try:
            run = measure(f"produce-{name}", cmd, env=clean_env())
            n = sum(1 for _ in open(src, "rb")) if src != reviews_file else lines
            got = topic_messages(REVIEW_TOPIC)
            if got < n - n // 500:  # kafka-python skips unparseable lines (0.1 % invalid ones)
                raise RuntimeError(f"produce-{name}: {got} of {n} messages reached the broker")
            size = src.stat().st_size
            runs[name] = {"wall_s": run.wall_s, "messages": got, "bytes": size, "cpu_s": run.cpu_s,
                          "peak_rss_mb": run.peak_rss_mb, "broker_cpu_s": run.broker_cpu_s,
                          "msgs_per_s": got / run.wall_s, "mb_per_s": size / 1e6 / run.wall_s}
        finally:
            service("kafka.sh", "stop")
    lab_r = runs["lab"]
    lab_fig = fmt_rate(lab_r["msgs_per_s"], lab_r["mb_per_s"])
    targets = {"kafka-python": ("≥ 20×", 20.0), "kcat": ("≥ 0.8×", 0.8), "confluent-kafka": (None, None),
               "kcat-same": ("≥ 1.0×", 1.0), "kcat-keyed": (None, None), "kcat-lz4": (None, None)}
    for peer in ("kafka-python", "confluent-kafka", "kcat", "kcat-same", "kcat-keyed", "kcat-lz4"):
        r = runs[peer]
        ratio = lab_r["msgs_per_s"] / r["msgs_per_s"]
        target, need = targets[peer]
        peer_name = {"kcat": "kcat -P", "kafka-python": "kafka-python (classic lab)",
                     "confluent-kafka": "confluent-kafka (Python)",
                     "kcat-same": "kcat -P with lab's settings here (idempotent, acks=all, no lz4 on loopback)",
                     "kcat-keyed": "kcat -P with lab's settings and keys (-K: each review's business id)",
                     "kcat-lz4": "kcat -P with lab's settings for a remote broker (the same + lz4)"}[peer]
        size = fmt_size(r["messages"]) + " reviews"
        if r["messages"] != lab_r["messages"]:
            size = f"{fmt_size(lab_r['messages'])} vs {fmt_size(r['messages'])} reviews"
        add_row("producer → broker", size, "lab produce", lab_fig, peer_name,
                fmt_rate(r["msgs_per_s"], r["mb_per_s"]), ratio, target,
                None if need is None else ratio >= need, detail={"lab": lab_r, peer: r})
    EXTRA["producer"] = runs
    return file_bytes


def bench_consumer(lab, data_dir, reviews):
    """Raw + clean topics on one broker, then kcat -C and `lab consume` (local, HDFS) read the clean topic."""
    work = WORK / "consumer"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    fresh_broker()
    common = [lab, "--state-dir", work / "state", "--brokers", brokers(), "--topic-prefix", TOPIC_PREFIX]
    measure("consumer-setup-produce", common + ["produce", "--data", data_dir, "--entities", "review",
                                                  "--partitions", PARTITIONS], env=clean_env())
    idle_before_transform = broker_idle_cores()
    tr = measure("transform", common + ["transform", "--until-caught-up", "--group", "bench-transform"],
                 env=clean_env())
    treport = tr.last_json()
    # Not the watermarks: the transform writes in transactions, whose commit markers take offsets.
    clean = treport["clean"]
    consumed = treport["consumed"]
    # Apart: the time to the first record (joining the group, then a first fetch that this broker
    # answers with the whole backlog) and the rate from there, as the transform measured them.
    first_s = (treport.get("first_record_ms") or 0) / 1000
    after_first = consumed / max(treport["elapsed_ms"] / 1000 - first_s, 1e-3)
    add_row("transform (raw → clean topic)", fmt_size(consumed) + " reviews", "lab transform",
            fmt_rate(consumed / tr.wall_s) + f" ({first_s:.1f} s to the first record, "
            f"then {fmt_rate(after_first)})", target="≥ 200k msg/s (issue #21)",
            ok=consumed / tr.wall_s >= 200_000,
            detail={"wall_s": tr.wall_s, "cpu_s": tr.cpu_s, "report": treport, "peak_rss_mb": tr.peak_rss_mb,
                    "msgs_per_s_after_first_record": after_first, "broker_cpu_s": tr.broker_cpu_s,
                    "broker_idle_cores_before": idle_before_transform})
    EXTRA["broker_idle_cores"] = {"before transform": idle_before_transform,
                                  "before kcat -C": broker_idle_cores()}
    # kcat -C: read everything to the end of every partition, output discarded.
    kc = measure("consume-kcat", ["kcat", "-C", "-b", brokers(), "-t", CLEAN_REVIEW_TOPIC, "-o", "beginning",
                                  "-e", "-q", "-X", "receive.message.max.bytes=1000000000"],
                 env=clean_env(), stdout_to_null=True)
    kcat_rate = clean / kc.wall_s
    results = {"kcat": {"wall_s": kc.wall_s, "messages": clean, "msgs_per_s": kcat_rate, "cpu_s": kc.cpu_s,
                        "broker_cpu_s": kc.broker_cpu_s}}
    zones = [("local disk", work / "raw", "lab-consume-local")]
    hdfs_ok = True
    try:
        service("hdfs.sh", "start")
        zones.append(("HDFS", f"{hdfs_url()}/bench/raw", "lab-consume-hdfs"))
    except RuntimeError as e:
        hdfs_ok = False
        log(f"HDFS did not start, consumer → HDFS not measured: {e}")
    for label, zone, group in zones:
        run = measure(f"consume-{'hdfs' if label == 'HDFS' else 'local'}",
                      common + ["--raw-zone", zone, "consume", "--until-caught-up", "--group", group],
                      env=clean_env())
        report = run.last_json()
        written = report["records_written"] + report["dead_lettered"]
        if written != clean:
            raise RuntimeError(f"lab consume ({label}) wrote {written} of {clean} records")
        rate = written / run.wall_s
        results[label] = {"wall_s": run.wall_s, "messages": written, "msgs_per_s": rate, "cpu_s": run.cpu_s,
                          "broker_cpu_s": run.broker_cpu_s,
                          "peak_rss_mb": run.peak_rss_mb, "files": report["files_written"]}
        ratio = rate / kcat_rate
        add_row(f"consumer → Parquet ({label})", fmt_size(clean) + " reviews", "lab consume",
                fmt_rate(rate) + f", {run.peak_rss_mb:,.0f} MB", "kcat -C (to /dev/null)", fmt_rate(kcat_rate),
                ratio, "≥ 0.5×", ratio >= 0.5, detail={"lab": results[label], "kcat": results["kcat"]})
    EXTRA["consumer"] = results
    return hdfs_ok


# What the TUI's Overview tiles say once a service is reached and polled (DEGRADED: reached, with a
# complaint, e.g. an Airflow DAG file that fails to import).
SERVICE_TILES = ("Kafka", "HDFS", "Spark", "Airflow", "PostgreSQL")


def tiles_polled(screen):
    """The services whose Overview tile shows them reached (UP or DEGRADED)."""
    return [s for s in SERVICE_TILES if re.search(rf"\b{s} (UP|DEGRADED)\b", screen)]


def kafka_write_rate(screen):
    """The records/s the Overview's Kafka tile shows being written (None when not shown)."""
    m = re.search(r"write ([\d,]+)/s", screen)
    return int(m.group(1).replace(",", "")) if m else None


CENSUS_WAIT_S = 120


def census_pending(screen):
    """The lab's topics whose markers the monitor's census has not finished counting, as the Kafka
    view's Topics table shows them ("–" not read yet, "≥N" still reading); None when the table
    lists none of them (an empty broker)."""
    rows = re.findall(rf"^\W*({re.escape(TOPIC_PREFIX)}\.\S+)\s+\d+\s+\S+\s+[\d,]+\s+(\S+)\s", screen, re.M)
    if not rows:
        return None
    return [name for name, markers in rows if not re.fullmatch(r"[\d,]+", markers)]


def sample_tui(proc, seconds):
    """CPU share of a core and the largest RSS of the monitor's process over `seconds`."""
    c0 = proc.cpu_times()
    t0 = time.perf_counter()
    rss = []
    while time.perf_counter() - t0 < seconds:
        rss.append(proc.memory_info().rss)
        time.sleep(0.5)
    c1 = proc.cpu_times()
    elapsed = time.perf_counter() - t0
    cpu = (c1.user + c1.system) - (c0.user + c0.system)
    return {"seconds": elapsed, "cpu_s": cpu, "cpu_pct": 100 * cpu / elapsed, "rss_mb": max(rss) / 2**20}


def bench_tui(lab, idle_s, data_dir, broker_desc, live_rate):
    """The monitor attached to every service of the lab (the broker, HDFS, Spark, Airflow and
    PostgreSQL from tests/services), in tmux: its first frame, then CPU and memory idle, then with
    a pipeline moving (`lab produce --rate`, `lab transform`, `lab consume` into HDFS). The saved
    screens prove what it showed: the run fails unless every service's tile says it was reached."""
    for script in ("postgres.sh", "spark.sh", "airflow.sh"):
        service(script, "start")
    sock = f"lab-bench-{os.getpid()}"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    state = WORK / "tui-state"
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    services_dir = Path(os.environ["LAB_SERVICES_DIR"])
    endpoints = {
        "LAB_KAFKA_BROKERS": brokers(), "LAB_PG_URL": pg_url(), "LAB_HDFS_URL": hdfs_url(),
        "LAB_HDFS_HTTP": f"http://127.0.0.1:{port('LAB_TEST_HDFS_HTTP_PORT')}",
        "LAB_RAW_ZONE": f"{hdfs_url()}/bench/raw", "LAB_TOPIC_PREFIX": TOPIC_PREFIX,
        "LAB_SPARK_MASTER": f"spark://127.0.0.1:{port('LAB_TEST_SPARK_PORT')}",
        "LAB_SPARK_UI": f"http://127.0.0.1:{port('LAB_TEST_SPARK_UI_PORT')}",
        "LAB_AIRFLOW_URL": f"http://127.0.0.1:{port('LAB_TEST_AIRFLOW_PORT')}", "LAB_AIRFLOW_USER": "admin",
        "LAB_AIRFLOW_PASSWORD_FILE": str(services_dir / "airflow" / "admin-password"),
    }
    env_args = [f"LAB_STATE_DIR={state}", f"LAB_SERVICES_DIR={services_dir}"] + \
        [f"{k}={v}" for k, v in endpoints.items()]
    # Quoted: the PostgreSQL URL has spaces (unquoted, the monitor got `host=127.0.0.1` alone and
    # showed PostgreSQL DOWN in every earlier run of this row).
    script = "exec env -u NO_COLOR " + " ".join(shlex.quote(a) for a in env_args) + f" {shlex.quote(str(lab))} tui"

    def capture():
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "mon"], capture_output=True, text=True).stdout

    def wait_screen(ok, seconds, what, name):
        deadline = time.perf_counter() + seconds
        screen = capture()
        while not ok(screen) and time.perf_counter() < deadline:
            time.sleep(0.2)
            screen = capture()
        (OUT / f"tui-screen-{name}.txt").write_text(screen)
        if not ok(screen):
            raise RuntimeError(f"the TUI did not show {what} within {seconds} s (screen: "
                               f"{OUT / f'tui-screen-{name}.txt'}):\n{screen}")
        return screen

    stages = []
    try:
        started = time.perf_counter()
        subprocess.run(tmux + ["new-session", "-d", "-s", "mon", "-x", "160", "-y", "48", "sh", "-c", script],
                       check=True, env=clean_env())
        first_frame = None
        while time.perf_counter() - started < 20:
            if "Overview" in capture():
                first_frame = time.perf_counter() - started
                break
            time.sleep(0.005)
        if first_frame is None:
            raise RuntimeError(f"the TUI drew nothing within 20 s:\n{capture()}")
        pid = int(subprocess.run(tmux + ["display-message", "-p", "-t", "mon", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout.strip())
        proc = psutil.Process(pid)
        # Every service reached and its first polls landed.
        wait_screen(lambda s: len(tiles_polled(s)) == len(SERVICE_TILES), 30, "every service reached", "idle")
        # Then the marker census's first pass: it reads every record of the lab's topics once (at
        # most 50,000 per 2 s), a one-time cost of attaching to a full broker, measured on its own
        # and not waited for past CENSUS_WAIT_S: the test broker answers a fetch with the whole
        # backlog, slower than the census's 1 s request timeout once it holds a million records.
        subprocess.run(tmux + ["send-keys", "-t", "mon", "3"], check=True)
        c0, t0 = proc.cpu_times(), time.perf_counter()
        screen = capture()
        while ("Topics (" not in screen or census_pending(screen)) and time.perf_counter() - t0 < CENSUS_WAIT_S:
            time.sleep(0.5)
            screen = capture()
        (OUT / "tui-screen-census.txt").write_text(screen)
        c1 = proc.cpu_times()
        census = {"seconds": time.perf_counter() - t0, "cpu_s": (c1.user + c1.system) - (c0.user + c0.system),
                  "pending": census_pending(screen) or []}
        subprocess.run(tmux + ["send-keys", "-t", "mon", "1"], check=True)
        time.sleep(2)
        idle = sample_tui(proc, idle_s)
        # A pipeline moving: the producer at a steady rate, the transform and the consumer following.
        common = [str(lab), "--state-dir", str(WORK / "tui-stages"), "--brokers", brokers(),
                  "--topic-prefix", TOPIC_PREFIX, "--raw-zone", f"{hdfs_url()}/bench/raw"]
        for name, args in (("produce", ["produce", "--data", str(data_dir), "--entities", "review",
                                        "--rate", str(live_rate)]),
                           # The consumer stage's groups: they start where that stage stopped, so
                           # they follow the producer instead of reading the backlog again.
                           ("transform", ["transform", "--group", "bench-transform"]),
                           # Files every 5 s (30 s by default), so the raw zone grows while measured.
                           ("consume", ["consume", "--group", "lab-consume-hdfs", "--roll-seconds", "5"])):
            err = open(LOGS / f"tui-live-{name}.err", "wb")
            stages.append((name, subprocess.Popen(common + args, stdout=subprocess.DEVNULL, stderr=err,
                                                  stdin=subprocess.DEVNULL, env=clean_env(),
                                                  start_new_session=True), err))
        clean_before = topic_messages(CLEAN_REVIEW_TOPIC, missing_ok=True)
        wait_screen(lambda s: (kafka_write_rate(s) or 0) > 0, 60, "records being written", "live")
        for name, p, _ in stages:
            if p.poll() is not None:
                raise RuntimeError(f"lab {name} exited ({p.returncode}) during the TUI run; see "
                                   f"{LOGS / f'tui-live-{name}.err'}")
        live = sample_tui(proc, idle_s)
        live_screen = capture()
        (OUT / "tui-screen-live.txt").write_text(live_screen)
        # From the broker, not from the monitor: the transform kept writing while it was measured.
        clean_grew = topic_messages(CLEAN_REVIEW_TOPIC, missing_ok=True) - clean_before
        if clean_grew <= 0:
            raise RuntimeError("the clean topic did not grow while the TUI was measured with a live pipeline")
        hwm_mb = proc_field(pid, "status", "VmHWM:") or None
        subprocess.run(tmux + ["send-keys", "-t", "mon", "q"], check=False)
        time.sleep(0.5)
    finally:
        for _name, p, err in stages:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            err.close()
        subprocess.run(tmux + ["kill-server"], check=False, capture_output=True)
    services = f"Kafka ({broker_desc}), HDFS, Spark, Airflow, PostgreSQL"
    add_row("TUI first frame", services, "lab tui", f"{first_frame * 1000:,.0f} ms", target="< 200 ms",
            ok=first_frame < 0.2, detail={"first_frame_ms": first_frame * 1000})
    done = "done" if not census["pending"] else f"{', '.join(census['pending'])} not counted yet"
    add_row("TUI marker census, first pass", services, "lab tui",
            f"{done} after {census['seconds']:.1f} s, {census['cpu_s']:.1f} s of CPU", detail=census)
    add_row(f"TUI idle CPU ({idle['seconds']:.0f} s)", services, "lab tui", f"{idle['cpu_pct']:.2f} % of a core",
            target="< 1 % (developers' guide)", ok=idle["cpu_pct"] < 1, detail=idle)
    add_row("TUI RSS", services, "lab tui", f"{idle['rss_mb']:,.1f} MB (peak {hwm_mb or idle['rss_mb']:,.1f} MB)",
            target="< 40 MB (developers' guide)", ok=(hwm_mb or idle["rss_mb"]) < 40,
            detail={"rss_mb": idle["rss_mb"], "hwm_mb": hwm_mb})
    live.update({"clean_records_written": clean_grew, "producer_rate": live_rate,
                 "kafka_write_rate_shown": kafka_write_rate(live_screen)})
    add_row(f"TUI with a pipeline moving ({live['seconds']:.0f} s)",
            services + f"; produce --rate {live_rate:,}, transform, consume → HDFS", "lab tui",
            f"{live['cpu_pct']:.2f} % of a core, {live['rss_mb']:,.1f} MB", detail=live)


# ---------------------------------------------------------------------------------------------
# The build: what a newcomer waits for, and what a user carries.


def bench_build(lab):
    """The cold build of `make demo` (`cargo build`, the dev profile, into an empty target dir;
    the crates already downloaded: the time is compiling, not the network) and the size of the
    binary under test, which run.sh builds as `cargo install` does (the release profile)."""
    quiet(["cargo", "fetch", "--locked", "--manifest-path", REPO / "Cargo.toml"], env=clean_env(), name="cargo-fetch")
    target = WORK / "cold-build-target"
    if target.exists():
        shutil.rmtree(target)
    env = clean_env(CARGO_TARGET_DIR=target)
    for k in ("CARGO_INCREMENTAL", "RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER", "RUSTFLAGS"):
        env.pop(k, None)  # what a newcomer's shell has: none of these
    run = measure("cold-build", ["cargo", "build", "--locked"], env=env, cwd=REPO, timeout=3600, sample_s=1.0)
    debug_mb = (target / "debug" / "lab").stat().st_size / 1e6
    shutil.rmtree(target, ignore_errors=True)
    add_row("cold build of `make demo` (cargo build)", f"{os.cpu_count()} cores", "cargo build",
            f"{run.wall_s / 60:.1f} min ({run.cpu_s / 60:.0f} min CPU), binary {debug_mb:,.0f} MB",
            target="≤ 12 min (issue #17)", ok=run.wall_s <= 720,
            detail={"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb,
                    "debug_binary_mb": debug_mb})
    built = os.environ.get("LAB_BIN_BUILT")  # set by run.sh when it built the binary itself
    size_mb = lab.stat().st_size / 1e6
    how = "release profile (cargo install)" if built == "release" else f"given as LAB_BIN ({lab.name})"
    add_row("installed binary size", how, "lab", f"{size_mb:,.1f} MB", target="≤ 100 MB (issue #17)",
            ok=size_mb <= 100 if built == "release" else None, detail={"bytes": lab.stat().st_size, "built": built})


# ---------------------------------------------------------------------------------------------
# Report


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = psutil.virtual_memory().total / 2**30

    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    import confluent_kafka
    import duckdb
    import kafka
    import pyspark

    commit = ver(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = ver(["git", "-C", str(REPO), "status", "--porcelain"]) not in ("", "unknown")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem, 1),
        "kernel": platform.release(),
        "os": ver(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "lab_commit": commit + ("+dirty" if dirty else ""),
        "rustc": ver(["rustc", "--version"]),
        "kcat": ver(["sh", "-c", r"kcat -V | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/\1 (librdkafka \2)/p'"]),
        "python": platform.python_version(),
        "kafka-python": kafka.__version__,
        "confluent-kafka": getattr(confluent_kafka, "__version__", "?") + " (librdkafka "
        + confluent_kafka.libversion()[0] + ")",
        "duckdb": duckdb.__version__,
        "pyspark": pyspark.__version__,
        "java": ver(["sh", "-c", "java -version 2>&1"]),
        "broker": "noida-db 0.2.3 (Kafka protocol, in-memory) on 127.0.0.1",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


COLUMNS = [("stage", "stage"), ("data", "data"), ("lab", "lab"), ("peer", "peer"), ("peer_figure", "peer figure"),
           ("ratio", "ratio"), ("target", "target"), ("result", "result")]


def cell(row, key):
    v = row[key]
    if key == "ratio":
        return "—" if v is None else ("≥ " if row.get("ratio_is_lower_bound") else "") + f"{v:.2f}×"
    return str(v)


def text_table(rows):
    widths = [max([len(title)] + [len(cell(r, k)) for r in rows]) for k, title in COLUMNS]
    lines = ["  ".join(t.ljust(w) for (_, t), w in zip(COLUMNS, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(cell(r, k).ljust(w) for (k, _), w in zip(COLUMNS, widths)))
    return "\n".join(lines)


def markdown_table(rows):
    lines = ["| " + " | ".join(t for _, t in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(cell(r, k).replace("|", "\\|") for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def write_report(info, args, elapsed, errors):
    OUT.mkdir(parents=True, exist_ok=True)
    results = {"machine": info, "args": vars(args), "elapsed_s": round(elapsed, 1), "rows": ROWS,
               "extra": EXTRA, "runs": RUNS, "errors": errors}
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    m = info
    md = [
        "# `make bench` report",
        "",
        f"{m['date']} · lab {m['lab_commit']} · whole run {elapsed / 60:.1f} min",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, Linux {m['kernel']}.",
        f"Peers: kcat {m['kcat']}; Python {m['python']}: kafka-python {m['kafka-python']}, confluent-kafka "
        f"{m['confluent-kafka']}, DuckDB {m['duckdb']}, PySpark {m['pyspark']} ({m['java']}). "
        f"Broker: {m['broker']}. {m['rustc']}.",
        "",
        "Ratio = lab speed / peer speed (above 1: lab is faster; batch: peer time / lab time). "
        "Figures are wall time of the whole process (start-up included) and peak RSS of its process tree. "
        "One run, no repetitions: expect a few per cent of noise.",
        "",
        markdown_table(ROWS),
        "",
    ]
    e2e = EXTRA.get("e2e")
    if e2e:
        md += ["## End to end (`lab demo --headless`)", "", "```json", json.dumps(e2e, indent=2), "```", ""]
    if RUNS:
        md += ["## Every timed run and what else used the machine meanwhile", "",
               "Cores = the run's CPU time / its wall time. Broker = the test broker's CPU, other = every "
               "other process's (this script's sampler apart), steal = CPU the host took from this "
               "machine; a run that got fewer cores than it can use shows here why.", "",
               "| run | wall s | CPU s | cores | broker CPU s | other CPU s | sampler CPU s | steal s |",
               "|---|---|---|---|---|---|---|---|"]
        for r in RUNS:
            cores = r["cpu_s"] / r["wall_s"] if r["wall_s"] else 0
            broker = "—" if r["broker_cpu_s"] is None else f"{r['broker_cpu_s']:.2f}"
            md.append(f"| {r['name']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {cores:.2f} | {broker} | "
                      f"{r['others_cpu_s']:.2f} | {r['sampler_cpu_s']:.2f} | {r['steal_s']:.2f} |")
        md.append("")
    if errors:
        md += ["## Stages that failed", ""] + [f"- {e}" for e in errors] + [""]
    md += ["Logs of every run: `target/bench/logs/`; all figures: `target/bench/results.json`.", ""]
    (OUT / "report.md").write_text("\n".join(md))


# ---------------------------------------------------------------------------------------------


# In this order; the cold build first, while nothing else runs.
STAGES = ("build", "generator", "e2e", "batch", "producer", "consumer", "tui")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab", default=os.environ.get("LAB_BIN"), help="the lab binary (release build)")
    ap.add_argument("--reviews", type=int, default=1_000_000, help="reviews for producer, consumer, end to end")
    ap.add_argument("--batch-sizes", default="1000000,5000000", help="review counts for the batch comparison")
    ap.add_argument("--kafka-python-reviews", type=int, default=None,
                    help="send only this many reviews with kafka-python (default: all; it is the slow one)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--pyspark-limit", type=float, default=420,
                    help="seconds a PySpark batch may take before it is stopped (reported as '> limit')")
    ap.add_argument("--tui-idle-seconds", type=float, default=30,
                    help="seconds the TUI is measured idle, and again with a pipeline moving")
    ap.add_argument("--tui-live-rate", type=int, default=2000,
                    help="records/s the producer sends while the TUI is measured with a pipeline moving")
    ap.add_argument("--only", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    args = ap.parse_args()
    if not args.lab or not Path(args.lab).is_file():
        ap.error("no lab binary: run through benches/run.sh (make bench) or pass --lab PATH")
    lab = Path(args.lab).resolve()
    only = set(args.only.split(","))
    unknown = only - set(STAGES)
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    batch_sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    WORK.mkdir(parents=True, exist_ok=True)
    if LOGS.exists():
        shutil.rmtree(LOGS)
    LOGS.mkdir(parents=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    info = machine()
    errors = []
    state = CACHE / f"state-{args.reviews}-seed{args.seed}"

    def stage(name, fn):
        try:
            return fn()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one failed stage must not hide the others' figures
            log(f"stage {name} FAILED: {e}")
            errors.append(f"{name}: {e}")
            return None
        finally:
            stop_all()

    try:
        if "build" in only:
            stage("build", lambda: bench_build(lab))
        data_dir = dataset_dir(state, args.reviews, args.seed)
        if "generator" in only or not review_file(data_dir).is_file():
            stage("generator", lambda: bench_generator(lab, args.reviews, args.seed, state))
        if "e2e" in only:
            def e2e():
                (state / "raw-zone.complete").unlink(missing_ok=True)  # the demo replaces its raw zone
                run, _summary, detail = bench_e2e(lab, args.reviews, args.seed, state)
                (state / "raw-zone.complete").write_text(json.dumps(detail, default=str))
                EXTRA["e2e"] = detail
                t = detail["timings_ms"]
                size = fmt_size(args.reviews) + " reviews"
                for target, limit, peak_mb in (("≤ 60 s (issue #7)", 60, None),
                                               ("≤ 20 s, ≤ 600 MB (developers' guide, issue #21)", 20, 600)):
                    add_row("end to end: lab demo --headless", size, "lab demo",
                            f"{run.wall_s:.1f} s, peak {run.peak_rss_mb:,.0f} MB with its PostgreSQL "
                            f"({run.root_peak_mb:,.0f} MB lab alone)", target=target,
                            ok=run.wall_s <= limit and (peak_mb is None or run.peak_rss_mb <= peak_mb),
                            detail=detail)
                add_row("  e2e: stream (produce→transform→consume)", size, "lab demo",
                        f"{t['stream'] / 1000:.1f} s, {fmt_rate(detail['stream_msgs_per_s'])}")
                add_row("  e2e: batch → PostgreSQL", size, "lab demo",
                        f"{t['batch'] / 1000:.1f} s (SQL {detail['batch_compute_ms'] / 1000:.1f} s, "
                        f"load {detail['batch_load_ms'] / 1000:.1f} s)")
                rows = sum(detail["serving_rows"].values())
                add_row("  e2e: load into PostgreSQL", f"{rows:,} rows", "lab demo",
                        f"{detail['batch_load_ms'] / 1000:.1f} s", target="≤ 3 s (issue #21)",
                        ok=detail["batch_load_ms"] <= 3000)
            stage("e2e", e2e)
        if "batch" in only:
            for n in batch_sizes:
                def batch(n=n):
                    bench_batch(lab, batch_raw_zone(lab, n, args.seed), n, args.pyspark_limit)
                stage(f"batch {n}", batch)
        if "producer" in only:
            stage("producer", lambda: bench_producer(lab, data_dir, args.reviews,
                                                     args.kafka_python_reviews or args.reviews))
        if "consumer" in only or "tui" in only:
            def consumer_and_tui():
                try:
                    if "consumer" in only:
                        bench_consumer(lab, data_dir, args.reviews)
                    else:
                        fresh_broker()
                        service("hdfs.sh", "start")
                except Exception as e:
                    errors.append(f"consumer: {e}")
                    log(f"stage consumer FAILED: {e}")
                if "tui" in only:
                    if "kafka.sh" not in STARTED:
                        fresh_broker()
                    if "hdfs.sh" not in STARTED:
                        service("hdfs.sh", "start")
                    held = "empty" if "consumer" not in only else f"{fmt_size(2 * args.reviews)} messages"
                    bench_tui(lab, args.tui_idle_seconds, data_dir, held, args.tui_live_rate)
            stage("consumer/tui", consumer_and_tui)
    except KeyboardInterrupt:
        errors.append("interrupted")
        log("interrupted; stopping services")
    finally:
        stop_all()
        # The services' data is throwaway (the broker's alone is gigabytes); their logs stay.
        for data in ("kafka", "hdfs", "pg"):
            shutil.rmtree(Path(os.environ["LAB_SERVICES_DIR"]) / data, ignore_errors=True)
    elapsed = time.perf_counter() - started
    write_report(info, args, elapsed, errors)
    print(text_table(ROWS))
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB · whole run {elapsed / 60:.1f} min")
    print(f"results: {OUT / 'results.json'}  report: {OUT / 'report.md'}")
    if errors:
        print("\nFAILED stages:\n" + "\n".join(f"  {e}" for e in errors))
        return 1
    return 0


def batch_raw_zone(lab, reviews, seed):
    """A raw zone of `reviews` reviews, built once by `lab demo --parquet` and cached under .cache/bench
    (keyed by size and seed: the generator is deterministic)."""
    state = CACHE / f"state-{reviews}-seed{seed}"
    raw = state / "demo" / "raw"
    done = state / "raw-zone.complete"
    if done.is_file() and (raw / TOPIC_PREFIX / "review").is_dir():
        log(f"raw zone for {reviews} reviews: cached in {raw}")
        return raw
    log(f"building the raw zone for {reviews} reviews once (lab demo --parquet), cached in {state}")
    bench_generator(lab, reviews, seed, state)
    run, _summary, detail = bench_e2e(lab, reviews, seed, state, parquet=True, name="rawzone")
    add_row("  e2e (building the batch input)", fmt_size(reviews) + " reviews", "lab demo --parquet",
            f"{run.wall_s:.1f} s, peak {run.peak_rss_mb:,.0f} MB", detail=detail)
    done.write_text(json.dumps(detail, default=str))
    return raw


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Filesystem benchmarks, side by side in one run (run it through bench/run_fs.sh).

Every workload runs against each filesystem in turn, on the same disk, run
after run (alternating, because absolute timings on shared machines swing
by several times between minutes; only same-run ratios mean something):

  metafs       an embedded volume, mounted as users mount it (search on)
  passthrough  bench/passthrough.c: the FUSE-overhead reference, a minimal
               low-level pass-through with the same threads and cache
               settings as metafs
  ext4         the underlying directory itself: the kernel's limit
  bindfs, fuse-overlayfs   peers, when installed from Debian

Each figure is the median of --runs runs, after a warm-up round; every phase
that reads starts from a fresh mount and dropped kernel caches. The table
(absolute figures and metafs's ratio to each reference) is printed and
written to bench/results/fs.md and fs.json, with a chart in fs.png.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METAFS = FSOPS = PASSTHROUGH = None  # set from --build


def use_build(build):
    global METAFS, FSOPS, PASSTHROUGH
    METAFS = os.path.join(build, "tools", "metafs")
    FSOPS = os.path.join(build, "bench", "bench_fsops")
    PASSTHROUGH = os.path.join(build, "bench", "bench_passthrough")
    for p in (METAFS, FSOPS, PASSTHROUGH):
        if not os.access(p, os.X_OK):
            sys.exit(f"run_fs: {p} is missing: build first (tools/build.sh {build})")

SIZES = {
    # full: the sizes the targets are stated for
    "full": dict(meta=200_000, small=100_000, fsmark=20_000, fio_mb=4096, fio_rand_s=30,
                 listing=1_000_000, tar_src="/usr/include", runs=3),
    "quick": dict(meta=5_000, small=5_000, fsmark=1_000, fio_mb=128, fio_rand_s=3,
                  listing=20_000, tar_src="/usr/include/linux", runs=1),
}

# metric -> (label, unit, higher_is_better, target ratio to passthrough or None)
METRICS = {
    "meta.flat.create": ("create, flat dir", "ops/s", True, 0.8),
    "meta.flat.stat": ("stat, flat dir", "ops/s", True, 0.8),
    "meta.flat.rename": ("rename, flat dir", "ops/s", True, 0.8),
    "meta.flat.unlink": ("unlink, flat dir", "ops/s", True, 0.8),
    "meta.tree.create": ("create, tree", "ops/s", True, 0.8),
    "meta.tree.stat": ("stat, tree", "ops/s", True, 0.8),
    "meta.tree.rename": ("rename, tree", "ops/s", True, 0.8),
    "meta.tree.unlink": ("unlink, tree", "ops/s", True, 0.8),
    "list.walk": ("find -type f of the tree", "entries/s", True, None),
    "small.write": ("4 KiB files, write", "files/s", True, 1.5),
    "small.read": ("4 KiB files, read back", "files/s", True, 1.0),
    "small.fsmark": ("fs_mark 4 KiB, fsync each", "files/s", True, None),
    "large.seqwrite": ("fio seq write 1 MiB", "MiB/s", True, 0.8),
    "large.seqread": ("fio seq read 1 MiB", "MiB/s", True, 0.8),
    "large.randread": ("fio rand read 4 KiB", "IOPS", True, None),
    "list.big_create": ("create, big dir", "ops/s", True, None),
    "list.readdir": ("ls -f of the big dir", "entries/s", True, 0.8),
    "real.tar": ("tar -x of a source tree", "s", False, None),
    "real.git_status_cold": ("git status, cold", "s", False, None),
    "real.git_status_warm": ("git status, warm", "s", False, None),
}
RSS_WORKLOADS = ["meta", "small", "large", "listing", "real"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def find_daemon(mnt):
    """The pid of the process serving MNT: the one whose arguments name it."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a == mnt.encode() or a.endswith(b"=" + mnt.encode()) for a in args):
            return int(pid)
    return None


def wait_gone(pid, what):
    for _ in range(600):
        if not os.path.exists(f"/proc/{pid}"):
            return
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return
        except OSError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not exit after unmount")


def is_mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


class Filesystem:
    """One filesystem under test, rooted in its own directory of WORK."""

    def __init__(self, name, work):
        self.name = name
        self.base = os.path.join(work, name)
        self.mnt = os.path.join(self.base, "mnt")
        self.pid = None
        os.makedirs(self.mnt)

    def start(self):
        raise NotImplementedError

    def mount(self):
        self.start()
        for _ in range(200):
            if is_mounted(self.mnt):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name} did not mount on {self.mnt}")
        self.pid = find_daemon(self.mnt)

    def unmount(self):
        if not is_mounted(self.mnt):
            return
        # a process that has just exited may still hold the mount for a moment
        for _ in range(100):
            if subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        else:
            run(["fusermount3", "-u", self.mnt])
        if self.pid:
            wait_gone(self.pid, self.name)
        self.pid = None

    def remount(self):
        """Start cold: no page cache, no dentry cache, no daemon cache."""
        self.unmount()
        drop_caches()
        self.mount()

    def reset_peak_rss(self):
        if self.pid:
            try:
                with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                    f.write("5\n")
            except OSError:
                pass

    def peak_rss_mib(self):
        if not self.pid:
            return None
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


class Metafs(Filesystem):
    def __init__(self, name, work, options=None):
        super().__init__(name, work)
        self.vol = os.path.join(self.base, "vol")
        self.options = options
        run([METAFS, "format", self.vol], stdout=subprocess.DEVNULL)

    def start(self):
        cmd = [METAFS, "mount", self.vol, self.mnt]
        if self.options:
            cmd += ["-o", self.options]
        run(cmd)


class Passthrough(Filesystem):
    def __init__(self, name, work):
        super().__init__(name, work)
        self.src = os.path.join(self.base, "src")
        os.makedirs(self.src)

    def start(self):
        run([PASSTHROUGH, self.src, self.mnt])


class Bindfs(Passthrough):
    def start(self):
        # as a user would run it: Debian's bindfs with its default options
        run(["bindfs", self.src, self.mnt])


class FuseOverlayfs(Passthrough):
    def __init__(self, name, work):
        super().__init__(name, work)
        self.lower = os.path.join(self.base, "lower")
        self.workdir = os.path.join(self.base, "work")
        os.makedirs(self.lower)
        os.makedirs(self.workdir)

    def start(self):
        # it warns about every kernel mount option it passes over
        run(["fuse-overlayfs", "-o", f"lowerdir={self.lower},upperdir={self.src},workdir={self.workdir}",
             self.mnt], stderr=subprocess.DEVNULL)


class Ext4(Filesystem):
    def mount(self):
        pass

    def unmount(self):
        pass

    def remount(self):
        drop_caches()


MAKERS = {
    "metafs": lambda work: Metafs("metafs", work),
    "metafs-noindex": lambda work: Metafs("metafs-noindex", work, "noindex"),
    "passthrough": lambda work: Passthrough("passthrough", work),
    "ext4": lambda work: Ext4("ext4", work),
    "bindfs": lambda work: Bindfs("bindfs", work),
    "fuse-overlayfs": lambda work: FuseOverlayfs("fuse-overlayfs", work),
}


def fsops(phase, d, n, *extra):
    out = run([FSOPS, phase, d, str(n), *extra], stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["ops_per_s"]


def timed(cmd, **kw):
    t = time.monotonic()
    run(cmd, **kw)
    return time.monotonic() - t


def rm_tree(path):
    run(["rm", "-rf", path])


class Rss:
    """Peak daemon RSS over a workload, across the remounts inside it."""

    def __init__(self, fs):
        self.fs, self.peak = fs, None
        fs.reset_peak_rss()

    def sample(self):
        v = self.fs.peak_rss_mib()
        if v is not None:
            self.peak = v if self.peak is None else max(self.peak, v)

    def phase(self, fn):
        """Sample before a remount ends this daemon, then reset the new one."""
        self.sample()
        fn()
        self.fs.reset_peak_rss()


def w_meta(fs, sz, res, rss):
    n = sz["meta"]
    for layout, extra in (("flat", []), ("tree", ["--tree"])):
        d = os.path.join(fs.mnt, "meta")
        os.mkdir(d)
        res[f"meta.{layout}.create"] = fsops("create", d, n, *extra)
        if layout == "tree":
            rss.phase(fs.remount)
            t = time.monotonic()
            out = run(f"find '{d}' -type f | wc -l", shell=True, stdout=subprocess.PIPE, text=True).stdout
            res["list.walk"] = n / (time.monotonic() - t)
            if int(out) != n:
                raise RuntimeError(f"{fs.name}: find saw {out.strip()} files, expected {n}")
        for phase in ("stat", "rename", "unlink"):
            rss.phase(fs.remount)
            res[f"meta.{layout}.{phase}"] = fsops(phase, d, n, *extra)
        os.rmdir(d)
        rss.sample()


def w_small(fs, sz, res, rss):
    n = sz["small"]
    d = os.path.join(fs.mnt, "small")
    os.mkdir(d)
    res["small.write"] = fsops("write", d, n, "--tree", "--size", "4096")
    rss.phase(fs.remount)
    res["small.read"] = fsops("read", d, n, "--tree", "--size", "4096")
    rss.sample()
    rm_tree(d)
    d = os.path.join(fs.mnt, "fsmark")
    os.mkdir(d)
    # fs_mark wants a directory path under 40 bytes: give it a relative one,
    # and its log file a place outside the filesystem under test
    p = subprocess.run(["fs_mark", "-d", "fsmark", "-l", os.path.join(fs.base, "fs_mark.log"),
                        "-n", str(sz["fsmark"] // 2), "-t", "2", "-s", "4096", "-L", "1", "-S", "1"],
                       cwd=fs.mnt, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout
    if p.returncode != 0:
        raise RuntimeError(f"{fs.name}: fs_mark failed:\n{out}")
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    if not rows:
        raise RuntimeError(f"{fs.name}: fs_mark printed no result:\n{out}")
    res["small.fsmark"] = float(rows[-1][3])
    rss.sample()
    rm_tree(d)


def fio(fs, name, rw, bs, extra):
    f = os.path.join(fs.mnt, "fio.dat")
    out = run(["fio", f"--name={name}", f"--filename={f}", f"--rw={rw}", f"--bs={bs}", "--ioengine=psync",
               "--output-format=json", *extra], stdout=subprocess.PIPE, text=True).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    return job["write" if "write" in rw else "read"]


def w_large(fs, sz, res, rss):
    size = f"--size={sz['fio_mb']}M"
    r = fio(fs, "seqwrite", "write", "1M", [size, "--end_fsync=1"])
    res["large.seqwrite"] = r["bw_bytes"] / 2**20
    rss.phase(fs.remount)
    r = fio(fs, "seqread", "read", "1M", [size])
    res["large.seqread"] = r["bw_bytes"] / 2**20
    rss.phase(fs.remount)
    r = fio(fs, "randread", "randread", "4k", [size, "--time_based", f"--runtime={sz['fio_rand_s']}"])
    res["large.randread"] = r["iops"]
    rss.sample()
    os.unlink(os.path.join(fs.mnt, "fio.dat"))


def w_real(fs, sz, res, rss, tarball):
    d = os.path.join(fs.mnt, "src")
    os.mkdir(d)
    res["real.tar"] = timed(["tar", "-xf", tarball, "-C", d])
    rss.sample()
    rm_tree(d)
    repo = os.path.join(fs.mnt, "repo")
    os.mkdir(repo)
    run(["tar", "-xf", tarball, "-C", repo])
    # no automatic gc: it would run detached, inside the mount, past the commit
    git = ["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "gc.auto=0"]
    run(git + ["init", "-q"])
    run(git + ["add", "-A"])
    run(git + ["commit", "-q", "-m", "import"])
    rss.phase(fs.remount)
    res["real.git_status_cold"] = timed(git + ["status", "--porcelain"], stdout=subprocess.DEVNULL)
    res["real.git_status_warm"] = timed(git + ["status", "--porcelain"], stdout=subprocess.DEVNULL)
    rss.sample()
    rm_tree(repo)


def w_listing(fs, sz, res, rss):
    """The big directory is made once (its own filesystem instance, so it
    weighs on no other workload) and listed cold in every run."""
    n = sz["listing"]
    d = os.path.join(fs.mnt, "big")
    if not os.path.isdir(d):
        os.mkdir(d)
        log(f"    {fs.name}: creating {n} entries in one directory")
        res["list.big_create"] = fsops("create", d, n)
    rss.phase(fs.remount)
    t = time.monotonic()
    out = run(f"ls -f '{d}' | wc -l", shell=True, stdout=subprocess.PIPE, text=True).stdout
    res["list.readdir"] = n / (time.monotonic() - t)
    if int(out) != n + 2:
        raise RuntimeError(f"{fs.name}: ls -f listed {out.strip()} entries, expected {n + 2}")
    rss.sample()


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "s":
        return f"{v:.3f}"
    if unit == "MiB":
        return f"{v:.0f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def ratio(metric, m, r):
    if m is None or r is None or m == 0 or r == 0:
        return None
    higher = METRICS[metric][2] if metric in METRICS else True
    return m / r if higher else r / m


def report(results, names, sz, mode, out_dir, meta):
    refs = [n for n in names if n != "metafs"]
    lines = [f"# metafs filesystem benchmark ({mode} mode)", "",
             f"{meta['date']}, {meta['host']}, {meta['cpus']} CPUs, kernel {meta['kernel']}, "
             f"median of {sz['runs']} run(s) after a warm-up; every read phase starts cold "
             "(remount + dropped caches). Ratios are metafs ÷ reference speed: above 1 is faster than the reference.",
             ""]
    head = ["workload", "unit"] + names + [f"× {r}" for r in refs] + ["target (× passthrough)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    table = []
    for metric, (label, unit, higher, target) in METRICS.items():
        vals = {n: results[n].get(metric) for n in names}
        if all(v is None for v in vals.values()):
            continue
        ratios = {r: ratio(metric, vals.get("metafs"), vals[r]) for r in refs}
        verdict = ""
        if target and "passthrough" in ratios and ratios["passthrough"] is not None:
            verdict = f"≥ {target}: " + ("met" if ratios["passthrough"] >= target else "**missed**")
        row = [label, unit] + [fmt(vals[n], unit) for n in names] + \
              [("–" if ratios[r] is None else f"{ratios[r]:.2f}") for r in refs] + [verdict]
        lines.append("| " + " | ".join(row) + " |")
        table.append(dict(metric=metric, label=label, unit=unit, higher_is_better=higher, target=target,
                          values=vals, ratios=ratios))
    lines += ["", "Peak daemon RSS (MiB) per workload:", ""]
    lines.append("| workload | " + " | ".join(n for n in names if n != "ext4") + " |")
    lines.append("|---|" + "---|" * len([n for n in names if n != "ext4"]))
    for w in RSS_WORKLOADS:
        cells = [fmt(results[n].get(f"rss.{w}"), "MiB") for n in names if n != "ext4"]
        label = w + (f" ({sz['listing']:,} entries)" if w == "listing" else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "fs.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "fs.json"), "w") as f:
        json.dump(dict(mode=mode, sizes=sz, machine=meta, filesystems=names, table=table,
                       rss_mib={n: {w: results[n].get(f"rss.{w}") for w in RSS_WORKLOADS} for n in names},
                       raw=results), f, indent=1)
    chart(table, refs, out_dir)
    return md


def chart(table, refs, out_dir):
    """metafs's ratio to each reference per workload, log scale, 1 = parity."""
    if not shutil.which("gnuplot"):
        log("gnuplot is not installed: no chart")
        return
    dat = os.path.join(out_dir, "fs.dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join(f'"{r}"' for r in refs) + "\n")
        for row in table:
            cells = [row["ratios"][r] for r in refs]
            f.write(f'"{row["label"]}" ' + " ".join("NaN" if c is None else f"{c:.4f}" for c in cells) + "\n")
    plot = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title columnhead" for i in range(len(refs)))
    script = f"""
set terminal pngcairo size 1400,700 noenhanced
set output '{os.path.join(out_dir, "fs.png")}'
set title 'metafs speed relative to each reference (1 = same speed, above = metafs faster)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 10
set yrange [0.01:100]
set grid ytics
set xtics rotate by -35 scale 0
set key top left
set rmargin 10
set bmargin 9
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb 'black'
plot {plot}
"""
    try:
        run(["gnuplot"], input=script, text=True)
    except subprocess.CalledProcessError as e:
        log(f"gnuplot failed ({e}): no chart")
    os.unlink(dat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one run: a few minutes")
    ap.add_argument("--runs", type=int, help="runs per figure (median); default 3, 1 with --quick")
    ap.add_argument("--fs", help="comma-separated filesystems (default: metafs,passthrough,ext4 and the "
                    "installed peers); also: metafs-noindex")
    ap.add_argument("--workloads", default="meta,small,large,real,listing",
                    help="comma-separated subset of meta,small,large,real,listing")
    ap.add_argument("--dir", default="/var/tmp", help="where the filesystems live (the disk under test)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the Meson build directory to run")
    args = ap.parse_args()
    use_build(os.path.abspath(args.build))
    mode = "quick" if args.quick else "full"
    sz = dict(SIZES[mode])
    if args.runs:
        sz["runs"] = args.runs
    if args.fs:
        names = args.fs.split(",")
    else:
        names = ["metafs", "passthrough", "ext4"] + [p for p in ("bindfs", "fuse-overlayfs") if shutil.which(p)]
    if "metafs" not in names:
        sys.exit("run_fs: the list of filesystems must include metafs")
    unknown = [n for n in names if n not in MAKERS]
    if unknown:
        sys.exit(f"run_fs: unknown filesystem {unknown[0]}; choose from {', '.join(MAKERS)}")
    workloads = args.workloads.split(",")
    if os.geteuid() != 0:
        sys.exit("run_fs: run as root (it mounts FUSE filesystems and drops the kernel's caches)")

    # a SIGTERM unwinds like ^C, so that the filesystems are unmounted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("run_fs: terminated"))
    work = tempfile.mkdtemp(prefix="metafs-bench-fs.", dir=args.dir)
    tarball = os.path.join(work, "source.tar")
    run(["tar", "-cf", tarball, "-C", os.path.dirname(sz["tar_src"]), os.path.basename(sz["tar_src"])])
    fss, listing = {}, {}
    samples = {n: {} for n in names}
    try:
        for n in names:
            fss[n] = MAKERS[n](work)
            fss[n].mount()
        log(f"== warm-up: metadata phases on {sz['meta'] // 10} files")
        for n in names:
            w_meta(fss[n], dict(sz, meta=max(sz["meta"] // 10, 100)), {}, Rss(fss[n]))
        steps = {"meta": w_meta, "small": w_small, "large": w_large, "real": None, "listing": w_listing}
        for r in range(sz["runs"]):
            for w in workloads:
                if w not in steps:
                    sys.exit(f"run_fs: unknown workload {w}")
                for n in names:
                    log(f"== run {r + 1}/{sz['runs']}: {w} on {n}")
                    if w == "listing":
                        if n not in listing:
                            lwork = os.path.join(work, "listing")
                            os.makedirs(lwork, exist_ok=True)
                            listing[n] = MAKERS[n](lwork)
                            listing[n].mount()
                        fs = listing[n]
                    else:
                        fs = fss[n]
                    fs.remount()
                    res, rss = {}, Rss(fs)
                    if w == "real":
                        w_real(fs, sz, res, rss, tarball)
                    else:
                        steps[w](fs, sz, res, rss)
                    rss.sample()
                    if rss.peak is not None:
                        res[f"rss.{w}"] = rss.peak
                    for k, v in res.items():
                        samples[n].setdefault(k, []).append(v)
                    log("    " + ", ".join(f"{k}={v:.1f}" for k, v in sorted(res.items())))
            if r + 1 < sz["runs"]:
                # a long run that is stopped later still leaves its figures
                summarize(samples, names, sz, r + 1, mode, args.out)
                log(f"== the medians of {r + 1} run(s) are in {args.out}/fs.md")
    finally:
        for f in list(fss.values()) + list(listing.values()):
            try:
                f.unmount()
            except Exception as e:  # keep tearing down the others
                log(f"unmounting {f.name}: {e}")
        shutil.rmtree(work, ignore_errors=True)
    print(summarize(samples, names, sz, sz["runs"], mode, args.out))


def summarize(samples, names, sz, runs_done, mode, out):
    """Medians of the runs so far, written out; RSS is a peak, so the largest."""
    results = {n: {k: (max(v) if k.startswith("rss.") else statistics.median(v)) for k, v in s.items()}
               for n, s in samples.items()}
    u = os.uname()
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), host=u.nodename, kernel=u.release,
                cpus=os.cpu_count())
    return report(results, names, dict(sz, runs=runs_done), mode, out, meta)


if __name__ == "__main__":
    main()

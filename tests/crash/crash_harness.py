# SPDX-License-Identifier: Apache-2.0
"""Crash-durability harness for metafs.

Formats one volume, then round after round: mounts it, lets crash_writer.py
run random operations in it, kills the daemon with SIGKILL at a random
moment, remounts and checks that nothing acknowledged was lost.

  --mode kill       the daemon dies; everything acknowledged (close(),
                    fsync(), or any other call that returned) must be there.
  --mode powerloss  as kill, and then the newest write-ahead log is cut back
                    to its size right after the last fsync() returned, which
                    drops what was written after it. Everything acknowledged
                    up to that fsync must be there.

In both modes the tree found after the remount must be exactly a state the
writer's operations passed through (a prefix of its commits), no earlier than
the last one required. A single operation can commit more than once (a
create commits the empty file at open and its data at close), and every
such intermediate state is allowed while the operation was in flight.
After each round the volume is unmounted and checked with `metafs fsck`
(which checks the changelog too); a binary without fsck gets its changelog
checked for gaps instead.

The tree (VOLUME's /w) carries over from round to round: the writer starts
from what the previous round verified.
"""

import argparse
import collections
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing left behind in the source tree
sys.path.insert(0, HERE)
from crash_writer import newest_wal, snapshot  # noqa: E402

WRITER = os.path.join(HERE, "crash_writer.py")
KILL_MS = (20, 250)  # ms after the writer is ready


class Fatal(Exception):
    """The volume cannot be used any more: the remaining rounds cannot run."""


# ---------------------------------------------------------------- states

def fmt(a):
    if a is None:
        return "nothing"
    if a["t"] == "d":
        s = "directory"
    elif a["t"] == "f":
        s = "file size %d sha256 %s" % (a["n"], a["h"])
    else:
        s = a["t"]
    if a.get("x"):
        s += " xattrs {%s}" % ", ".join("%s: %s" % (k, v[:16]) for k, v in sorted(a["x"].items()))
    return s


def same_attrs(e, a):
    return e["t"] == a["t"] and e.get("n") == a.get("n") and e.get("h") == a.get("h") \
        and e.get("x", {}) == a.get("x", {})


def parent_of(p):
    return p.rpartition("/")[0]


def diff_state(exp_paths, exp_inodes, act_paths, act_inodes, first_only=False):
    """What differs between an expected state and the tree found, as lines."""
    out = []
    fwd, back = {}, {}
    for p in sorted(set(exp_paths) | set(act_paths)):
        e, a = exp_paths.get(p), act_paths.get(p)
        if a is None:
            out.append("%s: missing; expected %s" % (p, fmt(exp_inodes[e])))
        elif e is None:
            out.append("%s: unexpected; found %s" % (p, fmt(act_inodes[a])))
        else:
            ea, aa = exp_inodes[e], act_inodes[a]
            if not same_attrs(ea, aa):
                out.append("%s: expected %s; found %s" % (p, fmt(ea), fmt(aa)))
            if fwd.setdefault(e, a) != a:
                out.append("%s: expected a hard link of %s, found a separate inode" % (
                    p, next(q for q, k in exp_paths.items() if k == e and q != p)))
            if back.setdefault(a, e) != e:
                out.append("%s: found a hard link of %s, expected a separate inode" % (
                    p, next(q for q, k in act_paths.items() if k == a and q != p)))
        if first_only and out:
            return out
    if out:
        return out
    # link counts, once the names match
    links = collections.Counter(exp_paths.values())
    subdirs = collections.Counter(parent_of(p) for p, k in exp_paths.items()
                                  if exp_inodes[k]["t"] == "d")
    seen = set()
    for p, e in sorted(exp_paths.items()):
        if e in seen:
            continue
        seen.add(e)
        want = 2 + subdirs[p] if exp_inodes[e]["t"] == "d" else links[e]
        got = act_inodes[act_paths[p]].get("l")
        if got is not None and got != want:
            out.append("%s: link count expected %d, found %d" % (p, want, got))
            if first_only:
                return out
    return out


def apply_step(paths, inodes, step):
    for p, k in step["p"].items():
        if k is None:
            paths.pop(p, None)
        else:
            paths[p] = k
    for k, a in step["i"].items():
        if a is None:
            inodes.pop(k, None)
        else:
            inodes[k] = a


def strip_links(inodes):
    return {k: {f: v for f, v in a.items() if f != "l"} for k, a in inodes.items()}


# ---------------------------------------------------------------- processes

def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pids, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.005)
    return not any(pid_alive(p) for p in pids)


class Harness:
    def __init__(self, a):
        self.a = a
        self.mode = a.mode
        self.seed = a.seed
        self.tmp = tempfile.mkdtemp(prefix="metafs-crash-%s." % a.mode, dir="/tmp")
        self.metafs = os.path.join(self.tmp, "metafs")
        self.vol = os.path.join(self.tmp, "vol")
        self.db = os.path.join(self.vol, "db")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.work = os.path.join(self.mnt, "w")
        os.mkdir(self.mnt)
        self.paths, self.inodes = {}, {}  # the state verified last
        self.last_seq = 0
        self.fsck = None  # None: not looked for yet; False: not there; True: in use
        self.writer = None
        self.times = collections.defaultdict(float)
        self.cuts = collections.Counter()  # powerloss: what happened to the log, by kind
        self.seen = collections.Counter()

    def say(self, msg):
        print(msg, flush=True)

    def note(self, msg):
        print("# " + msg, flush=True)

    def verbose(self, msg):
        if self.a.verbose:
            print("#   " + msg, flush=True)

    # ------------------------------------------------------------ the binary

    def take_binary(self, path):
        """Copies the binary, so that a rebuild during the run cannot mix
        versions on one volume; waits out a rebuild in progress."""
        end = time.monotonic() + 120
        while True:
            try:
                st = os.stat(path)
                if st.st_mode & 0o111 and time.time() - st.st_mtime > 2:
                    shutil.copy2(path, self.metafs)
                    if os.stat(path).st_mtime_ns == st.st_mtime_ns:
                        return st
            except FileNotFoundError:
                pass
            if time.monotonic() > end:
                raise Fatal("no usable metafs binary at %s" % path)
            time.sleep(0.5)

    def clock(self, phase, t0):
        now = time.monotonic()
        self.times[phase] += now - t0
        return now

    def run(self, args, timeout=60, check=True):
        try:
            p = subprocess.run([self.metafs] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fatal("metafs %s did not finish within %d s" % (" ".join(args), timeout))
        except OSError as e:
            raise Fatal("cannot run %s: %s" % (self.metafs, e))
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise Fatal("metafs %s failed with exit %d: %s" % (" ".join(args), p.returncode, out.strip()))
        return p.returncode, out

    def fsck_available(self, r):
        try:
            ok = subprocess.run([self.metafs, "fsck", "--help"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok and self.fsck is not True:
            self.note("metafs fsck found: checking the volume after every round from round %d on" % r)
        elif not ok and self.fsck is None:
            self.note("metafs fsck is not in this binary (yet): rounds skip the fsck check "
                      "until it appears")
        elif not ok and self.fsck:
            self.note("metafs fsck has gone from the binary: rounds skip the fsck check")
        self.fsck = ok
        return ok

    # ------------------------------------------------------------ mounts

    def mounted(self):
        with open("/proc/mounts") as f:
            return any(line.split()[1] == self.mnt for line in f)

    def daemon_pids(self):
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if self.mnt.encode() in args and pid_alive(int(d)):
                pids.append(int(d))
        return pids

    def mount(self):
        for attempt in range(5):
            rc, out = self.run(["mount", self.vol, self.mnt], check=False)
            if rc == 0:
                break
            if attempt == 4 or self.mounted():
                raise Fatal("metafs mount failed with exit %d: %s" % (rc, out.strip()))
            time.sleep(1)
        if not self.mounted():
            raise Fatal("metafs mount returned 0 but %s is not mounted" % self.mnt)
        pids = self.daemon_pids()
        if not pids:
            raise Fatal("no daemon process found for %s" % self.mnt)
        return pids

    def unmount(self):
        """Clean unmount; waits until the daemon has exited."""
        pids = self.daemon_pids()
        for _ in range(40):
            if not self.mounted():
                break
            if subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.25)
        if self.mounted():
            raise Fatal("cannot unmount %s" % self.mnt)
        if not wait_gone(pids, 30):
            raise Fatal("daemon %s still runs 30 s after unmount" % pids)

    def dead_unmount(self, pids):
        """After SIGKILL: waits for the daemon to be gone, removes the dead mount."""
        if not wait_gone(pids, 30):
            raise Fatal("daemon %s still runs 30 s after SIGKILL" % pids)
        if self.mounted():
            if subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", self.mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        if self.mounted():
            raise Fatal("cannot remove the dead mount %s" % self.mnt)

    def cleanup(self, keep):
        if self.writer and self.writer.poll() is None:
            self.writer.kill()
            self.writer.wait()
        if self.mounted():
            pids = self.daemon_pids()
            try:
                self.unmount()
            except Fatal:
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                wait_gone(pids, 10)
                subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
                if self.mounted():
                    subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
        if keep:
            self.note("kept %s (volume in vol/, journals journal-*.jsonl)" % self.tmp)
        elif self.mounted():
            self.note("leaving %s: still mounted" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ one round

    def round_seed(self, r):
        return (self.seed * 1000003 + r * 7919) % (2 ** 31)

    def read_journal(self, path):
        with open(path, "rb") as f:
            raw = f.read().split(b"\n")
        entries = []
        for i, line in enumerate(raw):
            if not line:
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                if i != len(raw) - 1:  # only the last line can be torn by the kill
                    raise Fatal("journal %s: line %d unreadable" % (path, i + 1))
        return entries

    def one_round(self, r, n):
        """Runs round r; returns (ok, summary line, detail lines)."""
        rseed = self.round_seed(r)
        rng = random.Random(rseed)
        problems = []
        t = time.monotonic()
        pids = self.mount()
        t = self.clock("mount", t)
        if r == 1:
            os.mkdir(self.work)
        journal = os.path.join(self.tmp, "journal-%03d.jsonl" % r)
        self.writer = subprocess.Popen(
            [sys.executable, WRITER, "--root", self.work, "--journal", journal,
             "--seed", str(rseed), "--wal-dir", self.db,
             "--fsync-prob", "0.25" if self.mode == "powerloss" else "0.15"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.tmp)
        ready, _, _ = select.select([self.writer.stdout], [], [], 120)
        line = self.writer.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.writer.kill()
            _, err = self.writer.communicate()
            self.unmount()
            raise Fatal("writer did not start: %s" % err.decode(errors="replace").strip()[-2000:])
        t = self.clock("writer start", t)
        delay = rng.uniform(*KILL_MS) / 1000.0
        t0 = time.monotonic()
        early = None
        while True:
            left = delay - (time.monotonic() - t0)
            if left <= 0:
                break
            if self.writer.poll() is not None:
                early = self.writer.returncode
                break
            time.sleep(min(left, 0.002))
        if early is None and self.writer.poll() is not None:
            early = self.writer.returncode
        for p in pids:
            os.kill(p, signal.SIGKILL)
        killed_ms = (time.monotonic() - t0) * 1000
        self.writer.kill()
        _, werr = self.writer.communicate()
        self.writer = None
        t = self.clock("writer run", t)
        self.dead_unmount(pids)
        t = self.clock("kill and clean up", t)

        entries = self.read_journal(journal)
        if not entries or entries[0]["t"] != "ready":
            raise Fatal("journal %s does not start with the writer's state" % journal)
        base_paths, base_inodes = entries[0]["paths"], entries[0]["inodes"]
        if r > 1:
            d = diff_state(self.paths, self.inodes, base_paths, base_inodes)
            d = [x for x in d if "link count" not in x]
            if d:
                problems.append("the tree changed between the last round's check and this "
                                "round's start (unmount, fsck, mount):")
                problems += ["  " + x for x in d[:40]]
        steps, begins, acks, syncs, errors = [], [], [], [], []
        for e in entries[1:]:
            if e["t"] == "begin":
                if e["base"] != len(steps):
                    raise Fatal("journal %s: op %d starts at step %d, expected %d" % (
                        journal, e["op"], e["base"], len(steps)))
                begins.append(e)
                steps += e["steps"]
            elif e["t"] == "ack":
                acks.append(e)
            elif e["t"] == "sync":
                syncs.append(e)
            elif e["t"] == "error":
                errors.append(e)
        if early is not None:
            why = errors[-1] if errors else None
            problems.append("the writer stopped before the kill (exit %s)%s" % (
                early, ": op %d (%s) failed: %s" % (why["op"], begins[-1]["desc"], why["msg"])
                if why else ""))
            tail = werr.decode(errors="replace").strip()
            if tail:
                problems += ["  " + x for x in tail.splitlines()[-15:]]
        required = acked_upto = max([e["upto"] for e in acks + syncs] + [0])
        total = len(steps)
        acked_ops = len(acks)
        nsync = len(syncs)

        # powerloss: drop what the write-ahead log got after the last fsync
        what = ""
        if self.mode == "powerloss":
            last = next((s for s in reversed(syncs) if s.get("wal")), None)
            if last is None:
                what = "no fsync: nothing cut"
            else:
                now = newest_wal(self.db)
                name, ino, size = last["wal"]
                if now is None or now[0] != name or now[1] != ino:
                    what = "WAL %s replaced by %s since the last fsync: nothing cut" % (
                        name, now[0] if now else "nothing")
                elif now[2] < size:
                    problems.append("WAL %s is %d bytes, shorter than the %d bytes it had when "
                                    "fsync() returned" % (name, now[2], size))
                elif now[2] == size:
                    what = "nothing written after the last fsync"
                else:
                    os.truncate(os.path.join(self.db, name), size)
                    what = "WAL %s cut from %d to %d bytes" % (name, now[2], size)
                    required = last["upto"]
            self.cuts[re.sub(r"WAL \S+ |from \d+ to \d+ bytes|by \S+ ", "", what).strip()] += 1
            self.verbose("round %d: %s" % (r, what))

        # remount and compare
        t = self.clock("journal", t)
        self.mount()
        t = self.clock("mount", t)
        try:
            act_paths, act_inodes, _ = snapshot(self.work)
        except OSError as e:
            act_paths, act_inodes = None, None
            problems.append("cannot read the tree after the remount: %s" % e)
        t = self.clock("read tree", t)
        matched = None
        if act_paths is not None:
            paths, inodes = dict(base_paths), dict(base_inodes)
            best, req_diff = None, []
            for i in range(total + 1):
                if i > 0:
                    apply_step(paths, inodes, steps[i - 1])
                if i < required:
                    continue
                if not diff_state(paths, inodes, act_paths, act_inodes, first_only=True):
                    matched = i
                    break
                d = diff_state(paths, inodes, act_paths, act_inodes)
                if i == required:
                    req_diff = d
                if best is None or len(d) < len(best[1]):
                    best = (i, d)
            if matched is None:
                problems.append("the tree after the remount is none of the states allowed "
                                "(steps %d..%d of %d; %d required by the acknowledgements%s)" % (
                                    required, total, total, required,
                                    ", cut to the last fsync" if "cut from" in what else ""))
                problems.append("compared with the state every acknowledgement requires:")
                problems += ["  " + x for x in req_diff[:40]]
                if len(req_diff) > 40:
                    problems.append("  ... %d more" % (len(req_diff) - 40))
                if best and best[0] != required:
                    problems.append("closest allowed state (after step %d):" % best[0])
                    problems += ["  " + x for x in best[1][:20]]
                problems.append("operations from the last required one on:")
                for b in begins:
                    if b["base"] + len(b["steps"]) >= required or b is begins[-1]:
                        state = "acknowledged" if any(a["op"] == b["op"] for a in acks) else \
                            "in flight"
                        where = "steps %d..%d" % (b["base"] + 1, b["base"] + len(b["steps"])) \
                            if b["steps"] else "no commit"
                        problems.append("  op %d (%s, %s): %s" % (b["op"], where, state, b["desc"]))
            else:
                if matched > acked_upto:
                    self.seen["rounds showing commits of an operation in flight"] += 1
                elif matched < acked_upto:
                    self.seen["rounds that lost changes acknowledged after the last fsync"] += 1
                self.verbose("round %d: tree matches step %d (required %d, last %d)" % (
                    r, matched, required, total))
            if self.a.verbose:
                for b in begins[-3:]:
                    self.verbose("op %d: %s" % (b["op"], b["desc"]))
        t = self.clock("compare", t)
        self.unmount()
        t = self.clock("unmount", t)
        if act_paths is not None:
            self.paths, self.inodes = act_paths, strip_links(act_inodes)

        # fsck and the changelog
        fsck_note = ""
        if self.fsck_available(r):
            rc, out = self.run(["fsck", self.vol], timeout=300, check=False)
            if rc != 0:
                problems.append("metafs fsck %s exited %d:" % (self.vol, rc))
                problems += ["  " + x for x in out.strip().splitlines()[:40]]
            else:
                self.verbose("fsck: " + " | ".join(out.strip().splitlines()[-3:]))
        else:
            fsck_note = " (fsck skipped: not in the binary)"
        t = self.clock("fsck", t)
        # fsck checks the changelog itself; without it, read what this round added
        rc, out = (0, "") if self.fsck else self.run(
            ["changelog", self.vol, "--json", "--from", str(self.last_seq + 1)], check=False)
        if rc != 0:
            problems.append("metafs changelog exited %d: %s" % (rc, out.strip()[:500]))
        else:
            for line in out.splitlines():
                try:
                    seq = json.loads(line)["seq"]
                except (ValueError, KeyError):
                    problems.append("changelog: unreadable record: %s" % line[:200])
                    break
                if seq != self.last_seq + 1:
                    problems.append("changelog: seq %d follows %d" % (seq, self.last_seq))
                    break
                self.last_seq = seq
        t = self.clock("changelog", t)

        msg = "%d acknowledged ops, killed after %d ms" % (acked_ops, killed_ms)
        if self.mode == "powerloss":
            msg += "; %d fsyncs, %s" % (nsync, what)
        msg += fsck_note
        if problems:
            head = "round %d/%d FAILED (seed %d, round seed %d): %s" % (r, n, self.seed, rseed, msg)
            return False, head, problems
        return True, "round %d/%d ok: %s" % (r, n, msg), []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["kill", "powerloss"], default="kill")
    ap.add_argument("--rounds", type=int, help="default 200 for kill, 100 for powerloss")
    ap.add_argument("--seed", type=int, help="default: from the clock (printed)")
    ap.add_argument("--metafs", default=os.environ.get("METAFS"),
                    help="the metafs binary (default: $METAFS)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory on failure")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if not a.metafs:
        ap.error("no metafs binary: pass --metafs or set METAFS")
    if a.rounds is None:
        a.rounds = 200 if a.mode == "kill" else 100
    if a.seed is None:
        a.seed = int(time.time() * 1000) % 1000000
    if not os.access(a.metafs, os.X_OK):
        print("metafs binary not found at %s" % a.metafs, file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    h = Harness(a)
    passed = failed = 0
    start = time.monotonic()
    interrupted = False
    try:
        st = h.take_binary(a.metafs)
        print("# crash harness: mode %s, %d rounds, seed %d, metafs %s (built %s, copied to %s)" % (
            a.mode, a.rounds, a.seed, os.path.abspath(a.metafs),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime)), h.tmp), flush=True)
        h.run(["format", h.vol])
        for r in range(1, a.rounds + 1):
            try:
                ok, head, detail = h.one_round(r, a.rounds)
            except Fatal as e:
                failed += 1
                print("round %d/%d FAILED (seed %d, round seed %d): %s" % (
                    r, a.rounds, a.seed, h.round_seed(r), e), flush=True)
                left = a.rounds - r
                if left:
                    print("# the volume cannot be used: %d remaining rounds not run, "
                          "counted as failed" % left, flush=True)
                    failed += left
                break
            print(head, flush=True)
            for line in detail:
                print("    " + line, flush=True)
            if ok:
                passed += 1
                j = os.path.join(h.tmp, "journal-%03d.jsonl" % r)
                if not a.keep and os.path.exists(j):
                    os.unlink(j)
            else:
                failed += 1
                print("    reproduce: crash_harness.py --mode %s --seed %d --rounds %d "
                      "(timing-dependent; the tree carries over from earlier rounds)" % (
                          a.mode, a.seed, r), flush=True)
    except Fatal as e:
        print("setup FAILED: %s" % e, flush=True)
        failed = a.rounds - passed
    except KeyboardInterrupt:
        interrupted = True
        print("# interrupted", flush=True)
        failed = a.rounds - passed
    except Exception:
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("harness FAILED: unexpected error (above)", flush=True)
        failed = a.rounds - passed
    finally:
        h.cleanup(keep=a.keep and (failed > 0 or interrupted))
    took = time.monotonic() - start
    print("# %.1f s in all, %.2f s a round" % (took, took / max(1, passed + failed)), flush=True)
    if h.cuts:
        print("# write-ahead log after the kill: " + ", ".join(
            "%s: %d rounds" % kv for kv in h.cuts.most_common()), flush=True)
    for what, count in sorted(h.seen.items()):
        print("# %s: %d" % (what, count), flush=True)
    if h.times:
        print("# time by phase: " + ", ".join("%s %.1f s" % kv for kv in sorted(
            h.times.items(), key=lambda kv: -kv[1])), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and passed == a.rounds else 1


if __name__ == "__main__":
    sys.exit(main())

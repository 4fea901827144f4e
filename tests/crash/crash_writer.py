# SPDX-License-Identifier: Apache-2.0
"""Writer for the crash harness.

Runs random operations inside a metafs mount, driven by a seed, and keeps a
model of what the tree must hold. Every operation is recorded in a journal
outside the mount:

  {"t":"ready", "paths":…, "inodes":…}      the state found at start
  {"t":"begin", "op":K, "desc":…, "base":B, "steps":[…]}
        written before the operation starts: the states the tree may pass
        through, each one commit of the filesystem (global step B+1, B+2, …)
  {"t":"sync", "op":K, "upto":U, "wal":[name, ino, size]}
        written when fsync() returned: steps up to U are synced; the size of
        the newest write-ahead log right after the fsync
  {"t":"ack", "op":K, "upto":U, "fsync":bool, "expect":{path: state|null}}
        written when the operation returned (close() for file data): steps up
        to U are acknowledged; the expected state of every path it touched
  {"t":"error", "op":K, "errno":E, "msg":…}   the operation failed; the writer stops

Each line is flushed and fsynced before the writer goes on. A step is
{"p": {path: inode|null}, "i": {inode: attrs|null}}; attrs are
{"t":"f","n":size,"h":sha256,"x":{xattr: sha256}} for files and
{"t":"d","x":{…}} for directories. Paths are relative to the root given.

This module also provides snapshot(), which the harness uses to read a tree
back in the same form.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import re
import stat
import sys
import time

INLINE = 65536
CHUNK = 262144
MAX_FILE = 3 * 1024 * 1024 + 65536
DATA_CAP = 8 * 1024 * 1024  # logical bytes kept in the tree across rounds
MAX_FILES = 120
MAX_DIRS = 24
MAX_DEPTH = 4


def sha(data):
    return hashlib.sha256(data).hexdigest()


def attrs_of(kind, data, xattrs):
    x = {k: sha(v) for k, v in sorted(xattrs.items())}
    if kind == "d":
        return {"t": "d", "x": x}
    return {"t": "f", "n": len(data), "h": sha(data), "x": x}


def snapshot(root, keep_data=False):
    """Reads the tree under root: (paths, inodes, data).

    paths maps each relative path to an inode key ("i" + st_ino); inodes maps
    each key to its attrs plus "l" (st_nlink); data maps file inode keys to
    their bytes when keep_data is set. Unreadable files get "h": "error: …".
    """
    paths, inodes, data = {}, {}, {}

    def xattrs(p):
        out = {}
        for name in sorted(os.listxattr(p, follow_symlinks=False)):
            out[name] = os.getxattr(p, name, follow_symlinks=False)
        return out

    def walk(rel):
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full)):
            r = rel + "/" + name if rel else name
            p = os.path.join(root, r)
            st = os.lstat(p)
            key = "i%d" % st.st_ino
            paths[r] = key
            if key in inodes:
                continue
            if stat.S_ISDIR(st.st_mode):
                a = attrs_of("d", None, xattrs(p))
                a["l"] = st.st_nlink
                inodes[key] = a
                walk(r)
            elif stat.S_ISREG(st.st_mode):
                try:
                    with open(p, "rb") as f:
                        content = f.read()
                    a = attrs_of("f", content, xattrs(p))
                    if keep_data:
                        data[key] = bytearray(content)
                except OSError as e:
                    a = {"t": "f", "n": st.st_size, "h": "error: %s" % e, "x": {}}
                a["l"] = st.st_nlink
                inodes[key] = a
            else:
                inodes[key] = {"t": "other mode %o" % st.st_mode, "x": {}, "l": st.st_nlink}

    walk("")
    return paths, inodes, data


def newest_wal(db):
    """(name, ino, size) of the newest VOL/db/*.log, or None."""
    best = None
    for name in os.listdir(db):
        m = re.fullmatch(r"(\d+)\.log", name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), name)
    if best is None:
        return None
    try:
        st = os.stat(os.path.join(db, best[1]))
    except FileNotFoundError:
        return None
    return [best[1], st.st_ino, st.st_size]


class Inode:
    __slots__ = ("kind", "data", "xattrs")

    def __init__(self, kind, data=None, xattrs=None):
        self.kind = kind
        self.data = data if data is not None else (bytearray() if kind == "f" else None)
        self.xattrs = xattrs or {}


class Writer:
    def __init__(self, root, journal, seed, wal_dir, fsync_prob):
        self.root = root
        self.rng = random.Random(seed)
        self.seed = seed
        self.wal_dir = wal_dir
        self.fsync_prob = fsync_prob
        self.jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.paths = {}    # relative path -> inode key
        self.inodes = {}   # inode key -> Inode
        self.steps = 0     # global step count
        self.op = 0
        self.cur = None    # steps of the operation being planned
        self.names = 0

    # ------------------------------------------------------------ journal

    def log(self, obj):
        line = (json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n").encode()
        os.write(self.jfd, line)
        os.fsync(self.jfd)

    # ------------------------------------------------------------ model

    def full(self, rel):
        return os.path.join(self.root, rel)

    def links(self, key):
        return [p for p, k in self.paths.items() if k == key]

    def files(self):
        return [p for p, k in self.paths.items() if self.inodes[k].kind == "f"]

    def dirs(self):
        return [p for p, k in self.paths.items() if self.inodes[k].kind == "d"]

    def children(self, d):
        pre = d + "/"
        return [p for p in self.paths if p.startswith(pre)]

    def depth(self, p):
        return p.count("/") + 1 if p else 0

    def total_bytes(self):
        return sum(len(i.data) for i in self.inodes.values() if i.kind == "f")

    def new_key(self):
        self.names += 1
        return "n%d.%d" % (self.seed, self.names)

    def new_name(self, parent, prefix):
        while True:
            r = self.rng.random()
            if r < 0.05:
                base = prefix + " spaced %d" % self.rng.randrange(1000)
            elif r < 0.10:
                base = prefix + "-\u00e9t\u00e9-%d" % self.rng.randrange(1000)
            elif r < 0.13:
                base = prefix + "L" * self.rng.randrange(150, 240) + str(self.rng.randrange(100))
            else:
                base = "%s%d" % (prefix, self.rng.randrange(100000))
            p = parent + "/" + base if parent else base
            if p not in self.paths:
                return p

    def pick_dir(self, max_depth=MAX_DEPTH):
        ds = [d for d in self.dirs() if self.depth(d) < max_depth] + ["", ""]
        return self.rng.choice(ds)

    def begin_op(self):
        self.cur = []

    def commit(self, paths, keys):
        """Records one commit: the current model state of these paths and inodes."""
        p = {q: self.paths.get(q) for q in paths}
        i = {}
        for k in keys:
            ino = self.inodes.get(k)
            i[k] = attrs_of(ino.kind, ino.data, ino.xattrs) if ino else None
        self.cur.append({"p": p, "i": i})

    def drop_link(self, path):
        """Removes path from the model; returns the inode keys that changed."""
        key = self.paths.pop(path)
        if key not in self.paths.values():
            del self.inodes[key]
        return [key]

    # ------------------------------------------------------------ content

    def content(self, n):
        if n == 0:
            return b""
        r = self.rng.random()
        if r < 0.7:
            return self.rng.randbytes(n)
        if r < 0.85:
            pat = self.rng.randbytes(self.rng.randrange(1, 64))
            return (pat * (n // len(pat) + 1))[:n]
        return bytes([self.rng.randrange(256)]) * n

    def pick_size(self):
        r = self.rng.random()
        if r < 0.06:
            return 0
        if r < 0.44:
            return self.rng.randint(1, 4096)
        if r < 0.62:
            return self.rng.randint(4097, INLINE - 1)
        if r < 0.71:
            return INLINE
        if r < 0.80:
            return INLINE + 1
        if r < 0.92:
            return self.rng.choice([INLINE - 1, 2 * INLINE, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
        if r < 0.99:
            return self.rng.randint(INLINE + 2, 1 << 20)
        return self.rng.randint(1 << 20, 3 << 20)

    def want_fsync(self):
        return self.rng.random() < self.fsync_prob

    # ------------------------------------------------------------ syscalls

    def do_fsync(self, fd, upto, datasync=False):
        if datasync:
            os.fdatasync(fd)
        else:
            os.fsync(fd)
        wal = newest_wal(self.wal_dir) if self.wal_dir else None
        self.log({"t": "sync", "op": self.op, "upto": upto, "wal": wal})

    def write_segments(self, fd, segs):
        for off, b in segs:
            pos = 0
            while pos < len(b):
                n = min(len(b) - pos, self.rng.choice([4096, 65536, 131072, 1 << 20]))
                done = os.pwrite(fd, b[pos:pos + n], off + pos)
                if done <= 0:
                    raise OSError(errno.EIO, "short write at %d" % (off + pos))
                pos += done

    # ------------------------------------------------------------ operations

    def op_create(self):
        """Creates a file or replaces one with O_TRUNC; some with holes."""
        existing = [f for f in self.files()]
        if existing and self.rng.random() < 0.2:
            path = self.rng.choice(existing)
            key = self.paths[path]
            self.inodes[key].data = bytearray()
        else:
            path = self.new_name(self.pick_dir(), "f")
            key = self.new_key()
            self.inodes[key] = Inode("f")
            self.paths[path] = key
        ino = self.inodes[key]
        self.commit(self.links(key), [key])  # open: created or truncated, empty
        size = self.pick_size()
        segs, trailing = [], None
        if size > 0 and self.rng.random() < 0.25:
            # holes: data segments with gaps, maybe a hole at the end
            pos = self.rng.choice([0, 0, self.rng.randrange(size)])
            while pos < size:
                n = min(size - pos, self.rng.randint(1, max(1, size // 3)))
                segs.append((pos, self.content(n)))
                pos += n + self.rng.choice([0, self.rng.randint(1, max(1, size // 4)), INLINE, CHUNK])
            if self.rng.random() < 0.4:
                trailing = size + self.rng.choice([1, 4096, self.rng.randint(1, 300000)])
        else:
            segs.append((0, self.content(size)))
        for off, b in segs:
            end = off + len(b)
            if end > len(ino.data):
                ino.data.extend(bytes(end - len(ino.data)))
            ino.data[off:end] = b
        if trailing is not None:
            # ftruncate is a setattr: it commits the buffered writes first
            self.commit(self.links(key), [key])
            ino.data.extend(bytes(trailing - len(ino.data)))
        self.commit(self.links(key), [key])
        fsync = self.want_fsync()
        desc = "create %r size %d%s%s%s" % (
            path, len(ino.data), " holes" if len(segs) > 1 or (segs and segs[0][0]) else "",
            " trailing-hole" if trailing is not None else "", " fsync" if fsync else "")

        def run(base):
            fd = os.open(self.full(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                self.write_segments(fd, segs)
                if trailing is not None:
                    os.ftruncate(fd, trailing)
                if fsync:
                    self.do_fsync(fd, base + len(self.cur), self.rng.random() < 0.3)
            finally:
                os.close(fd)
            return fsync, self.links(key)
        return desc, run

    def op_overwrite(self):
        files = [f for f in self.files()]
        if not files:
            return self.op_create()
        path = self.rng.choice(files)
        key = self.paths[path]
        ino = self.inodes[key]
        parts = []
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            size = len(ino.data)
            r = self.rng.random()
            if r < 0.15:
                off = size + self.rng.choice([0, 1, 4096, self.rng.randint(1, 200000)])  # beyond: hole
            elif r < 0.3 and size > INLINE:
                off = max(0, INLINE - self.rng.randint(0, 100))  # across the inline threshold
            else:
                off = self.rng.randint(0, size)
            n = self.rng.choice([1, self.rng.randint(1, 4096), self.rng.randint(1, CHUNK // 2), INLINE + 1])
            off = min(off, MAX_FILE)
            n = max(0, min(n, MAX_FILE - off))
            b = self.content(n)
            end = off + n
            if n and end > len(ino.data):
                ino.data.extend(bytes(end - len(ino.data)))
            ino.data[off:end] = b
            mid_sync = len(parts) == 0 and self.rng.random() < self.fsync_prob / 2
            parts.append((off, b, mid_sync))
            if mid_sync:
                self.commit(self.links(key), [key])
        if not self.cur or parts[-1][2] is False:
            self.commit(self.links(key), [key])
        fsync = self.want_fsync()
        desc = "overwrite %r %s -> size %d%s" % (
            path, ",".join("%d+%d%s" % (o, len(b), " fsync" if s else "") for o, b, s in parts),
            len(ino.data), " fsync" if fsync else "")

        def run(base):
            fd = os.open(self.full(path), os.O_WRONLY)
            try:
                done = 0
                for off, b, s in parts:
                    self.write_segments(fd, [(off, b)])
                    if s:
                        done += 1
                        self.do_fsync(fd, base + done)
                if fsync:
                    self.do_fsync(fd, base + len(self.cur))
            finally:
                os.close(fd)
            return fsync, self.links(key)
        return desc, run

    def op_append(self):
        files = self.files()
        if not files:
            return self.op_create()
        path = self.rng.choice(files)
        key = self.paths[path]
        ino = self.inodes[key]
        n = self.pick_size()
        n = max(0, min(n, MAX_FILE - len(ino.data)))
        b = self.content(n)
        ino.data.extend(b)
        self.commit(self.links(key), [key])
        fsync = self.want_fsync()
        desc = "append %r +%d -> size %d%s" % (path, n, len(ino.data), " fsync" if fsync else "")

        def run(base):
            fd = os.open(self.full(path), os.O_WRONLY | os.O_APPEND)
            try:
                pos = 0
                while pos < len(b):
                    pos += os.write(fd, b[pos:pos + (1 << 20)])
                if fsync:
                    self.do_fsync(fd, base + len(self.cur))
            finally:
                os.close(fd)
            return fsync, self.links(key)
        return desc, run

    def op_truncate(self):
        files = self.files()
        if not files:
            return self.op_create()
        path = self.rng.choice(files)
        key = self.paths[path]
        ino = self.inodes[key]
        size = len(ino.data)
        new = self.rng.choice([
            0, max(0, size - 1), size + 1, INLINE - 1, INLINE, INLINE + 1, CHUNK, CHUNK + 1,
            self.rng.randint(0, max(0, size)), self.rng.randint(0, max(0, size)),
            size + self.rng.randint(1, 300000)])
        if self.total_bytes() > DATA_CAP:
            new = min(new, size // 2)
        new = min(new, MAX_FILE)
        if new < size:
            del ino.data[new:]
        else:
            ino.data.extend(bytes(new - size))
        self.commit(self.links(key), [key])
        by_fd = self.rng.random() < 0.3
        desc = "truncate %r %d -> %d%s" % (path, size, new, " (ftruncate)" if by_fd else "")

        def run(base):
            if by_fd:
                fd = os.open(self.full(path), os.O_WRONLY)
                try:
                    os.ftruncate(fd, new)
                finally:
                    os.close(fd)
            else:
                os.truncate(self.full(path), new)
            return False, self.links(key)
        return desc, run

    def op_rename(self):
        cands = list(self.paths)
        if not cands:
            return self.op_mkdir()
        src = self.rng.choice(cands)
        skey = self.paths[src]
        is_dir = self.inodes[skey].kind == "d"
        dst = None
        if self.rng.random() < 0.35:
            # onto an existing entry of the same kind
            if is_dir:
                opts = [d for d in self.dirs() if d != src and not self.children(d)
                        and not d.startswith(src + "/") and not src.startswith(d + "/")]
            else:
                opts = [f for f in self.files() if self.paths[f] != skey]
            if opts:
                dst = self.rng.choice(opts)
        if dst is None:
            if is_dir:
                parents = [d for d in self.dirs() if d != src and not d.startswith(src + "/")
                           and self.depth(d) + 1 + self.subtree_depth(src) <= MAX_DEPTH + 1]
                parent = self.rng.choice(parents + ["", ""])
            else:
                parent = self.pick_dir()
            dst = self.new_name(parent, "d" if is_dir else "f")
        touched_p, touched_i = [src, dst], []
        if dst in self.paths:
            touched_i += self.drop_link(dst)
        moved = [(p, dst + p[len(src):]) for p in self.children(src)] if is_dir else []
        for old, new in moved:
            self.paths[new] = self.paths.pop(old)
            touched_p += [old, new]
        self.paths[dst] = self.paths.pop(src)
        self.commit(touched_p, touched_i)
        desc = "rename %r -> %r%s" % (src, dst, " (replacing)" if touched_i else "")

        def run(base):
            os.rename(self.full(src), self.full(dst))
            return False, touched_p
        return desc, run

    def subtree_depth(self, d):
        base = self.depth(d)
        return max([self.depth(p) - base for p in self.children(d)] + [0])

    def op_unlink(self):
        files = self.files()
        if not files:
            return self.op_create()
        path = self.rng.choice(files)
        keys = self.drop_link(path)
        self.commit([path], keys)
        desc = "unlink %r" % path

        def run(base):
            os.unlink(self.full(path))
            return False, [path]
        return desc, run

    def op_mkdir(self):
        path = self.new_name(self.pick_dir(MAX_DEPTH - 1), "d")
        key = self.new_key()
        self.inodes[key] = Inode("d")
        self.paths[path] = key
        self.commit([path], [key])
        desc = "mkdir %r" % path

        def run(base):
            os.mkdir(self.full(path))
            return False, [path]
        return desc, run

    def op_rmdir(self):
        empty = [d for d in self.dirs() if not self.children(d)]
        if not empty:
            return self.op_mkdir()
        path = self.rng.choice(empty)
        keys = self.drop_link(path)
        self.commit([path], keys)
        desc = "rmdir %r" % path

        def run(base):
            os.rmdir(self.full(path))
            return False, [path]
        return desc, run

    def op_link(self):
        files = self.files()
        if not files:
            return self.op_create()
        src = self.rng.choice(files)
        key = self.paths[src]
        dst = self.new_name(self.pick_dir(), "h")
        self.paths[dst] = key
        self.commit([dst], [key])
        desc = "link %r -> %r" % (src, dst)

        def run(base):
            os.link(self.full(src), self.full(dst))
            return False, self.links(key)
        return desc, run

    def op_setxattr(self):
        if not self.paths:
            return self.op_create()
        path = self.rng.choice(list(self.paths))
        key = self.paths[path]
        ino = self.inodes[key]
        name = "user.k%d" % self.rng.randrange(6)
        r = self.rng.random()
        n = 0 if r < 0.1 else 65536 if r < 0.15 else self.rng.randint(1, 60000) if r < 0.25 \
            else self.rng.randint(1, 300)
        value = self.content(n)
        ino.xattrs[name] = value
        self.commit([path], [key])
        desc = "setxattr %r %s (%d bytes)" % (path, name, n)

        def run(base):
            os.setxattr(self.full(path), name, value, follow_symlinks=False)
            return False, self.links(key)
        return desc, run

    def op_removexattr(self):
        have = [p for p, k in self.paths.items() if self.inodes[k].xattrs]
        if not have:
            return self.op_setxattr()
        path = self.rng.choice(have)
        key = self.paths[path]
        ino = self.inodes[key]
        name = self.rng.choice(sorted(ino.xattrs))
        del ino.xattrs[name]
        self.commit([path], [key])
        desc = "removexattr %r %s" % (path, name)

        def run(base):
            os.removexattr(self.full(path), name, follow_symlinks=False)
            return False, self.links(key)
        return desc, run

    def op_fsync(self):
        """fsync of a file or directory already there: syncs everything before."""
        path = self.rng.choice(list(self.paths) + [""])
        is_dir = path == "" or self.inodes[self.paths[path]].kind == "d"
        desc = "fsync %s %r" % ("dir" if is_dir else "file", path)

        def run(base):
            fd = os.open(self.full(path) if path else self.root,
                         os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0))
            try:
                self.do_fsync(fd, base)
            finally:
                os.close(fd)
            return True, []
        return desc, run

    # ------------------------------------------------------------ main loop

    def choose(self):
        ops = {
            self.op_create: 24, self.op_overwrite: 12, self.op_append: 8, self.op_truncate: 8,
            self.op_rename: 10, self.op_unlink: 8, self.op_mkdir: 5, self.op_rmdir: 3,
            self.op_link: 5, self.op_setxattr: 7, self.op_removexattr: 2, self.op_fsync: 4,
        }
        nfiles = len(self.files())
        ndirs = len(self.dirs())
        if self.total_bytes() > DATA_CAP or nfiles > MAX_FILES:
            for f in (self.op_create, self.op_append, self.op_overwrite, self.op_link):
                ops[f] = 0
            ops[self.op_unlink] = 30
            ops[self.op_truncate] = 15
        if ndirs >= MAX_DIRS:
            ops[self.op_mkdir] = 0
            ops[self.op_rmdir] = 8
        fns = list(ops)
        return self.rng.choices(fns, weights=[ops[f] for f in fns])[0]

    def adopt(self):
        paths, inodes, data = snapshot(self.root, keep_data=True)
        for key, a in inodes.items():
            if a["t"] == "d":
                self.inodes[key] = Inode("d")
            elif a["t"] == "f" and not a["h"].startswith("error"):
                self.inodes[key] = Inode("f", data[key])
            else:
                raise RuntimeError("cannot adopt %s: %r" % (key, a))
        for key, ino in self.inodes.items():
            p = next(q for q, k in paths.items() if k == key)
            for name, v in self_xattrs(self.full(p)).items():
                ino.xattrs[name] = v
        self.paths = dict(paths)
        self.log({"t": "ready", "paths": paths,
                  "inodes": {k: {f: v for f, v in a.items() if f != "l"} for k, a in inodes.items()}})

    def run(self, max_ops, deadline):
        self.adopt()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while self.op < max_ops and time.monotonic() < deadline:
            self.op += 1
            self.begin_op()
            fn = self.choose()
            desc, run = fn()
            base = self.steps
            self.log({"t": "begin", "op": self.op, "desc": desc, "base": base, "steps": self.cur})
            try:
                fsynced, touched = run(base)
            except OSError as e:
                self.log({"t": "error", "op": self.op, "errno": e.errno, "msg": str(e)})
                return 3
            self.steps += len(self.cur)
            expect = {}
            for p in sorted(set(touched)):
                k = self.paths.get(p)
                ino = self.inodes.get(k) if k else None
                expect[p] = attrs_of(ino.kind, ino.data, ino.xattrs) if ino else None
            self.log({"t": "ack", "op": self.op, "upto": self.steps, "fsync": fsynced,
                      "expect": expect})
        return 0


def self_xattrs(p):
    return {n: os.getxattr(p, n, follow_symlinks=False)
            for n in os.listxattr(p, follow_symlinks=False)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="directory inside the mount to work in")
    ap.add_argument("--journal", required=True, help="journal file, outside the mount")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--wal-dir", help="VOL/db: its newest *.log is sized after each fsync")
    ap.add_argument("--fsync-prob", type=float, default=0.15)
    ap.add_argument("--max-ops", type=int, default=100000)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    a = ap.parse_args()
    w = Writer(a.root, a.journal, a.seed, a.wal_dir, a.fsync_prob)
    return w.run(a.max_ops, time.monotonic() + a.max_seconds)


if __name__ == "__main__":
    sys.exit(main())

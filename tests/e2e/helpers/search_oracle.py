#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A model of `metafs find` for the randomized end-to-end test.

  search_oracle.py build  ROOT SEED           make a random tree under ROOT
  search_oracle.py mutate ROOT SEED ROUND     rename, delete, retag, truncate, link
  search_oracle.py check  MNT VOL METAFS SEED ROUND NQUERIES
        walk MNT, make NQUERIES random queries, compute each answer from the
        walk, run `metafs find ... --consistent -0 QUERY` and compare the
        answers as multisets of paths (a path listed twice is an error).

Semantics of the model (from `metafs find --help` and the feature notes):
  - every entry below the mount root is a result row (inode, listed name,
    listed path); the root itself is never listed;
  - inode-wide conditions (free words, tag:, xattr fields, size, type, owner,
    mode, nlink, mtime) list the inode under each of its names;
  - name: and path: are conditions on the name being listed (so a hard link
    shows only under the names that match), for words and globs alike;
  - a free word matches a word of any name, any path (so every ancestor's
    name) or any user.* xattr value that is UTF-8 text (JSON text included,
    keys and all); words are runs of letters and digits, compared without
    case and diacritics (unicode61 remove_diacritics 2);
  - tags are the comma-separated, blank-trimmed entries of user.xdg.tags and
    the NAME of every user.tag.NAME xattr;
  - an xattr value that parses as JSON is typed (objects give dotted names,
    arrays repeat their name, null gives nothing); any other UTF-8 value is
    text; a query value is a number when it reads as a decimal number, a
    boolean for true/false, a string otherwise or when quoted;
  - a field that is neither built in nor the name (or a dotted prefix of the
    name) of a field some indexed file has is an error (exit 2).
Corners left out of the queries so the model need not copy the tokenizer:
free words and name: words are plain lower-case ASCII words that no
non-ASCII vocabulary word folds to; phrases are not generated; JSON numbers
stay small (exact in a double), no NaN, no huge integers. Empty values are
set and queried (`field:""` matches an xattr set to the empty string).
"""
import calendar
import collections
import fnmatch
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
import unicodedata

ASCII_WORDS = ["alpha", "bravo", "report", "draft", "photo", "beach", "invoice", "notes", "final",
               "summer", "budget", "q1", "q2", "plan", "river", "stone", "delta", "omega", "zulu",
               "tango", "mars", "venus", "data", "archive"]
OTHER_WORDS = ["café", "naïve", "Über", "日本", "ñandú", "Ωmega", "Report", "FINAL", "x-ray"]
SEPS = [" ", "-", "_", ".", "-", " "]
EXTS = [".txt", ".jpg", ".md", ".tar.gz", "", "", ".pdf"]
TAGS = ["beach", "sunset", "family", "work", "todo", "big sky", "café", "2024", "x-ray", "urgent"]
TAG_NAMES = ["urgent", "review", "keep", "blue"]  # user.tag.NAME
COLORS = ["red", "green", "blue", "dark red", "Red"]
PROJECTS = ["apollo", "gemini", "mercury", "deep space", "42", "7.5", "true"]
OWNERS = ["ann", "bob", "cy", "dee"]
MTIMES = [calendar.timegm(t) for t in [(2019, 5, 1, 12, 0, 0), (2021, 2, 28, 23, 59, 59), (2022, 7, 14, 0, 0, 0),
                                        (2023, 12, 31, 23, 0, 0), (2024, 1, 1, 0, 0, 0), (2025, 6, 30, 8, 30, 0)]]
DATES = ["2020-01-01", "2021-02-28", "2022-07-14", "2023-12-31", "2024-01-01", "2025-06-30", "2025-12-31"]
# True only to explain a difference: name:WORD matched against every name of
# a hard-linked file instead of the name being listed.
NAME_WORD_ANY_LINK = [False]
NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# ---------------------------------------------------------------- building

def rand_name(r):
    n = r.choice([1, 1, 2, 2, 3])
    parts = []
    for _ in range(n):
        parts.append(r.choice(OTHER_WORDS) if r.random() < 0.15 else r.choice(ASCII_WORDS))
    s = parts[0]
    for p in parts[1:]:
        s += r.choice(SEPS) + p
    if r.random() < 0.3:
        s += str(r.randint(1, 99))
    return s


def unique(dirpath, name):
    cand, i = name, 2
    while os.path.lexists(os.path.join(dirpath, cand)):
        cand = "%s~%d" % (name, i)
        i += 1
    return cand


def rand_annotations(r):
    if r.random() < 0.08:
        return r.choice(['{"n": 3,', '{broken json river', '[1, 2', '{"n": }'])  # stays text
    d = {}
    if r.random() < 0.7:
        d["n"] = r.choice([r.randint(-5, 20), r.randint(-5, 20), round(r.uniform(-5, 20), 2)])
    if r.random() < 0.15:
        d["n"] = str(r.randint(0, 9))  # a string that reads as a number
    if r.random() < 0.5:
        d["color"] = r.choice(COLORS)
    if r.random() < 0.4:
        d["words"] = r.sample(ASCII_WORDS, r.randint(0, 3))
    if r.random() < 0.3:
        d["ns"] = [r.randint(0, 30) for _ in range(r.randint(1, 4))]
    if r.random() < 0.4:
        d["meta"] = {"owner": r.choice(OWNERS), "level": r.randint(0, 5)}
        if r.random() < 0.3:
            d["meta"]["deep"] = {"x": r.randint(0, 3)}
    if r.random() < 0.3:
        d["ok"] = r.random() < 0.5
    if r.random() < 0.1:
        d["gone"] = None
    return json.dumps(d, ensure_ascii=r.random() < 0.5)


def set_random_xattrs(r, path):
    def sx(name, value):
        os.setxattr(path, name, value.encode() if isinstance(value, str) else value, follow_symlinks=False)

    if r.random() < 0.45:
        tags = r.sample(TAGS, r.randint(1, 3))
        text = ",".join(r.choice(["", " ", "  ", "\t"]) + t + r.choice(["", " "]) for t in tags)
        if r.random() < 0.2:
            text += ",,"
        sx("user.xdg.tags", text)
    for tn in TAG_NAMES:
        if r.random() < 0.12:
            sx("user.tag." + tn, r.choice(["", "1", "yes please"]))
    if r.random() < 0.5:
        sx("user.annotations", rand_annotations(r))
    if r.random() < 0.3:
        sx("user.project", r.choice(PROJECTS + [""]))
    if r.random() < 0.2:
        sx("user.comment", " ".join(r.choice(ASCII_WORDS) for _ in range(r.randint(1, 5))))
    if r.random() < 0.05:
        sx("user.blob", b"\xff" + bytes(r.randrange(256) for _ in range(15)))  # never UTF-8


def make_file(r, dirpath):
    name = unique(dirpath, rand_name(r) + r.choice(EXTS))
    p = os.path.join(dirpath, name)
    size = r.choice([0, r.randint(0, 1024), r.randint(0, 16 * 1024), r.randint(0, 200 * 1024)])
    with open(p, "wb") as f:
        if size and r.random() < 0.3:
            f.write(os.urandom(min(size, 4096)))
        f.truncate(size)
    os.chmod(p, r.choice([0o644, 0o600, 0o640, 0o755, 0o444, 0o664]))
    os.lchown(p, r.choice([0, 65534]), r.choice([0, 65534]))
    set_random_xattrs(r, p)
    return p


def all_dirs(root):
    out = [root]
    for d, dirs, _ in os.walk(root):
        out.extend(os.path.join(d, x) for x in dirs)
    return sorted(out)


def all_files(root, regular_only=True):
    out = []
    for d, _, files in os.walk(root):
        for x in files:
            p = os.path.join(d, x)
            if not regular_only or stat.S_ISREG(os.lstat(p).st_mode):
                out.append(p)
    return sorted(out)


def build(root, seed):
    r = random.Random(seed)
    dirs = [root]
    for _ in range(40):
        parent = r.choice(dirs)
        if parent.count("/") - root.count("/") >= 4:
            parent = root
        p = os.path.join(parent, unique(parent, rand_name(r)))
        os.mkdir(p)
        if r.random() < 0.4:
            set_random_xattrs(r, p)
        dirs.append(p)
    for _ in range(230):
        make_file(r, r.choice(dirs))
    files = all_files(root)
    for _ in range(20):
        src, d = r.choice(files), r.choice(dirs)
        os.link(src, os.path.join(d, unique(d, r.choice([os.path.basename(src), rand_name(r)]))))
    for _ in range(8):
        d = r.choice(dirs)
        os.symlink(r.choice(["../x", "target", "a/b/c", "café"]), os.path.join(d, unique(d, rand_name(r))))
    for _ in range(3):
        d = r.choice(dirs)
        os.mkfifo(os.path.join(d, unique(d, rand_name(r) + ".fifo")))
    for d in dirs[1:]:
        os.chmod(d, r.choice([0o755, 0o750, 0o700, 0o775]))
        if r.random() < 0.3:
            os.lchown(d, 65534, r.choice([0, 65534]))
    for p in all_files(root, regular_only=False) + dirs[1:]:
        if r.random() < 0.4:
            t = r.choice(MTIMES) * 10**9 + r.randrange(10**9)
            os.utime(p, ns=(t, t), follow_symlinks=False)


def mutate(root, seed, rnd):
    r = random.Random(seed * 1000 + rnd)
    stats = collections.Counter()

    def dirs():
        return all_dirs(root)

    def files():
        return all_files(root)

    for _ in range(5):  # directory renames, never into their own subtree
        ds = dirs()[1:]
        if not ds:
            break
        src = r.choice(ds)
        targets = [d for d in dirs() if d != src and not d.startswith(src + "/")]
        dst_dir = r.choice(targets)
        os.rename(src, os.path.join(dst_dir, unique(dst_dir, rand_name(r))))
        stats["dir renames"] += 1
    for _ in range(15):
        fs = files()
        src, d = r.choice(fs), r.choice(dirs())
        if r.random() < 0.2:
            dst = r.choice(fs)  # replaces an existing file
            if os.path.samefile(src, dst):
                continue
        else:
            dst = os.path.join(d, unique(d, rand_name(r) + r.choice(EXTS)))
        os.rename(src, dst)
        stats["file renames"] += 1
    for _ in range(12):
        os.unlink(r.choice(files()))
        stats["unlinks"] += 1
    ds = [d for d in dirs()[1:] if len(all_files(d, regular_only=False)) < 15]
    if ds:
        shutil.rmtree(r.choice(ds))
        stats["rmtree"] += 1
    for _ in range(30):
        p = r.choice(files() + dirs()[1:])
        names = [n for n in os.listxattr(p, follow_symlinks=False) if n.startswith("user.")]
        if names and r.random() < 0.4:
            os.removexattr(p, r.choice(names), follow_symlinks=False)
        else:
            set_random_xattrs(r, p)
        stats["xattr changes"] += 1
    for _ in range(15):
        os.truncate(r.choice(files()), r.choice([0, r.randint(0, 2048), r.randint(0, 200 * 1024)]))
        stats["truncates"] += 1
    for _ in range(10):
        with open(r.choice(files()), "ab") as f:
            f.write(b"appended " * r.randint(1, 3000))
        stats["appends"] += 1
    for _ in range(4):  # symlinks and fifos move too
        others = [p for p in all_files(root, regular_only=False) if not stat.S_ISREG(os.lstat(p).st_mode)]
        if others:
            d = r.choice(dirs())
            os.rename(r.choice(others), os.path.join(d, unique(d, rand_name(r))))
            stats["special renames"] += 1
    d = r.choice(dirs())
    os.mkdir(os.path.join(d, unique(d, rand_name(r))))
    empty = [d for d in dirs()[1:] if not os.listdir(d)]
    if empty:  # a directory renamed over an empty one
        dst = r.choice(empty)
        srcs = [d for d in dirs()[1:] if d != dst and not dst.startswith(d + "/") and
                not d.startswith(dst + "/")]
        if srcs:
            os.rename(r.choice(srcs), dst)
            stats["dir renames over an empty dir"] += 1
    for _ in range(10):
        src, d = r.choice(files()), r.choice(dirs())
        os.link(src, os.path.join(d, unique(d, rand_name(r))))
        stats["links"] += 1
    for _ in range(10):
        p = r.choice(files())
        os.chmod(p, r.choice([0o644, 0o600, 0o640, 0o755, 0o444]))
        os.lchown(p, r.choice([0, 65534]), r.choice([0, 65534]))
        if r.random() < 0.5:
            t = r.choice(MTIMES) * 10**9
            os.utime(p, ns=(t, t))
        stats["chmod/chown/utime"] += 1
    for _ in range(15):
        make_file(r, r.choice(dirs()))
        stats["new files"] += 1
    print("round %d mutations: %s" % (rnd, ", ".join("%d %s" % (v, k) for k, v in sorted(stats.items()))))


# ---------------------------------------------------------------- the model

def fold(s):
    s = unicodedata.normalize("NFD", s.lower())
    return "".join(c for c in s if unicodedata.category(c) != "Mn")


def words(s):
    return set(re.findall(r"[^\W_]+", fold(s)))


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def cnum(v):
    return "%.17g" % v


class Inode:
    def __init__(self, st, xattrs):
        self.st = st
        self.xattrs = xattrs  # user.* only: name -> bytes
        self.rows = []  # (path, name)
        self.tags = set()
        self.attrs = []  # (key, num or None, str or None)
        self.texts = []
        for name, val in xattrs.items():
            key = name[5:]
            ok = is_utf8(val)
            if key == "xdg.tags" and ok:
                for t in val.decode().split(","):
                    t = t.strip(" \t")
                    if t:
                        self.tags.add(t)
            elif key.startswith("tag.") and len(key) > 4:
                t = key[4:].strip(" \t")
                if t:
                    self.tags.add(t)
            if not ok:
                continue
            text = val.decode()
            parsed, isjson = None, False
            if val:
                try:
                    parsed = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                    isjson = True
                except ValueError:
                    pass
            if isjson:
                self.flatten(key, parsed, 0)
            else:
                self.attrs.append((key, None, text))
            if val:
                self.texts.append(text)

    def flatten(self, key, j, depth):
        if depth > 32:
            return
        if isinstance(j, dict):
            for k, v in j.items():
                self.flatten(key + "." + k, v, depth + 1)
        elif isinstance(j, list):
            for v in j:
                self.flatten(key, v, depth + 1)
        elif isinstance(j, bool):
            self.attrs.append((key, 1.0 if j else 0.0, "true" if j else "false"))
        elif isinstance(j, (int, float)):
            self.attrs.append((key, float(j), cnum(float(j))))
        elif isinstance(j, str):
            self.attrs.append((key, None, j))

    def finish(self):
        ws = set()
        for path, name in self.rows:
            ws |= words(name) | words(path)
        for t in self.texts:
            ws |= words(t)
        self.words = ws


def walk(mnt):
    inodes = {}

    def visit(dirpath, rel):
        with os.scandir(dirpath) as it:
            ents = sorted(it, key=lambda e: e.name)
        for e in ents:
            p = os.path.join(dirpath, e.name)
            st = os.lstat(p)
            ino = inodes.get(st.st_ino)
            if ino is None:
                xs = {}
                if not stat.S_ISLNK(st.st_mode):
                    for n in os.listxattr(p, follow_symlinks=False):
                        if n.startswith("user."):
                            xs[n] = os.getxattr(p, n, follow_symlinks=False)
                ino = inodes[st.st_ino] = Inode(st, xs)
            relp = rel + "/" + e.name
            ino.rows.append((relp, e.name))
            if stat.S_ISDIR(st.st_mode):
                visit(p, relp)

    visit(mnt, "")
    for i in inodes.values():
        i.finish()
    return inodes


def known_field(inodes, name):
    for i in inodes.values():
        for k, _, _ in i.attrs:
            if k == name or k.startswith(name + "."):
                return True
    return False


# ---------------------------------------------------------------- queries

def quote(v):
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


BUILTIN_FIELDS = {"name", "path", "type", "size", "mtime", "atime", "ctime", "user", "group", "uid", "gid",
                  "mode", "nlink", "tag"}


def needs_quote(v):
    return not v or any(c in v for c in ' \t"()') or v.startswith(("-", ">", "<", "=")) or ".." in v


def lit(v):
    return quote(v) if needs_quote(v) else v


class Node:
    def __init__(self, text, pred, prec=3):
        self.text, self.pred, self.prec = text, pred, prec


def cmp_pred(op, a, b=None):
    if op == ":":
        return lambda x: x is not None and x == a
    if op == ">":
        return lambda x: x is not None and x > a
    if op == ">=":
        return lambda x: x is not None and x >= a
    if op == "<":
        return lambda x: x is not None and x < a
    if op == "<=":
        return lambda x: x is not None and x <= a
    lo, hi = min(a, b), max(a, b)
    return lambda x: x is not None and lo <= x <= hi


def fmt_cmp(op, a, b=None):
    if op == "..":
        return "%s..%s" % (a, b)
    return (op if op != ":" else "") + str(a)


class Gen:
    def __init__(self, r, inodes):
        self.r = r
        self.inodes = inodes
        self.all = list(inodes.values())
        self.dirs = sorted(p for i in self.all if stat.S_ISDIR(i.st.st_mode) for p, _ in i.rows)

    def pick_inode(self, want=None):
        cands = [i for i in self.all if want is None or want(i)]
        return self.r.choice(cands) if cands else None

    # atoms: each returns a Node whose pred takes (inode, path, name)
    def a_word(self):
        r = self.r
        w = r.choice(ASCII_WORDS)
        if r.random() < 0.2:
            return Node(w.upper(), lambda i, p, n: w in i.words)
        return Node(w, lambda i, p, n: w in i.words)

    def a_name(self):
        r = self.r
        w = r.choice(ASCII_WORDS)

        def pred(i, p, n):
            if NAME_WORD_ANY_LINK[0]:
                return any(w in words(x) for _, x in i.rows)
            return w in words(n)
        return Node("name:" + w, pred)

    def a_glob(self):
        r = self.r
        i = self.pick_inode()
        _, n = r.choice(i.rows)
        k = r.random()
        if k < 0.3:
            pat = n[: r.randint(1, max(1, min(6, len(n))))] + "*"
        elif k < 0.6:
            pat = "*" + n[-r.randint(1, max(1, min(5, len(n)))):]
        elif k < 0.8:
            pat = "*" + r.choice(["report", "beach", "q1", "café", " ", "-", "Report"]) + "*"
        else:
            cs = list(n)
            for j in range(len(cs)):
                if r.random() < 0.25:
                    cs[j] = "?"
            pat = "".join(cs)
            if "*" not in pat and "?" not in pat:
                pat = pat[:-1] + "?" if pat else "?"
        if "[" in pat:
            pat = "*"
        return Node("name:" + lit(pat), lambda i, p, n, pat=pat: fnmatch.fnmatchcase(n, pat))

    def a_path(self):
        d = self.r.choice(self.dirs + ["/"])
        if d == "/":
            return Node("path:/", lambda i, p, n: True)
        return Node("path:" + lit(d), lambda i, p, n, d=d: p == d or p.startswith(d + "/"))

    def a_type(self):
        c = self.r.choice("ffffdddlp")
        fmt = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "p": stat.S_IFIFO}[c]
        return Node("type:" + c, lambda i, p, n: stat.S_IFMT(i.st.st_mode) == fmt)

    def a_size(self):
        r = self.r
        op = r.choice([">", ">=", "<", "<=", ":", ".."])
        units = {"": 1, "K": 1024}
        u = r.choice(["", "K", "K"])
        if op == ":":
            i = self.pick_inode(lambda i: stat.S_ISREG(i.st.st_mode))
            a = i.st.st_size if i else 0
            u = ""
            if a % 1024 == 0 and a and r.random() < 0.5:
                a, u = a // 1024, "K"
            pred = cmp_pred(":", a * units[u])
            return Node("size:%d%s" % (a, u), lambda i, p, n: pred(i.st.st_size))
        a = r.randint(0, 200) if u == "K" else r.randint(0, 4096)
        b = r.randint(0, 200) if u == "K" else r.randint(0, 4096)
        pred = cmp_pred(op, a * units[u], b * units[u])
        if op == "..":
            text = "size:%d%s..%d%s" % (a, u, b, u)
        else:
            text = "size:%s%d%s" % (op, a, u)
        return Node(text, lambda i, p, n: pred(i.st.st_size))

    def a_owner(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            u = r.choice(["root", "nobody"])
            uid = 0 if u == "root" else 65534
            return Node("user:" + u, lambda i, p, n: i.st.st_uid == uid)
        if k < 0.6:
            uid = r.choice([0, 65534])
            return Node("uid:%d" % uid, lambda i, p, n: i.st.st_uid == uid)
        gid = r.choice([0, 65534])
        return Node("gid:%d" % gid, lambda i, p, n: i.st.st_gid == gid)

    def a_mode(self):
        m = self.r.choice([0o644, 0o600, 0o640, 0o755, 0o444, 0o664, 0o750, 0o700, 0o777])
        return Node("mode:%o" % m, lambda i, p, n: stat.S_IMODE(i.st.st_mode) == m)

    def a_nlink(self):
        r = self.r
        op, a = r.choice([(">", 1), (":", 1), (":", 2), (">=", 2), ("..", (2, 3))])
        if op == "..":
            pred = cmp_pred("..", *a)
            return Node("nlink:%d..%d" % a, lambda i, p, n: pred(i.st.st_nlink))
        pred = cmp_pred(op, a)
        return Node("nlink:" + fmt_cmp(op, a), lambda i, p, n: pred(i.st.st_nlink))

    def a_mtime(self):
        r = self.r
        if r.random() < 0.3:
            rel, days = r.choice([("<1d", 1), ("<7d", 7), (">30d", 30), ("<2w", 14)])
            lim = time.time_ns() - days * 86400 * 10**9
            if rel.startswith("<"):
                return Node("mtime:" + rel, lambda i, p, n: i.st.st_mtime_ns > lim)
            return Node("mtime:" + rel, lambda i, p, n: i.st.st_mtime_ns < lim)
        op = r.choice([">", ">=", "<", "<=", ":", ".."])
        d1, d2 = r.choice(DATES), r.choice(DATES)

        def day(d):
            lo = calendar.timegm(time.strptime(d, "%Y-%m-%d")) * 10**9
            return lo, lo + 86400 * 10**9 - 1

        (lo1, hi1), (lo2, hi2) = day(d1), day(d2)
        if op == "..":
            lo, hi = min(lo1, lo2), max(hi1, hi2)
            return Node("mtime:%s..%s" % (d1, d2), lambda i, p, n: lo <= i.st.st_mtime_ns <= hi)
        f = {">": lambda m: m > hi1, ">=": lambda m: m >= lo1, "<": lambda m: m < lo1,
             "<=": lambda m: m <= hi1, ":": lambda m: lo1 <= m <= hi1}[op]
        return Node("mtime:" + fmt_cmp(op, d1), lambda i, p, n: f(i.st.st_mtime_ns))

    def a_tag(self):
        t = self.r.choice(TAGS + TAG_NAMES)
        return Node("tag:" + lit(t), lambda i, p, n: t in i.tags)

    def a_attr(self):
        r = self.r
        i = self.pick_inode(lambda i: i.attrs)
        if i is None:
            return self.a_tag()
        key, num, sval = r.choice(i.attrs)
        if r.random() < 0.3 and "." in key and num is None:
            key2 = key.rsplit(".", 1)[0]  # a prefix: known, but holds no value of its own
            v = sval if sval is not None else "x"
            return self.attr_node(key2, ":", v, quoted=True)
        if num is not None and sval not in ("true", "false"):
            op = r.choice([":", ">", ">=", "<", "<=", ".."])
            a = num + r.choice([0, 0, -1, 1, 0.5, -2.5])
            b = num + r.choice([0, 2, -3, 10])
            return self.attr_node(key, op, a, b)
        if sval in ("true", "false"):
            return self.attr_node(key, ":", r.choice(["true", "false"]))
        if r.random() < 0.15:
            sval = r.choice(COLORS + PROJECTS + ["nomatch"])
        return self.attr_node(key, ":", sval, quoted=r.random() < 0.2)

    def attr_node(self, key, op, a, b=None, quoted=False):
        fname = ("user." + key) if self.r.random() < 0.1 else key
        if op != ":":
            def show(x):
                return ("%d" % x) if float(x).is_integer() else repr(float(x))
            pred = cmp_pred(op, float(a), float(b) if b is not None else None)
            text = "%s:%s" % (fname, fmt_cmp(op, show(a), show(b) if b is not None else None))
            return Node(text, lambda i, p, n: any(k == key and pred(nm) for k, nm, _ in i.attrs))
        v = a if isinstance(a, str) else ("%d" % a if float(a).is_integer() else repr(float(a)))
        if v == "" and fname in BUILTIN_FIELDS:
            return self.a_tag()  # tag:"" (a prefix of tag.NAME) asks the built-in field: an error
        if quoted or needs_quote(v):
            text = fname + ":" + quote(v)
            return Node(text, lambda i, p, n: any(k == key and s == v for k, _, s in i.attrs))
        if v in ("true", "false"):
            sv = v
            return Node(fname + ":" + v, lambda i, p, n: any(k == key and s == sv for k, _, s in i.attrs))
        if NUM_RE.match(v) and "x" not in v.lower() and "n" not in v.lower():
            x = float(v)
            return Node(fname + ":" + v, lambda i, p, n: any(k == key and nm == x for k, nm, _ in i.attrs))
        return Node(fname + ":" + v, lambda i, p, n: any(k == key and s == v for k, _, s in i.attrs))

    def atom(self):
        r = self.r
        f = r.choices([self.a_word, self.a_name, self.a_glob, self.a_path, self.a_type, self.a_size,
                       self.a_owner, self.a_mode, self.a_nlink, self.a_mtime, self.a_tag, self.a_attr],
                      weights=[10, 6, 8, 5, 4, 6, 3, 2, 3, 3, 10, 14])[0]
        return f()

    def expr(self, depth=0):
        r = self.r
        k = r.random()
        if depth >= 2 or k < 0.35:
            return self.atom()
        if k < 0.65:
            a, b = self.expr(depth + 1), self.expr(depth + 1)
            left = a.text if a.prec >= 2 else "(" + a.text + ")"
            right = b.text if b.prec >= 2 else "(" + b.text + ")"
            return Node(left + r.choice([" ", " AND "]) + right,
                        lambda i, p, n: a.pred(i, p, n) and b.pred(i, p, n), 2)
        if k < 0.85:
            a, b = self.expr(depth + 1), self.expr(depth + 1)
            text = a.text + " OR " + b.text
            if r.random() < 0.3:
                text = "(" + text + ")"
                return Node(text, lambda i, p, n: a.pred(i, p, n) or b.pred(i, p, n), 3)
            return Node(text, lambda i, p, n: a.pred(i, p, n) or b.pred(i, p, n), 1)
        a = self.expr(depth + 1)
        inner = a.text if a.prec == 3 and not a.text.startswith(("-", "NOT ")) else "(" + a.text + ")"
        return Node(r.choice(["-", "NOT "]) + inner, lambda i, p, n: not a.pred(i, p, n), 3)


def run_find(metafs, where, query, extra=()):
    cmd = [metafs, "find", where, "--consistent", *extra, query]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")


def check(mnt, vol, metafs, seed, rnd, nq):
    r = random.Random(seed * 7919 + rnd)
    # the answers and the model must look at one state: let the index catch up
    # with everything first (see also test_search.sh for field resolution)
    subprocess.run([metafs, "find", mnt, "--consistent", "--count", "type:d"], stdout=subprocess.DEVNULL)
    inodes = walk(mnt)
    g = Gen(r, inodes)
    bad = 0
    counted = 0
    for qn in range(nq):
        node = g.expr()
        query = node.text
        # where to ask: the whole mount, a subdirectory, or the volume
        k = r.random()
        sub = None
        if k < 0.15 and g.dirs:
            sub = r.choice(g.dirs)
            where = mnt + sub
        elif k < 0.25:
            where = vol
        else:
            where = mnt
        def expect():
            want = collections.Counter()
            for i in inodes.values():
                for p, n in i.rows:
                    if sub and not (p == sub or p.startswith(sub + "/")):
                        continue
                    if node.pred(i, p, n):
                        want[os.fsencode((mnt if where != vol else "") + p)] += 1
            return want
        want = expect()
        do_count = qn % 5 == 4
        res = run_find(metafs, where, query, ["-0"])
        tag = "seed %d round %d query %d" % (seed, rnd, qn)
        if res.returncode != 0:
            bad += 1
            print("MISMATCH %s: metafs find %s --consistent -0 %s exited %d: %s"
                  % (tag, where, shq(query), res.returncode, res.stderr.decode(errors="replace").strip()))
            continue
        got = collections.Counter(x for x in res.stdout.split(b"\0")[:-1])
        if got != want:
            bad += 1
            missing = sorted((want - got).elements())
            extra = sorted((got - want).elements())
            dups = sorted(p for p, c in got.items() if c > 1)
            print("MISMATCH %s: metafs find %s --consistent -0 %s" % (tag, where, shq(query)))
            print("  expected %d, got %d" % (sum(want.values()), sum(got.values())))
            NAME_WORD_ANY_LINK[0] = True
            if expect() == got:
                print("  (metafs matched name:WORD against every name of a hard-linked file, not the name listed)")
            NAME_WORD_ANY_LINK[0] = False
            for what, lst in (("missing", missing), ("extra", extra), ("listed twice", dups)):
                for p in lst[:8]:
                    print("  %s: %s%s" % (what, p.decode(errors="replace"), describe(inodes, mnt, vol, where, p)))
                if len(lst) > 8:
                    print("  ... %d more %s" % (len(lst) - 8, what))
            continue
        if do_count:
            counted += 1
            res = run_find(metafs, where, query, ["--count"])
            cnt = res.stdout.decode().strip()
            if res.returncode != 0 or cnt != str(sum(want.values())):
                bad += 1
                print("MISMATCH %s: --count %s printed %r (exit %d), expected %d"
                      % (tag, shq(query), cnt, res.returncode, sum(want.values())))
    # unknown fields: exit 2, one line on stderr
    for name in ("nosuch%d" % r.randint(0, 999), "annotations.zzz%d" % r.randint(0, 99)):
        if known_field(inodes, name):
            continue
        res = run_find(metafs, mnt, name + ":1")
        lines = res.stderr.decode(errors="replace").strip().splitlines()
        if res.returncode != 2 or len(lines) != 1:
            bad += 1
            print("MISMATCH seed %d round %d: unknown field %s: exit %d, stderr %r"
                  % (seed, rnd, name, res.returncode, lines))
    print("seed %d round %d: %d entries, %d queries (%d with --count), %d mismatches"
          % (seed, rnd, sum(len(i.rows) for i in inodes.values()), nq, counted, bad))
    return 1 if bad else 0


def describe(inodes, mnt, vol, where, pb):
    p = os.fsdecode(pb)
    rel = p[len(mnt):] if where != vol else p
    for i in inodes.values():
        for rp, _ in i.rows:
            if rp == rel:
                st = i.st
                xs = {k: v.decode(errors="replace")[:80] for k, v in i.xattrs.items()}
                names = [x for x, _ in i.rows]
                return "  [ino %d %s size %d mode %o uid %d nlink %d names %s tags %s xattrs %s]" % (
                    st.st_ino, stat.filemode(st.st_mode)[0], st.st_size, stat.S_IMODE(st.st_mode), st.st_uid,
                    st.st_nlink, names, sorted(i.tags), xs)
    return "  [not in the tree]"


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main(argv):
    if len(argv) >= 3 and argv[0] == "build":
        build(argv[1], int(argv[2]))
        return 0
    if len(argv) >= 4 and argv[0] == "mutate":
        mutate(argv[1], int(argv[2]), int(argv[3]))
        return 0
    if len(argv) >= 7 and argv[0] == "check":
        return check(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

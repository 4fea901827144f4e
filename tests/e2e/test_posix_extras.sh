#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POSIX behaviour beyond plain reads and writes, through a real mount:
# O_APPEND from several processes, mmap (read and shared write), flock,
# fcntl record locks, copy_file_range, setuid/setgid bits cleared by a
# non-root write, and fallocate (default, KEEP_SIZE, PUNCH_HOLE, and modes
# that are not supported).
source "$(dirname "$0")/lib.sh"
e2e_init python3 cmp fallocate setpriv sha256sum
VOL=$E2E_TMP/vol
MNT=$E2E_TMP/mnt
new_volume "$VOL"
# allow_other: the setuid check writes as another user
mount_volume "$VOL" "$MNT" -o allow_other
REF=$E2E_TMP/ref
mkdir -p "$REF"

remount() {
    unmount_volume "$MNT"
    mount_volume "$VOL" "$MNT" -o allow_other
}

# ---------------------------------------------------------------- O_APPEND
# 4 processes append 500 lines each, one write(2) per line, to one file.
APP=$MNT/append.log
: >"$APP"
pids=()
for w in 1 2 3 4; do
    python3 - "$APP" "$w" <<'PY' &
import os, sys
path, w = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
for i in range(500):
    # about 100 bytes, different for every writer and line
    line = ("w%d line %04d " % (w, i)) + chr(ord("a") + w) * (60 + (i * 7 + w) % 30) + "\n"
    n = os.write(fd, line.encode())
    assert n == len(line), "short write %d of %d" % (n, len(line))
os.close(fd)
PY
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "an O_APPEND writer failed"
done
python3 - "$APP" <<'PY' || fail "O_APPEND: lines lost, torn or overwritten"
import re, sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\n")
assert lines[-1] == b"", "the file does not end with a newline"
lines = lines[:-1]
assert len(lines) == 2000, "%d lines, expected 2000 (%d bytes)" % (len(lines), len(data))
seen = {w: [] for w in range(1, 5)}
for n, l in enumerate(lines):
    m = re.fullmatch(rb"w([1-4]) line (\d{4}) ([a-z]+)", l)
    assert m, "line %d is torn: %r" % (n + 1, l[:120])
    w, i = int(m.group(1)), int(m.group(2))
    want = chr(ord("a") + w).encode() * (60 + (i * 7 + w) % 30)
    assert m.group(3) == want, "line %d has the wrong body: %r" % (n + 1, l[:120])
    seen[w].append(i)
for w, got in seen.items():
    assert got == list(range(500)), "writer %d: %d lines, not all 0..499 in order" % (w, len(got))
PY
note "O_APPEND: 4 writers x 500 lines, all 2000 intact"

# ---------------------------------------------------------------- mmap
head -c 5000 /dev/urandom >"$REF/mm-small"
head -c 700000 /dev/urandom >"$REF/mm-big" # three chunks
python3 - "$MNT" "$REF" <<'PY' || fail "mmap"
import mmap, os, sys
mnt, ref = sys.argv[1], sys.argv[2]
for name in ("mm-small", "mm-big"):
    want = open(os.path.join(ref, name), "rb").read()
    p = os.path.join(mnt, name)
    # written with write(2), read back through a shared read-only mapping
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    assert os.write(fd, want) == len(want)
    os.close(fd)
    fd = os.open(p, os.O_RDONLY)
    m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
    assert len(m) == len(want), "%s: mapping of %d bytes, expected %d" % (name, len(m), len(want))
    assert m[:] == want, "%s: mmap read differs from what write(2) wrote" % name
    m.close()
    os.close(fd)
    # modified in place through a shared writable mapping
    edits = [(0, 17), (100, 300), (len(want) - 50, 50)]
    if len(want) > 600000:
        edits += [(262144 - 100, 200), (524288 - 4096, 8192)] # across chunk boundaries
    model = bytearray(want)
    fd = os.open(p, os.O_RDWR)
    m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for k, (off, n) in enumerate(edits):
        b = bytes([0x41 + k]) * n
        m[off:off + n] = b
        model[off:off + n] = b
    m.flush()
    m.close()
    os.close(fd)
    with open(os.path.join(ref, name + ".mapped"), "wb") as f:
        f.write(model)
    fd = os.open(p, os.O_RDONLY)
    got = b""
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        got += b
    os.close(fd)
    assert len(got) == len(model), "%s: %d bytes after the mapped write, expected %d" % (name, len(got), len(model))
    assert got == bytes(model), "%s: read(2) after msync+munmap+close does not show the mapped write" % name
PY
remount
cmp "$REF/mm-small.mapped" "$MNT/mm-small" || fail "mmap: the small file's mapped write is lost after remount"
cmp "$REF/mm-big.mapped" "$MNT/mm-big" || fail "mmap: the chunked file's mapped write is lost after remount"
note "mmap: read mapping, shared write + msync, survives remount"

# ---------------------------------------------------------------- flock
: >"$MNT/flock"
python3 - "$MNT/flock" <<'PY' || fail "flock"
import errno, fcntl, os, signal, sys, time
signal.alarm(30)  # a lock that never comes must not hang the test
path = sys.argv[1]
r, w = os.pipe()    # child -> parent
r2, w2 = os.pipe()  # parent -> child
pid = os.fork()
if pid == 0:
    code = 1
    signal.alarm(30)
    try:
        os.close(r); os.close(w2)
        fd = os.open(path, os.O_RDWR)
        os.read(r2, 1)  # A holds LOCK_EX
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(w, b"X")  # got it: wrong
        except OSError as e:
            os.write(w, b"B" if e.errno == errno.EWOULDBLOCK else b"E")
        os.read(r2, 1)  # A unlocked
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(w, b"Y")
        except OSError:
            os.write(w, b"N")
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.read(r2, 1)  # A holds LOCK_SH
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            os.write(w, b"S")
        except OSError:
            os.write(w, b"N")
        os.read(r2, 1)  # hold LOCK_SH until told
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.write(w, b"U")
        code = 0
    finally:
        os._exit(code)
os.close(w); os.close(r2)
fd = os.open(path, os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(w2, b"1")
got = os.read(r, 1)
assert got == b"B", {b"X": "B took LOCK_EX while A held it",
                     b"E": "B's LOCK_EX|LOCK_NB failed with an error other than EWOULDBLOCK"}.get(got, got)
fcntl.flock(fd, fcntl.LOCK_UN)
os.write(w2, b"2")
assert os.read(r, 1) == b"Y", "B could not take LOCK_EX after A unlocked"
fcntl.flock(fd, fcntl.LOCK_SH)
os.write(w2, b"3")
assert os.read(r, 1) == b"S", "B could not share LOCK_SH with A"
# both hold LOCK_SH: a third open file cannot take LOCK_EX
fd3 = os.open(path, os.O_RDWR)
try:
    fcntl.flock(fd3, fcntl.LOCK_EX | fcntl.LOCK_NB)
    raise AssertionError("LOCK_EX granted while two LOCK_SH are held")
except BlockingIOError:
    pass
os.write(w2, b"4")
assert os.read(r, 1) == b"U"
fcntl.flock(fd, fcntl.LOCK_UN)
fcntl.flock(fd3, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now
_, st = os.waitpid(pid, 0)
assert st == 0, "lock child failed"
PY
note "flock: LOCK_EX excludes, EWOULDBLOCK, LOCK_SH shared"

# ---------------------------------------------------------------- fcntl locks
head -c 4096 /dev/zero >"$MNT/fcntl"
python3 - "$MNT/fcntl" <<'PY' || fail "fcntl record locks"
import errno, fcntl, os, signal, struct, sys, time
signal.alarm(30)  # a lock that never comes must not hang the test
path = sys.argv[1]
FMT = "hhqqi4x"  # struct flock on Linux x86_64 and aarch64

def flock_struct(typ, start, length):
    return struct.pack(FMT, typ, os.SEEK_SET, start, length, 0)

def setlk(fd, typ, start, length, wait=False):
    fcntl.fcntl(fd, fcntl.F_SETLKW if wait else fcntl.F_SETLK, flock_struct(typ, start, length))

def getlk(fd, typ, start, length):
    t, wh, s, l, p = struct.unpack(FMT, fcntl.fcntl(fd, fcntl.F_GETLK, flock_struct(typ, start, length)))
    return t, s, l, p

r, w = os.pipe()
r2, w2 = os.pipe()
a_pid = os.getpid()
pid = os.fork()
if pid == 0:
    msg = b"ok"
    signal.alarm(30)
    try:
        os.close(r); os.close(w2)
        fd = os.open(path, os.O_RDWR)
        os.read(r2, 1)  # A holds a write lock on 0-99
        try:
            setlk(fd, fcntl.F_WRLCK, 50, 100)
            raise AssertionError("B locked 50-149 over A's lock on 0-99")
        except OSError as e:
            assert e.errno in (errno.EAGAIN, errno.EACCES), "F_SETLK: errno %d" % e.errno
        t, s, l, p = getlk(fd, fcntl.F_WRLCK, 50, 100)
        assert t == fcntl.F_WRLCK, "F_GETLK: type %d, expected F_WRLCK" % t
        assert p == a_pid, "F_GETLK: pid %d, expected %d" % (p, a_pid)
        assert (s, l) == (0, 100), "F_GETLK: range start %d len %d, expected 0 100" % (s, l)
        setlk(fd, fcntl.F_WRLCK, 100, 100)  # 100-199 is free
        t, _, _, _ = getlk(fd, fcntl.F_WRLCK, 150, 10)
        assert t == fcntl.F_UNLCK, "F_GETLK on B's own lock reports a conflict"
        # blocks until A releases 0-99, which A does 1.5 s after this "1"
        t0 = time.monotonic()
        os.write(w, b"1")
        setlk(fd, fcntl.F_WRLCK, 50, 100, wait=True)
        waited = time.monotonic() - t0
        assert waited >= 1.4, "F_SETLKW returned after %.2f s, while A held the lock for 1.5 s" % waited
        os.write(w, b"2")
        os.read(r2, 1)
        setlk(fd, fcntl.F_UNLCK, 0, 0)
    except BaseException as e:
        msg = repr(e).encode()
    finally:
        os.write(w, b"|" + msg)
        os._exit(0)
os.close(w); os.close(r2)
fd = os.open(path, os.O_RDWR)
setlk(fd, fcntl.F_WRLCK, 0, 100)
os.write(w2, b"1")
got = os.read(r, 1)
if got != b"1":
    raise AssertionError((got + os.read(r, 4096)).decode(errors="replace"))
# B must hold 100-199 now: A cannot take 150
t, s, l, p = getlk(fd, fcntl.F_WRLCK, 150, 10)
assert t == fcntl.F_WRLCK and p == pid, "A's F_GETLK does not see B's lock on 100-199"
time.sleep(1.5)  # B waits in F_SETLKW meanwhile
t0 = time.monotonic()
setlk(fd, fcntl.F_UNLCK, 0, 100)
got = os.read(r, 1)
if got != b"2":
    raise AssertionError((got + os.read(r, 4096)).decode(errors="replace"))
assert time.monotonic() - t0 < 5, "F_SETLKW took more than 5 s to return after the release"
try:
    setlk(fd, fcntl.F_WRLCK, 60, 10)
    raise AssertionError("A locked 60-69 while B holds 50-149")
except OSError as e:
    assert e.errno in (errno.EAGAIN, errno.EACCES)
os.write(w2, b"3")
rest = b""
while True:
    b = os.read(r, 4096)
    if not b:
        break
    rest += b
os.waitpid(pid, 0)
assert rest == b"|ok", "child: " + rest.decode(errors="replace")
setlk(fd, fcntl.F_WRLCK, 0, 0)  # whole file free again
PY
note "fcntl: F_SETLK conflict, F_GETLK pid and range, F_SETLKW waits"

# ---------------------------------------------------------------- copy_file_range
head -c 5242880 /dev/urandom >"$MNT/cfr-src"
python3 - "$MNT" <<'PY' || fail "copy_file_range"
import errno, os, sys
mnt = sys.argv[1]
src = os.open(os.path.join(mnt, "cfr-src"), os.O_RDONLY)
data = b""
while True:
    b = os.read(src, 1 << 20)
    if not b:
        break
    data += b
assert len(data) == 5242880
dst = os.open(os.path.join(mnt, "cfr-dst"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
done = 0
try:
    while done < len(data):
        n = os.copy_file_range(src, dst, len(data) - done, done, done)
        assert n > 0, "copy_file_range returned 0 at %d of %d" % (done, len(data))
        done += n
except OSError as e:
    # a filesystem may refuse it; userspace then copies itself
    if e.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
        raise
    print("# copy_file_range refused: %s; copying with read/write" % os.strerror(e.errno), file=sys.stderr)
    os.lseek(dst, done, 0)
    os.write(dst, data[done:])
# a middle range into the middle of an existing file
mid = os.open(os.path.join(mnt, "cfr-mid"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(mid, b"\xee" * 1000000)
try:
    off_in, off_out, count = 300000, 123456, 600000
    left = count
    while left:
        n = os.copy_file_range(src, mid, left, off_in + count - left, off_out + count - left)
        assert n > 0
        left -= n
except OSError as e:
    if e.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
        raise
    os.lseek(mid, off_out, 0)
    os.write(mid, data[off_in:off_in + count])
os.close(dst); os.close(mid); os.close(src)
want = bytearray(b"\xee" * 1000000)
want[123456:723456] = data[300000:900000]
got = open(os.path.join(mnt, "cfr-mid"), "rb").read()
assert got == bytes(want), "copy_file_range into the middle of a file: wrong contents"
PY
cmp "$MNT/cfr-src" "$MNT/cfr-dst" || fail "copy_file_range: the copy differs from the source"
must cp --reflink=never "$MNT/cfr-src" "$MNT/cfr-cp"
cmp "$MNT/cfr-src" "$MNT/cfr-cp" || fail "cp --reflink=never: the copy differs from the source"
note "copy_file_range and cp: identical 5 MiB copies"

# ---------------------------------------------------------------- setuid/setgid
chmod 0755 "$E2E_TMP" # nobody needs to reach the mount
as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}
mode_of() {
    stat -c %a "$1"
}
suid_file() { # PATH: a file of another user with mode 06777
    echo "original" >"$1"
    chown 4321:4321 "$1"
    chmod 06777 "$1"
    [ "$(mode_of "$1")" = 6777 ] || fail "chmod 06777 gave mode $(mode_of "$1")"
}
expect_mode() { # PATH MODE WHAT
    local got
    got=$(mode_of "$1")
    [ "$got" = "$2" ] || fail "setuid/setgid after $3: mode $got, expected $2"
}
suid_file "$MNT/suid-append"
as_nobody sh -c 'echo appended >>"$1"' sh "$MNT/suid-append" || fail "nobody cannot append to a 06777 file"
expect_mode "$MNT/suid-append" 777 "an append by uid 65534"
[ "$(cat "$MNT/suid-append")" = "original"$'\n'"appended" ] || fail "the append by nobody did not land"
[ "$(stat -c %u:%g "$MNT/suid-append")" = 4321:4321 ] || fail "a write by another user changed the owner"

suid_file "$MNT/suid-truncate"
as_nobody truncate -s 3 "$MNT/suid-truncate" || fail "nobody cannot truncate a 06777 file"
expect_mode "$MNT/suid-truncate" 777 "truncate -s 3 by uid 65534"
[ "$(cat "$MNT/suid-truncate")" = "ori" ] || fail "the truncate by nobody did not land"

suid_file "$MNT/suid-root-write"
echo "by root" >>"$MNT/suid-root-write"
expect_mode "$MNT/suid-root-write" 6777 "an append by root (CAP_FSETID keeps the bits)"

suid_file "$MNT/suid-chown"
chown 1234 "$MNT/suid-chown"
expect_mode "$MNT/suid-chown" 777 "chown by root"

# setgid without group execute is not a setgid program: a write keeps it
f=$MNT/sgid-noexec
echo "original" >"$f"
chown 4321:4321 "$f"
chmod 02767 "$f"
as_nobody sh -c 'echo appended >>"$1"' sh "$f" || fail "nobody cannot append to a 02767 file"
expect_mode "$f" 2767 "an append by uid 65534 to a 02767 file"

# open(O_TRUNC) without a write, as ext4 and tmpfs do
suid_file "$MNT/suid-otrunc"
as_nobody sh -c ': >"$1"' sh "$MNT/suid-otrunc" || fail "nobody cannot open a 06777 file with O_TRUNC"
[ -s "$MNT/suid-otrunc" ] && fail "the O_TRUNC open by nobody did not empty the file"
expect_mode "$MNT/suid-otrunc" 777 "open(O_TRUNC) by uid 65534"
note "setuid/setgid: cleared by a non-root append, truncate, O_TRUNC, and by chown"

# ---------------------------------------------------------------- fallocate
# Every step is done on the mount and on a model in $REF, then compared.
check_same() {
    local what=$1 name=$2
    cmp "$REF/$name" "$MNT/$name" || fail "fallocate: $what: contents differ from the model"
    local a b
    a=$(stat -c %s "$REF/$name")
    b=$(stat -c %s "$MNT/$name")
    [ "$a" = "$b" ] || fail "fallocate: $what: size $b, expected $a"
}
zero_range() { # FILE OFF LEN, in the model; size unchanged
    local file=$1 off=$2 len=$3 size
    size=$(stat -c %s "$file")
    [ $((off + len)) -le "$size" ] || len=$((size - off))
    [ "$len" -gt 0 ] || return 0
    python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(bytes(int(sys.argv[3])))' \
        "$file" "$off" "$len"
}

# a small (inline) file
head -c 10000 /dev/urandom >"$REF/fa-small"
cp "$REF/fa-small" "$MNT/fa-small"
must fallocate -l 20000 "$MNT/fa-small"            # extends; new bytes are zeros
truncate -s 20000 "$REF/fa-small"
check_same "default mode on a small file" fa-small
must fallocate -o 0 -l 8000 "$MNT/fa-small"        # inside the data: nothing changes
check_same "default mode over existing data" fa-small
must fallocate -n -o 0 -l 40000 "$MNT/fa-small"    # KEEP_SIZE
check_same "KEEP_SIZE on a small file" fa-small
must fallocate -p -o 1000 -l 3000 "$MNT/fa-small"  # PUNCH_HOLE
zero_range "$REF/fa-small" 1000 3000
check_same "punch 1000+3000 in a small file" fa-small
must fallocate -p -o 15000 -l 10000 "$MNT/fa-small" # past EOF: size stays
zero_range "$REF/fa-small" 15000 10000
check_same "punch across EOF in a small file" fa-small
must fallocate -l 100000 "$MNT/fa-small"           # past the inline threshold
truncate -s 100000 "$REF/fa-small"
check_same "default mode growing a small file past 64 KiB" fa-small
echo tail >>"$MNT/fa-small"
echo tail >>"$REF/fa-small"
check_same "append after fallocate" fa-small

# a chunked file, holes across 256 KiB chunk boundaries
head -c 5242880 /dev/urandom >"$REF/fa-big"
cp "$REF/fa-big" "$MNT/fa-big"
for range in 200000:400000 1048576:262144 1300000:1 2000000:700000 3000000:2242880; do
    off=${range%:*}
    len=${range#*:}
    must fallocate -p -o "$off" -l "$len" "$MNT/fa-big"
    zero_range "$REF/fa-big" "$off" "$len"
    check_same "punch $off+$len in a 5 MiB file" fa-big
done
must fallocate -o 100000 -l 1000000 "$MNT/fa-big"   # over data and holes: nothing changes
check_same "default mode over data and holes" fa-big
must fallocate -o 5242880 -l 1048576 "$MNT/fa-big"  # extends by 1 MiB of zeros
truncate -s 6291456 "$REF/fa-big"
check_same "default mode extending a 5 MiB file" fa-big
must fallocate -n -o 6000000 -l 4000000 "$MNT/fa-big" # KEEP_SIZE past EOF
check_same "KEEP_SIZE past EOF of a big file" fa-big
must fallocate -l 3M "$MNT/fa-new"                  # a new, empty file
head -c 3145728 /dev/zero >"$REF/fa-new"
check_same "default mode on an empty file" fa-new

# modes the filesystem does not support fail clearly and change nothing
for flag in -c -i; do
    must_fail fallocate "$flag" -o 262144 -l 262144 "$MNT/fa-big"
    last_err_matches 'Operation not supported'
    check_same "refused fallocate $flag" fa-big
done
# zero range: either supported and right, or refused
if fallocate -z -o 500000 -l 100000 "$MNT/fa-big" 2>"$E2E_TMP/z.err"; then
    zero_range "$REF/fa-big" 500000 100000
    note "fallocate -z (ZERO_RANGE) is supported"
else
    grep -q 'Operation not supported' "$E2E_TMP/z.err" ||
        fail "fallocate -z failed with: $(cat "$E2E_TMP/z.err")"
    note "fallocate -z (ZERO_RANGE) is refused: Operation not supported"
fi
check_same "ZERO_RANGE" fa-big

remount
check_same "small file after remount" fa-small
check_same "5 MiB file after remount" fa-big
check_same "fallocated new file after remount" fa-new
note "fallocate: default, KEEP_SIZE, PUNCH_HOLE; unsupported modes refused"

# everything else is still there after the last remount
python3 - "$APP" <<'PY' || fail "O_APPEND file changed after remount"
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert len(lines) == 2001, len(lines)
PY
cmp "$REF/mm-big.mapped" "$MNT/mm-big" || fail "mmap file changed after the second remount"
cmp "$MNT/cfr-src" "$MNT/cfr-dst" || fail "copy_file_range copy changed after remount"
echo "ok: O_APPEND, mmap, flock, fcntl locks, copy_file_range, setuid clearing, fallocate"

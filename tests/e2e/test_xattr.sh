#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Extended attributes through setfattr/getfattr: text, JSON, binary and empty
# values, replace, remove, missing names, trusted.*, the 64 KiB value limit,
# and survival across unmount and mount.
source "$(dirname "$0")/lib.sh"
e2e_init getfattr setfattr cmp
setup_mounted_volume

F=$MNT/file
D=$MNT/dir
echo content >"$F"
mkdir "$D"

# value NAME FILE: the value as getfattr prints it in hex.
value() {
    getfattr -h --absolute-names -e hex -n "$1" "$2" 2>&1 | sed -n "s/^$1=//p"
}
hex() {
    printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/^/0x/'
}
expect_value() {
    local name=$1 file=$2 want=$3 got
    got=$(value "$name" "$file")
    [ "$got" = "$want" ] || fail "getfattr -n $name $file: got '$got', expected '$want'"
}

must setfattr -n user.text -v "hello world" "$F"
must setfattr -n user.annotations -v '{"bicycles":4}' "$F"
must setfattr -n user.bin -v 0x00ff7f80fe0a00 "$F"
must setfattr -n user.empty "$F"
must setfattr -n user.on-dir -v "directory value" "$D"

expect_value user.text "$F" "$(hex 'hello world')"
expect_value user.annotations "$F" "$(hex '{"bicycles":4}')"
expect_value user.bin "$F" 0x00ff7f80fe0a00
expect_value user.empty "$F" 0x
expect_value user.on-dir "$D" "$(hex 'directory value')"
[ "$(getfattr --absolute-names --only-values -n user.annotations "$F")" = '{"bicycles":4}' ] ||
    fail "the JSON value does not read back as text"

cat >"$E2E_TMP/dump.want" <<'DUMP'
# file: file
user.annotations="{\"bicycles\":4}"
user.bin=0sAP9/gP4KAA==
user.empty=""
user.text="hello world"

DUMP
(cd "$MNT" && getfattr -d file) >"$E2E_TMP/dump.got" 2>&1 || fail "getfattr -d file failed"
# The listing order is up to the filesystem: compare the sorted lines.
LC_ALL=C sort "$E2E_TMP/dump.want" >"$E2E_TMP/dump.want.s"
LC_ALL=C sort "$E2E_TMP/dump.got" >"$E2E_TMP/dump.got.s"
same_files "getfattr -d outputs" "$E2E_TMP/dump.want.s" "$E2E_TMP/dump.got.s"

# Replace, with a longer and then a shorter value.
must setfattr -n user.text -v "a much longer replacement value than before" "$F"
expect_value user.text "$F" "$(hex 'a much longer replacement value than before')"
must setfattr -n user.text -v "short" "$F"
expect_value user.text "$F" "$(hex short)"

# Remove.
must setfattr -x user.bin "$F"
must_fail getfattr -n user.bin "$F"
last_err_matches 'No such attribute'
getfattr --absolute-names -d "$F" | grep -q '^user.bin' && fail "user.bin still listed after setfattr -x"
must_fail setfattr -x user.bin "$F"
last_err_matches 'No such attribute'

# A missing name.
must_fail getfattr -n user.never-set "$F"
last_err_matches 'No such attribute'

# trusted.* as root.
must setfattr -n trusted.secret -v root-only "$F"
expect_value trusted.secret "$F" "$(hex root-only)"
getfattr --absolute-names -d -m '^trusted\.' "$F" | grep -q '^trusted.secret="root-only"$' ||
    fail "trusted.secret missing from getfattr -d -m '^trusted\\.'"

# Exactly 64 KiB is accepted and reads back; one byte more is refused and
# leaves the old value intact.
head -c 65536 /dev/zero | tr '\0' 'v' >"$E2E_TMP/max"
must setfattr -n user.big -v "$(cat "$E2E_TMP/max")" "$F"
getfattr --absolute-names --only-values -n user.big "$F" >"$E2E_TMP/max.got" 2>&1 || fail "getfattr of the 64 KiB value failed"
cmp "$E2E_TMP/max" "$E2E_TMP/max.got" || fail "the 64 KiB value does not read back intact"
must setfattr -n user.big2 -v before "$F"
must_fail setfattr -n user.big2 -v "$(head -c 65537 /dev/zero | tr '\0' 'w')" "$F"
last_err_matches 'Argument list too long|too large|No space'
expect_value user.big2 "$F" "$(hex before)"

# xattrs on a symlink itself: user.* is not allowed there (EPERM), and the
# target is unaffected.
ln -s file "$MNT/link"
must_fail setfattr -h -n user.onlink -v x "$MNT/link"
last_err_matches 'Operation not permitted|not supported'

# Unmount, mount, compare everything.
(cd "$MNT" && getfattr -h -d -e hex -m - file dir) >"$E2E_TMP/before" 2>&1
grep -q '^trusted.secret=' "$E2E_TMP/before" || fail "trusted.secret missing from getfattr -m - output"
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
(cd "$MNT" && getfattr -h -d -e hex -m - file dir) >"$E2E_TMP/after" 2>&1
LC_ALL=C sort "$E2E_TMP/before" >"$E2E_TMP/before.s"
LC_ALL=C sort "$E2E_TMP/after" >"$E2E_TMP/after.s"
same_files "xattrs before and after remount" "$E2E_TMP/before.s" "$E2E_TMP/after.s"
getfattr --absolute-names --only-values -n user.big "$F" | cmp - "$E2E_TMP/max" || fail "the 64 KiB value changed across remount"
echo "PASS [$E2E_NAME]"

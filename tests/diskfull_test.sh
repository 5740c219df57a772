#!/usr/bin/env bash
# Disk full: `lsq --out`, `llm sft --out`, `llm ptq --out` and the training checkpoint writer
# on a file system that runs out of space. Each must fail with a clear one-line error naming
# the file and the cause, exit non-zero, leave the earlier results (and the last checkpoint)
# byte-identical, and leave no truncated file under a final name nor a .tmp file.
#
# The full file system is a small tmpfs: mounted directly when we may (root with
# CAP_SYS_ADMIN), else inside a user+mount namespace (`unshare -rm`, no privileges needed where
# the kernel allows it). Where neither works (a locked-down container), the same checks run
# with a file-size limit (ulimit -f, SIGXFSZ ignored): writes past it fail with EFBIG instead
# of ENOSPC, through the same code paths. The mechanism used is printed.
set -u
if [ -z "${DISKFULL_MODE:-}" ]; then
  probe=$(mktemp -d)
  if mount -t tmpfs -o size=64k rostesim-probe "$probe" 2>/dev/null; then
    umount "$probe"; rmdir "$probe"; export DISKFULL_MODE=tmpfs
  elif unshare -rm sh -c "mount -t tmpfs -o size=64k rostesim-probe '$probe'" 2>/dev/null; then
    rmdir "$probe"; export DISKFULL_MODE=tmpfs-userns
    exec unshare -rm bash "$0" "$@"
  else
    rmdir "$probe"; export DISKFULL_MODE=ulimit
  fi
fi
echo "disk-full mechanism: $DISKFULL_MODE"
. "$(dirname "$0")/lib.sh"
case $B in /*) ;; *) B=$PWD/$B ;; esac
MNT=$T/mnt; mkdir -p "$MNT"
cleanup() { mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"; rm -rf "$T"; }
trap cleanup EXIT
NOSPACE="No space left on device|File too large"

# fs KB: a fresh KB-kilobyte file system at $MNT (tmpfs modes); no-op with ulimit
fs() {
  [ "$DISKFULL_MODE" = ulimit ] && return 0
  mountpoint -q "$MNT" && umount "$MNT"
  rm -rf "$MNT"; mkdir -p "$MNT"
  mount -t tmpfs -o size=$1k rostesim-test "$MNT"
}
# limited KB cmd...: run cmd; with ulimit, files are limited to KB kilobytes
limited() {
  local kb=$1; shift
  if [ "$DISKFULL_MODE" = ulimit ]; then (trap '' XFSZ; ulimit -f "$kb"; "$@"); else "$@"; fi
}
sums() { (cd "$1" && find . -type f ! -name '*.tmp' | sort | xargs md5sum); }
# check_full NAME DIR RC ERRFILE BEFORE [SKIP]: the common checks after a failed write (SKIP: a
# file left out of the comparison)
check_full() {
  local name=$1 dir=$2 rc=$3 err=$4 before=$5 skip=${6:-^$} why=${WHY:-$NOSPACE}
  [ "$rc" -ne 0 ] && ok "$name: exit $rc" || bad "$name: exit 0 on a full disk"
  if grep -qE "$why" "$err" && [ "$(wc -l <"$err")" -le 3 ]; then ok "$name: says why: $(grep -E "$why" "$err" | head -1)"
  else bad "$name: message: $(head -c 300 "$err")"; fi
  [ -z "$(find "$dir" -name '*.tmp')" ] && ok "$name: no .tmp file left" || bad "$name: left $(find "$dir" -name '*.tmp')"
  [ "$(sums "$dir" | grep -v -- "$skip")" = "$before" ] && ok "$name: the earlier results are byte-identical" \
    || bad "$name: earlier results changed: $(diff <(echo "$before") <(sums "$dir") | head -5)"
}

# ---- lsq --out: an earlier run's folder, a second run into it on a full disk
small="--d 128 --N 32 --seeds 2 --max-steps 3000 --prop44 200 --no-plot --quiet"
fs 200
$B lsq $small --out "$MNT/a" >/dev/null 2>"$T/e" || bad "first lsq run: $(tail -2 "$T/e")"
before=$(sums "$MNT/a")
limited 50 $B lsq $small --seed 2 --out "$MNT/a" >/dev/null 2>"$T/e"
WHY="write error on '.*\.tmp': (No space left on device|File too large)" check_full "lsq --out" "$MNT/a" $? "$T/e" "$before"

# ---- llm sft --out: a finished run's folder, a second run into it on a full disk
tiny_model "$T/m0" || bad "llm init"
OPTS="--data $FIX/train.jsonl --max-steps 3 --batch 2 --threads 1 --quiet"
fs 400
$B llm sft --model "$T/m0" $OPTS --lr 1e-3 --out "$MNT/r" >/dev/null 2>"$T/e" || bad "first sft run: $(tail -2 "$T/e")"
before=$(sums "$MNT/r")
limited 200 $B llm sft --model "$T/m0" $OPTS --lr 2e-3 --out "$MNT/r" >/dev/null 2>"$T/e"
rc=$?
# train_log.jsonl is the new run's record from its first step (appended step by step for
# --resume), so it is the one file a failed second run rewrites: the others must not change
check_full "llm sft --out" "$MNT/r" $rc "$T/e" "$(grep -v train_log.jsonl <<<"$before")" train_log.jsonl

# ---- llm ptq --out
fs 400
$B llm ptq --method rtn --wbits 4 --model "$T/m0" --out "$MNT/q" >/dev/null 2>"$T/e" || bad "first ptq run: $(tail -2 "$T/e")"
before=$(sums "$MNT/q")
limited 200 $B llm ptq --method rtn --wbits 3 --model "$T/m0" --out "$MNT/q" >/dev/null 2>"$T/e"
check_full "llm ptq --out" "$MNT/q" $? "$T/e" "$before"

# ---- the checkpoint writer: room for one checkpoint (743 KB) but not for its replacement
COPTS="--data $FIX/train.jsonl --lr 3e-3 --max-steps 4 --batch 2 --seed 3 --threads 1 --quiet --save-every 1"
$B llm sft --model "$T/m0" $COPTS --out "$T/full" >/dev/null 2>"$T/e" || bad "uninterrupted run: $(tail -2 "$T/e")"
if [ "$DISKFULL_MODE" = ulimit ]; then
  limited 500 $B llm sft --model "$T/m0" $COPTS --out "$MNT/c" >/dev/null 2>"$T/e"; rc=$?
  [ "$rc" -ne 0 ] && grep -qE "trainer_state.bin.tmp.*($NOSPACE)" "$T/e" && ok "checkpoint: exit $rc: $(grep trainer_state "$T/e")" \
    || bad "checkpoint: exit $rc: $(head -c 300 "$T/e")"
  [ -z "$(ls "$MNT/c" | grep -E '\.tmp$|^trainer_state.bin$|^model.safetensors$')" ] && ok "checkpoint: no truncated file under a final name" \
    || bad "checkpoint: left $(ls "$MNT/c")"
  echo "(ulimit mode: the first checkpoint already fails, so 'the last checkpoint intact' is checked with tmpfs only)"
else
  fs 1000
  $B llm sft --model "$T/m0" $COPTS --out "$MNT/c" >/dev/null 2>"$T/e"; rc=$?
  [ "$rc" -ne 0 ] && grep -qE "trainer_state.bin.tmp.*($NOSPACE)" "$T/e" && ok "checkpoint: exit $rc: $(grep trainer_state "$T/e")" \
    || bad "checkpoint: exit $rc: $(head -c 300 "$T/e")"
  [ -z "$(find "$MNT/c" -name '*.tmp')" ] && [ ! -e "$MNT/c/model.safetensors" ] && ok "checkpoint: no .tmp, no final model" \
    || bad "checkpoint: left $(ls "$MNT/c")"
  ckstep=$(od -An -t u8 -j 24 -N 8 "$MNT/c/trainer_state.bin" 2>/dev/null | tr -d ' ')
  [ "${ckstep:-0}" -ge 1 ] && ok "checkpoint: the last good one (step $ckstep) is on disk" || bad "checkpoint: none left"
  cp -r "$MNT/c" "$T/c"
  if $B llm sft --model "$T/m0" $COPTS --out "$T/c" --resume >/dev/null 2>"$T/e" && cmp -s "$T/full/model.safetensors" "$T/c/model.safetensors"
  then ok "checkpoint: resumed elsewhere, model.safetensors == uninterrupted (the kept checkpoint is intact)"
  else bad "checkpoint: resume from the kept checkpoint: $(tail -2 "$T/e")"; fi
fi
echo "diskfull_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# An interrupted `paper table1`, proven with SIGKILL: on a micro setup (a tiny GPT-NeoX from
# `llm init`, the committed TL;DR sample split three ways, two bit settings: 14 cells) the
# table is killed at six moments (during start-up, right after the SFT model is trained,
# while a cell's scores are being written (their .tmp on disk), after a random delay, after
# three more cells have finished, and while a QA-SFT cell trains), and rerun after each kill.
# After every rerun: each cell that had finished before the kill (its marker on disk) is
# reported as skipped and its marker file is untouched (same inode, size and mtime), i.e.
# finished cells are not redone. At the end the table equals an uninterrupted run's (scores,
# columns 1-8; the rest are wall times), and so do every cell's model.safetensors and generated
# test predictions, byte for byte. Moments are found by polling files; the random delay
# comes from $RANDOM, printed so that a failure can be replayed (KILL_SEED=...).
set -u
. "$(dirname "$0")/lib.sh"
RANDOM=${KILL_SEED:-$$}; echo "KILL_SEED=${KILL_SEED:-$$}"

table_micro "$T" || bad "llm init"
A=(paper table1 --model "$T/m0" --data "$T/d" --steps 6 --batch 2 --max-len 384 --test-limit 3 --calib 3
   --threads 1 --bits W4A4KV4,W4A8KV4)

# markers DIR: one line per finished cell (its marker: path, inode, size, mtime in ns)
markers() { find "$1" \( -name test.json -o -name train.done \) -printf '%P %i %s %T@\n' 2>/dev/null | sort; }
nmarkers() { markers "$1" | wc -l; }
new_tmp() { [ -n "$(find "$1" -name '*.tmp' -newer "$T/mark" 2>/dev/null | head -n 1)" ]; }
has() { [ -e "$1" ]; }
grew() { [ "$(nmarkers "$1")" -ge "$2" ]; }

full=$T/full cut=$T/cut
if $B "${A[@]}" --out "$full" >"$T/of" 2>"$T/ef"; then ok "uninterrupted paper table1 ($(nmarkers "$full") markers)"
else bad "uninterrupted run: $(tail -3 "$T/ef")"; fi

kills=0 midwrite=0 extra=0
for moment in startup sft-trained output-write random three-cells qat-training retry retry retry retry retry retry; do
  if [ "$moment" = retry ]; then
    [ $midwrite -ge 1 ] && break
    moment=output-write; extra=$((extra + 1))
  fi
  markers "$cut" >"$T/before"
  touch "$T/mark"; sleep 0.01 # later writes are newer than the mark
  k=$kills # this run's logs: $T/o.$k, $T/e.$k
  $B "${A[@]}" --out "$cut" >"$T/o.$k" 2>"$T/e.$k" & # $! is rostesim itself
  pid=$!
  case $moment in
    startup) ;;
    sft-trained) wait_for $pid has "$cut/sft/train.done" ;;
    output-write) wait_for $pid new_tmp "$cut" ;;
    random) sleep "$(printf '0.%03d' $((RANDOM % 400 + 50)))" ;;
    three-cells) n0=$(nmarkers "$cut"); wait_for $pid grew "$cut" $((n0 + 3)) ;;
    qat-training) wait_for $pid has "$cut/W4A8KV4/ste" ;;
  esac
  if kill -9 $pid 2>/dev/null; then
    wait $pid 2>/dev/null
    kills=$((kills + 1))
    w=""; [ "$moment" = output-write ] && new_tmp "$cut" && { midwrite=$((midwrite + 1)); w=", killed while writing $(find "$cut" -name '*.tmp' -newer "$T/mark" -printf '%P ' | head -c 200)"; }
    echo "  SIGKILL #$kills ($moment): $(nmarkers "$cut") markers on disk$w"
  else
    wait $pid; echo "  the run ended before the kill ($moment)"
  fi
  # what had finished before this run must have been skipped by it and left as it was
  if [ -s "$T/before" ]; then
    nb=$(wc -l <"$T/before")
    if comm -23 "$T/before" <(markers "$cut") | grep -q .; then
      bad "run $kills rewrote finished cells: before $(comm -23 "$T/before" <(markers "$cut") | head -3 | tr '\n' ';') after $(comm -13 "$T/before" <(markers "$cut") | head -3 | tr '\n' ';')"
    else ok "run $kills ($moment): the $nb markers of finished cells are untouched (inode, size, mtime)"; fi
    ns=$(grep -c '^  skip: ' "$T/o.$k")
    [ "$ns" -ge "$nb" ] && ok "run $kills: $ns steps reported as skipped (>= the $nb finished)" \
      || bad "run $kills: only $ns skip lines for $nb finished steps"
  fi
done
[ $kills -ge 5 ] && ok "paper table1: killed $kills times with SIGKILL" || bad "paper table1: only $kills kills landed"
[ $midwrite -ge 1 ] && ok "$midwrite kill(s) landed while a cell's output was being written (.tmp on disk; $extra extra tries)" \
  || bad "no kill landed while a cell's output was being written"

markers "$cut" >"$T/before"
if $B "${A[@]}" --out "$cut" >"$T/olast" 2>"$T/elast"; then ok "the last rerun completes"; else bad "last rerun: $(tail -3 "$T/elast")"; fi
comm -23 "$T/before" <(markers "$cut") | grep -q . && bad "the last rerun rewrote finished cells" \
  || ok "the last rerun left the $(wc -l <"$T/before") finished cells alone"
ls "$cut"/*/*.tmp "$cut"/*/*/*.tmp >/dev/null 2>&1 && echo "  (stale .tmp files of killed writes remain: $(ls "$cut"/*/*.tmp "$cut"/*/*/*.tmp 2>/dev/null | wc -l))"
if [ -s "$full/table1.tsv" ] && cmp -s <(cut -f1-8 "$full/table1.tsv") <(cut -f1-8 "$cut/table1.tsv"); then
  ok "killed $kills times and rerun: table1.tsv scores == uninterrupted ($(wc -l <"$cut/table1.tsv") rows)"
else bad "table1 differs: $(diff <(cut -f1-8 "$full/table1.tsv") <(cut -f1-8 "$cut/table1.tsv") 2>&1 | head -5)"; fi
# the scores of the tiny model are near 0, so compare what they come from: every cell's
# model weights and its generated test predictions, byte for byte
nf=0 nd=0
while read -r f; do
  nf=$((nf + 1)); cmp -s "$full/$f" "$cut/$f" || { nd=$((nd + 1)); echo "  differs: $f"; }
done < <(cd "$full" && find . \( -name model.safetensors -o -name test_predictions.jsonl \) | sort)
[ "$nf" -ge 20 ] && [ "$nd" -eq 0 ] && ok "every cell's model.safetensors and test_predictions.jsonl == uninterrupted ($nf files, cmp)" \
  || bad "$nd of $nf model/prediction files differ from the uninterrupted run's"
[ "$(nmarkers "$cut")" -eq "$(nmarkers "$full")" ] && ok "as many cell markers as the uninterrupted run ($(nmarkers "$cut"))" \
  || bad "markers: $(nmarkers "$cut") vs $(nmarkers "$full")"

echo "killresume_table1_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

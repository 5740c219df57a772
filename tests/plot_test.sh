#!/usr/bin/env bash
# tests/plot_test.sh: `rostesim plot DIR` on the synthetic lsq folder
# tests/fixtures/lsq-sample (an abits sweep): every figure as PNG and PDF, no temporary
# files left, errors for bad folders, and a missing or failing gnuplot leaves the
# figures already there untouched. Prints "plot_test: N passed, M failed" last.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-bin}/rostesim
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
fixture="$root/tests/fixtures/lsq-sample"
figs="fig1_bound fig1_loss fig2_tracking fig3_prop44 fig4_sweep"

pass=0; fail=0
ok()   { echo "PASS $1"; pass=$((pass + 1)); }
bad()  { echo "FAIL $1"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
finish() { echo "plot_test: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -x "$bin" ]; then bad "binary $bin exists (run make)"; finish; fi

is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
is_pdf() { [ -s "$1" ] && [ "$(head -c 5 "$1")" = "%PDF-" ]; }
no_temp_files() { [ -z "$(find "$1" -name '.*.tmp' -o -name '.*.log' | head -n 1)" ]; }
sums() { (cd "$1" && md5sum fig*.png fig*.pdf 2>/dev/null); }

# --help
"$bin" plot --help >"$tmp/help.out" 2>&1; rc=$?
check "plot --help exits 0" [ "$rc" -eq 0 ]
check "plot --help describes the figures" grep -q "fig2_tracking" "$tmp/help.out"

# missing folder, not a folder, folder without meta.tsv, no argument
"$bin" plot "$tmp/no-such-dir" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "missing dir: exit 2" [ "$rc" -eq 2 ]
check "missing dir: message names it" grep -q "$tmp/no-such-dir" "$tmp/e"
check "missing dir: one line" [ "$(wc -l <"$tmp/e")" -eq 1 ]
mkdir "$tmp/empty"
"$bin" plot "$tmp/empty" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "no meta.tsv: exit 2" [ "$rc" -eq 2 ]
check "no meta.tsv: message names dir and meta.tsv" grep -q "$tmp/empty.*meta.tsv" "$tmp/e"
"$bin" plot "$fixture/meta.tsv" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a file, not a folder: exit 2" [ "$rc" -eq 2 ]
"$bin" plot >"$tmp/o" 2>"$tmp/e"; rc=$?
check "no argument: exit 2" [ "$rc" -eq 2 ]

have_gnuplot=0
command -v "${ROSTESIM_GNUPLOT:-gnuplot}" >/dev/null 2>&1 && have_gnuplot=1

if [ "$have_gnuplot" -eq 1 ]; then
    # Every figure, from another working directory (the scripts are embedded).
    cp -r "$fixture" "$tmp/run"
    (cd / && "$bin" plot "$tmp/run") >"$tmp/o" 2>"$tmp/e"; rc=$?
    check "plot exits 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$tmp/e"
    for f in $figs; do
        check "$f.png is a PNG" is_png "$tmp/run/$f.png"
        check "$f.pdf is a PDF" is_pdf "$tmp/run/$f.pdf"
        check "$f listed on stdout" grep -q "$tmp/run/$f.png" "$tmp/o"
    done
    check "no temporary files left" no_temp_files "$tmp/run"
    check "quiet on stderr" [ ! -s "$tmp/e" ]
    # PNG size is 1200x800 (IHDR width/height, bytes 17-24)
    check "PNG is 1200x800" [ "$(head -c 24 "$tmp/run/fig1_bound.png" | tail -c 8 | od -An -tx1 | tr -d ' \n')" = "000004b000000320" ]

    # Without a sweep, no fig4.
    cp -r "$fixture" "$tmp/nosweep"
    sed -i 's/^sweep_var\t.*/sweep_var\tnone/' "$tmp/nosweep/meta.tsv"
    "$bin" plot "$tmp/nosweep" >"$tmp/o" 2>"$tmp/e"; rc=$?
    check "no sweep: exit 0" [ "$rc" -eq 0 ]
    check "no sweep: no fig4_sweep" [ ! -e "$tmp/nosweep/fig4_sweep.png" ]
    check "no sweep: fig1_bound drawn" is_png "$tmp/nosweep/fig1_bound.png"

    # A missing fit.tsv still draws fig2 (without the fitted line).
    rm "$tmp/nosweep/fit.tsv"
    "$bin" plot "$tmp/nosweep" >"$tmp/o" 2>"$tmp/e"; rc=$?
    check "no fit.tsv: exit 0" [ "$rc" -eq 0 ]

    before=$(sums "$tmp/run")
else
    echo "SKIP drawing checks: gnuplot is not installed ('make deps' installs gnuplot-nox)"
    cp -r "$fixture" "$tmp/run"
    for f in $figs; do printf 'old %s\n' "$f" >"$tmp/run/$f.png"; printf 'old %s\n' "$f" >"$tmp/run/$f.pdf"; done
    before=$(sums "$tmp/run")
fi

# gnuplot not in PATH: PATH holds only an empty folder (the binary runs no other tool;
# popen uses /bin/sh by its absolute path).
mkdir "$tmp/emptypath"
env -u ROSTESIM_GNUPLOT PATH="$tmp/emptypath" "$bin" plot "$tmp/run" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "no gnuplot in PATH: exit 1" [ "$rc" -eq 1 ]
check "no gnuplot in PATH: install message" grep -q "sudo apt-get install gnuplot-nox, then rerun 'rostesim plot $tmp/run'" "$tmp/e"
check "no gnuplot in PATH: figures untouched" [ "$(sums "$tmp/run")" = "$before" ]

# ROSTESIM_GNUPLOT naming a program that does not exist.
ROSTESIM_GNUPLOT="$tmp/nonexistent/gnuplot" "$bin" plot "$tmp/run" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "ROSTESIM_GNUPLOT missing: exit 1 with install message" \
    bash -c "[ $rc -eq 1 ] && grep -q 'apt-get install gnuplot-nox' '$tmp/e'"

# A gnuplot that fails half-way (writes garbage to the output, exits 1): old figures stay.
cat >"$tmp/badgnuplot" <<'SH'
#!/bin/sh
out=$(sed -n "s/^outfile = '\(.*\)'$/\1/p" | head -n 1)
[ -n "$out" ] && echo garbage >"$out"
echo "fake gnuplot: line 3: error: something broke" >&2
exit 1
SH
chmod +x "$tmp/badgnuplot"
ROSTESIM_GNUPLOT="$tmp/badgnuplot" "$bin" plot "$tmp/run" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "failing gnuplot: exit 1" [ "$rc" -eq 1 ]
check "failing gnuplot: message quotes gnuplot's error" grep -q "something broke" "$tmp/e"
check "failing gnuplot: figures untouched" [ "$(sums "$tmp/run")" = "$before" ]
check "failing gnuplot: no temporary files left" no_temp_files "$tmp/run"

finish

# rostesim plots: settings shared by every figure. The C driver (plots/plot.c) sends
# this first, after defining: datadir, outfile, fmt ("png" or "pdf"), runtitle,
# sweepvar, delta, fit_slope, fit_intercept, fit_pearson, fit_spearman, fit_n, dupof
# (per rotation, the 1-based index of the rotation whose runs it repeats, else 0).
set encoding utf8
set datafile separator "\t"
# Rows of other rotations are filtered to NaN; treating NaN as missing keeps each
# rotation's line connected across them (and skips the simulator's literal "nan").
set datafile missing NaN

if (fmt eq "pdf") {
    set terminal pdfcairo enhanced color rounded size 6in,4in font "Helvetica,12.5" linewidth 1.6 pointscale 0.55 dashlength 1.3
} else {
    set terminal pngcairo enhanced color rounded size 1200,800 font "Helvetica,19" linewidth 2.6
}
set output outfile

# One color and marker per rotation, the same in every figure (Okabe-Ito palette,
# readable in grey and by color-blind readers). Filled markers; open twins are
# (marker - 1) for points where interpolation fails.
rots = "none hadamard haar adaptive"
rotlabel(i) = i == 1 ? "no rotation" : i == 2 ? "random Hadamard" : i == 3 ? "random orthogonal (Haar)" : "adaptive (RoSTE)"
set linetype 1 lc rgb "#3B3B3B" lw 1 pt 7  ps 1.3 dt 1
set linetype 2 lc rgb "#0072B2" lw 1 pt 5  ps 1.2 dt 1
set linetype 3 lc rgb "#E69F00" lw 1 pt 9  ps 1.5 dt 1
set linetype 4 lc rgb "#D55E00" lw 1 pt 13 ps 1.6 dt 1
rotcolor(i) = word("#3B3B3B #0072B2 #E69F00 #D55E00", i)
rotopen(i) = word("6 4 8 12", i) + 0
dup(i) = word(dupof, i) + 0
duplabel(i) = dup(i) > 0 ? rotlabel(i) . " = " . rotlabel(dup(i)) . " (same runs)" : rotlabel(i)

set border 3 lw 1
set tics nomirror out scale 0.6
set grid xtics ytics mxtics mytics lt 1 lc rgb "#E4E4E4" lw 0.5
set title noenhanced
set mxtics default
set mytics default
set format y "10^{%T}"

# Log axes spanning under ~1.7 decades get 2x and 5x labels too. Usage, before
# `set logscale`:  lo = ...; hi = ...; ax = "x"; eval tics25
tics25 = 'if (hi - lo < 1.7) { do for [k = floor(lo) - 1 : ceil(hi)] { do for [m in "2 5"] { v = m * 10.0**k; if (log10(v) > lo - 0.05 && log10(v) < hi + 0.05) { eval sprintf("set %stics add (\"%s·10^{%d}\" %.17g)", ax, m, k, v) } } } }'

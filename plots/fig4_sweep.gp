# Figure 4 (sweeps only): final prediction error D (solid, markers, 95% CI bars) and
# final weight quantization error ||e(R w)||_G^2 (dashed) against the swept variable,
# one color per rotation; a ring marks points where interpolation (A4.2) fails.
# summary.tsv: 1 point 2 sweep_value 3 rotation 4 final_loss 5 final_loss_ci 6 final_D
#   7 final_eG 8 final_e2 9 act_err 10 rank 11 N 12 interp 13 lambda_min 14 rho 15 mu
#   16 eta 17 steps 18 bound_final 19 violations 20 ptq_rtn 21 ptq_gptq
# summary.tsv has a CI for the final loss only; under interpolation D = 2L exactly, so
# the bars on D are the loss's relative 95% CI (ci / loss) applied to D.
f = datadir . "/summary.tsv"
sel(i) = (strcol(3) eq word(rots, i))
sweeplabel = sweepvar eq "abits" ? "activation bits" : \
             sweepvar eq "wbits" ? "weight bits" : \
             sweepvar eq "d" ? "dimension {/:Italic d}" : \
             sweepvar eq "outliers" ? "weight outliers" : \
             sweepvar eq "clip" ? "clipping factor {/:Italic c}" : sweepvar
logx = (sweepvar eq "d")
relci(l, c) = (l > 0 && c == c) ? c / l : 0
dlo(D, r) = (r < 0.98) ? D * (1 - r) : D * 0.02

# Non-positive values cannot sit on the log axis: left out of the range here too.
stats f skip 1 using 2:($6 > 0 ? $6 : NaN) nooutput
xmin = STATS_min_x; xmax = STATS_max_x
lo = log10(STATS_min_y); hi = log10(STATS_max_y); ax = "y"
stats f skip 1 using ($7 > 0 ? $7 : 1) nooutput
lo = (STATS_min > 0 && log10(STATS_min) < lo) ? log10(STATS_min) : lo
@tics25
# Rotations sit side by side at each sweep value so their bars do not overlap.
span = (xmax > xmin) ? xmax - xmin : 1
xs(x, i) = logx ? x * 1.025**(i - 2.5) : x + 0.012 * span * (i - 2.5)

set title "Final errors across the sweep\n" . runtitle noenhanced
set logscale y
if (logx) { set logscale x 2; set format x "%g" } else { set format x "%g" }
set xlabel sweeplabel
set ylabel "final error (mean over seeds)"
set xtics nomirror
set autoscale fix
set offsets graph 0.05, graph 0.05, graph 0.75, graph 0.08
set key inside top center horizontal maxrows 4 Left reverse samplen 2.2 spacing 1.1 width -1 box lc rgb "#BBBBBB" opaque
set bars small

plot for [i=1:4] f skip 1 using (sel(i) ? xs($2, i) : NaN):6:(dlo($6, relci($4, $5))):($6 * (1 + relci($4, $5))) \
         with yerrorbars lt i lw 1 pt 7 ps 0 notitle, \
     for [i=1:4] f skip 1 using (sel(i) ? xs($2, i) : NaN):6 with linespoints lt i lw 1.3 title rotlabel(i), \
     for [i=1:4] f skip 1 using (sel(i) ? xs($2, i) : NaN):7 with lines lt i lw 1.2 dt (8,5) notitle, \
     for [i=1:4] f skip 1 using (sel(i) && $12 == 0 ? xs($2, i) : NaN):6 with points pt 6 ps 3.2 lw 1.3 lc rgb "black" notitle, \
     keyentry with linespoints lc rgb "black" pt 7 lw 1.3 title "prediction error {/:Italic D} (95% CI)", \
     keyentry with lines lc rgb "black" lw 1.2 dt (8,5) title "weight quant. error ‖{/:Italic e}‖@^2_{/:Italic G}", \
     keyentry with points lc rgb "black" pt 6 ps 3.2 lw 1.3 title "no interpolator (A4.2 fails)"

# Figure 2: final prediction error D against the final weight quantization error
# ||e(R w)||_G^2, one marker per run (seed x sweep point), one color per rotation (a
# rotation whose runs repeat another's is named so in the key: its markers coincide);
# open markers: interpolation (A4.2) fails. Line: log-log least-squares fit (fit.tsv).
# runs.tsv: 1 point 2 sweep_value 3 rotation 4 seed 5 final_loss 6 final_D 7 final_eG
#           8 final_e2 9 rank 10 interp 11 bound_final 12 violations
f = datadir . "/runs.tsv"
sel(i) = (strcol(3) eq word(rots, i))
fitted(x) = 10**fit_intercept * x**fit_slope

stats f skip 1 using (log10($7)):(log10($6)) nooutput
lo = STATS_min_x; hi = STATS_max_x; ax = "x"; @tics25
lo = STATS_min_y; hi = STATS_max_y; ax = "y"; @tics25

set title "Prediction error tracks weight quantization error\n" . runtitle noenhanced
set logscale xy
set format x "10^{%T}"
set xlabel "weight quantization error ‖{/:Italic e}({/:Italic Rw})‖@^2_{/:Italic G} (final iterate)"
set ylabel "prediction error {/:Italic D} = ‖{/:Italic Q_w}({/:Italic Rw}) − {/:Italic w}^*_{/:Italic R}‖@^2_{/:Italic G}"
set key inside left top vertical Left reverse samplen 1.5 spacing 1.1 width -2 box lc rgb "#BBBBBB" opaque font ",15"
set autoscale fix
set offsets graph 0.04, graph 0.04, graph 0.75, graph 0.06

fittitle = (fit_slope == fit_slope) \
    ? sprintf("fit: {/:Italic D} ∝ (‖{/:Italic e}‖@^2_{/:Italic G})^{%.2f}  (Pearson %.2f, Spearman %.2f, n = %d distinct runs)", \
              fit_slope, fit_pearson, fit_spearman, fit_n) : "fit: not available"
set samples 200

plot for [i=1:4] f skip 1 using (sel(i) && $10 != 0 ? $7 : NaN):6 with points lt i title duplabel(i), \
     for [i=1:4] f skip 1 using (sel(i) && $10 == 0 ? $7 : NaN):6 with points lt i pt rotopen(i) notitle, \
     (fit_slope == fit_slope ? fitted(x) : NaN) with lines lc rgb "black" lw 1.2 dt (8,5) title fittitle, \
     keyentry with points lc rgb "black" pt 6 ps 1.3 title "open marker: no interpolator (A4.2 fails)"

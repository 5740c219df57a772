# Figure 1: Theorem 4.3. D_t = ||Q_w(R w^t) - w*_R||_G^2 (mean over seeds, +-1 SE band)
# against the SGD step, for sweep point 0, beside three curves built on it:
#   the theorem's bound (worst-case constants mu = lambda_min^2/(12 rho), 6 + 2/mu);
#   the same right-hand side with the measured rate mu_m in place of mu;
#   the measured recursion D_{t+1} = (1 - mu_m) D_t + kappa_m e_t fitted to the mean
#   curve (open circles on every 6th logged step).
# A rotation whose runs repeat another's (dupof) is named in the key but not drawn again.
# steps.tsv: 1 point 2 sweep_value 3 rotation 4 t 5 loss 6 loss_se 7 D 8 D_se
#            9 eG 10 eG_se 11 e2 12 bound 13 bound_mrate 14 recur (13, 14: newer folders)
f = datadir . "/steps.tsv"
sel(i) = ($1 == 0 && strcol(3) eq word(rots, i) && dup(i) == 0)
lo(m, s) = (m - s > 0.02 * m) ? m - s : 0.02 * m

# Rotations whose bound is all nan at point 0 (no interpolator) say so in the key; so
# do folders written before the measured-constant columns existed.
nobound = ""
do for [i=1:4] {
    stats f skip 1 using (sel(i) ? ($12 == $12 ? 1 : 0) : 0) nooutput
    nobound = nobound . (STATS_sum > 0 ? "0 " : "1 ")
}
stats f skip 1 using (column(0) == 0 ? (valid(14) ? 1 : 0) : 0) nooutput
measured = STATS_sum > 0
keytitle(i) = duplabel(i) . (word(nobound, i) eq "1" && dup(i) == 0 ? " (no bound: A4.2 fails)" : "")

set title "Theorem 4.3: measured D_t, the bound, and the bound with measured constants\n" . runtitle noenhanced
set logscale xy
set xlabel "SGD step {/:Italic t} + 1"
set ylabel "{/:Italic D_t} = ‖{/:Italic Q_w}({/:Italic Rw^t}) − {/:Italic w}^*_{/:Italic R}‖@^2_{/:Italic G}"
set format x "10^{%T}"
set key inside left top vertical Left reverse samplen 2.2 spacing 1.05 width -3 box lc rgb "#BBBBBB" opaque font ",15"
set autoscale xfixmax
set offsets 0, 0, graph 0.4, 0

plot for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):(lo($7, $8)):($7 + $8) \
         with filledcurves lc rgb rotcolor(i) fs transparent solid 0.18 noborder notitle, \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):7 with lines lt i lw 1.4 notitle, \
     for [i=1:4] keyentry with lines lt i lw 1.4 title keytitle(i), \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):12 with lines lt i lw 1.2 dt (8,5) notitle, \
     for [i=1:4] f skip 1 using (measured && sel(i) ? $4 + 1 : NaN):(measured ? $13 : NaN) with lines lt i lw 1.2 dt (12,4,2,4) notitle, \
     for [i=1:4] f skip 1 every 6 using (measured && sel(i) ? $4 + 1 : NaN):(measured ? $14 : NaN) with points lt i pt rotopen(i) ps 0.9 notitle, \
     keyentry with lines lc rgb "black" lw 1.4 title "measured {/:Italic D_t} (mean ± SE)", \
     keyentry with lines lc rgb "black" lw 1.2 dt (8,5) title "Thm 4.3 bound (worst-case {/:Italic μ})", \
     keyentry with lines lc rgb "black" lw 1.2 dt (12,4,2,4) title (measured ? "Thm 4.3 with the measured rate {/:Italic μ_m}" : ""), \
     keyentry with points lc rgb "black" pt 6 ps 0.9 title (measured ? "fit {/:Italic D}_{{/:Italic t}+1} = (1 − {/:Italic μ_m}){/:Italic D_t} + {/:Italic κ_m e_t}" : "")

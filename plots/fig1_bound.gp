# Figure 1: Theorem 4.3. D_t = ||Q_w(R w^t) - w*_R||_G^2 (mean over seeds, +-1 SE band)
# and the theorem's bound on it, against the SGD step, for sweep point 0.
# steps.tsv: 1 point 2 sweep_value 3 rotation 4 t 5 loss 6 loss_se 7 D 8 D_se
#            9 eG 10 eG_se 11 e2 12 bound
f = datadir . "/steps.tsv"
sel(i) = ($1 == 0 && strcol(3) eq word(rots, i))
lo(m, s) = (m - s > 0.02 * m) ? m - s : 0.02 * m

# Rotations whose bound is all nan at point 0 (no interpolator) say so in the key.
nobound = ""
do for [i=1:4] {
    stats f skip 1 using (sel(i) ? ($12 == $12 ? 1 : 0) : 0) nooutput
    nobound = nobound . (STATS_sum > 0 ? "0 " : "1 ")
}
keytitle(i) = rotlabel(i) . (word(nobound, i) eq "1" ? " (no bound: A4.2 fails)" : "")

set title "Theorem 4.3: distance to the interpolator and its bound\n" . runtitle noenhanced
set logscale xy
set xlabel "SGD step {/:Italic t} + 1"
set ylabel "{/:Italic D_t} = ‖{/:Italic Q_w}({/:Italic Rw^t}) − {/:Italic w}^*_{/:Italic R}‖@^2_{/:Italic G}"
set format x "10^{%T}"
set key inside left bottom vertical Left reverse samplen 2.2 spacing 1.1 width -1 box lc rgb "#BBBBBB" opaque
set autoscale xfixmax

plot for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):(lo($7, $8)):($7 + $8) \
         with filledcurves lc rgb rotcolor(i) fs transparent solid 0.18 noborder notitle, \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):7 with lines lt i lw 1.2 title keytitle(i), \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):12 with lines lt i lw 1.2 dt (8,5) notitle, \
     keyentry with lines lc rgb "black" lw 1.2 title "{/:Italic D_t} (mean ± SE)", \
     keyentry with lines lc rgb "black" lw 1.2 dt (8,5) title "Thm 4.3 bound"

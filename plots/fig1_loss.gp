# Figure 1b: training loss L(w^t) (solid) and the weight quantization error of the
# rotated iterate ||e(R w^t)||_G^2 (dashed) against the SGD step, sweep point 0.
# steps.tsv: 1 point 2 sweep_value 3 rotation 4 t 5 loss 6 loss_se 7 D 8 D_se
#            9 eG 10 eG_se 11 e2 12 bound
f = datadir . "/steps.tsv"
sel(i) = ($1 == 0 && strcol(3) eq word(rots, i))
lo(m, s) = (m - s > 0.02 * m) ? m - s : 0.02 * m

set title "Loss and weight quantization error during STE-SGD\n" . runtitle noenhanced
set logscale xy
set autoscale xfixmax
set xlabel "SGD step {/:Italic t} + 1"
set ylabel "{/:Italic L}({/:Italic w^t})  and  ‖{/:Italic e}({/:Italic Rw^t})‖@^2_{/:Italic G}"
set format x "10^{%T}"
set key inside left bottom vertical Left reverse samplen 2.2 spacing 1.1 width -1 box lc rgb "#BBBBBB" opaque

plot for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):(lo($5, $6)):($5 + $6) \
         with filledcurves lc rgb rotcolor(i) fs transparent solid 0.18 noborder notitle, \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):5 with lines lt i lw 1.2 title rotlabel(i), \
     for [i=1:4] f skip 1 using (sel(i) ? $4 + 1 : NaN):9 with lines lt i lw 1.2 dt (8,5) notitle, \
     keyentry with lines lc rgb "black" lw 1.2 title "loss {/:Italic L}({/:Italic w^t}) (mean ± SE)", \
     keyentry with lines lc rgb "black" lw 1.2 dt (8,5) title "weight quant. error ‖{/:Italic e}({/:Italic Rw^t})‖@^2_{/:Italic G}"

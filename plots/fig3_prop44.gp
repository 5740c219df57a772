# Figure 3: Proposition 4.4. Histogram over random weight vectors with outliers of
# log10(measured quantization error / bound): without rotation against bound (20),
# with a random Hadamard against bound (21). Ratio 1 (dashed) is the bound.
# prop44.tsv: 1 i 2 norm2 3 maxabs2 4 err_none 5 bound20 6 err_rh 7 bound21
f = datadir . "/prop44.tsv"
r20(e, b) = (e > 0 && b > 0) ? log10(e / b) : NaN

stats f skip 1 using (r20($4, $5)):(r20($6, $7)) nooutput
nvec = STATS_records
lo = floor(STATS_min_x < STATS_min_y ? STATS_min_x : STATS_min_y)
hi = ceil(STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y)
hi = hi < 0.5 ? 0.5 : hi
stats f skip 1 using ($6 > $7 ? 1 : 0) nooutput
nviol = STATS_sum
stats f skip 1 using ($4 > $5 ? 1 : 0) nooutput
nviol20 = STATS_sum

bw = (hi - lo) / 40.0
bin(x) = bw * floor(x / bw) + bw / 2

set title "Proposition 4.4: quantization error of weights with outliers, relative to the bounds\n" . runtitle noenhanced
set xlabel "measured error / bound   (log scale)"
set ylabel "fraction of vectors"
set format x "10^{%.0f}"
set format y "%.2g"
set xtics 1
set mxtics 1   # linear minor tics would mislead on a log10 axis: put them at 2..9 x 10^k
do for [k = lo : hi] { do for [m = 2 : 9] { set xtics add ("" k + log10(m) 1) } }
set xrange [lo : hi]
set yrange [0 : *]
set offsets 0, 0, graph 0.45, 0
set style fill transparent solid 0.45 border
set boxwidth bw absolute
set key inside left top vertical Left reverse samplen 1.5 spacing 1.15 width -1 box lc rgb "#BBBBBB" opaque
set arrow 1 from 0, graph 0 to 0, graph 1 nohead lw 1.3 dt (8,5) lc rgb "black" front
set label 1 "bound\n(ratio = 1)" at first 0, graph 0.93 left offset 0.6, 0 front
allowed = (delta == delta) ? sprintf("\n(Prop. 4.4 allows δ = %g%%)", 100.0 * delta) : ""
set label 2 sprintf("Hadamard above bound (21): %d of %d vectors = %.1f%%%s", \
                    nviol, nvec, 100.0 * nviol / nvec, allowed) \
    at graph 0.02, graph 0.76 left front
set label 3 sprintf("no rotation above bound (20): %d of %d", nviol20, nvec) at graph 0.02, graph 0.62 left front

plot f skip 1 using (bin(r20($4, $5))):(1.0 / nvec) smooth frequency with boxes lc rgb rotcolor(1) \
         title "no rotation: ‖{/:Italic Q}({/:Italic w}) − {/:Italic w}‖^2 / bound (20)", \
     f skip 1 using (bin(r20($6, $7))):(1.0 / nvec) smooth frequency with boxes lc rgb rotcolor(2) \
         title "random Hadamard: ‖{/:Italic Q}({/:Italic Rw}) − {/:Italic Rw}‖^2 / bound (21)"

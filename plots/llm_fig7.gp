# llm diagnose, the paper's Fig. 7: relative reduction by rotation (every R1-R4 on) of the
# weight and input quantization errors and of the inputs' dynamic range, per layer and site.
# fig7.tsv: 1 layer 2 site 3 w_err_off 4 w_err_on 5 a_err_off 6 a_err_on 7 range_off
#           8 range_on 9 w_red 10 a_red 11 range_red
set terminal pngcairo size 1200,800
set output datadir . "/fig7_reduction.png"
set title "Relative reduction by rotation, per layer and site (layer:site)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set ylabel "1 - rotated / unrotated"
set xtics rotate by -60 noenhanced
set key top right
set grid y
plot datadir . "/fig7.tsv" skip 1 using 9:xtic(sprintf("%d:%s", $1, strcol(2))) title "weight error", \
     '' skip 1 using 10 title "input / KV error", '' skip 1 using 11 title "dynamic range"

# llm diagnose, the paper's Fig. 4: quantization error E and training loss per step of each
# run given to --runs (in order, e.g. STE then RoSTE). fig4.tsv: 1 run 2 step 3 E 4 loss
# (nan where the log has none); the command defines nruns and rn[1..nruns], the runs'
# labels, for the legend. The loss of one step is one mini-batch's: thin lines are the raw
# values, thick ones a Bezier smoothing of them.
set terminal pngcairo size 1200,1000
set output datadir . "/fig4_error.png"
set multiplot layout 2,1
set title "Quantization error E over training (per-element means, every site)"
set xlabel "step"
set ylabel "E"
set key top right noenhanced
plot for [r=1:nruns] datadir . "/fig4.tsv" skip 1 using ($1 == r - 1 ? $2 : NaN):3 with lines lw 2 lc r title rn[r]
set title "Training loss (thin: per step; thick: smoothed)"
set ylabel "loss"
plot for [r=1:nruns] datadir . "/fig4.tsv" skip 1 using ($1 == r - 1 ? $2 : NaN):4 with lines lw 1 lc r notitle, \
     for [r=1:nruns] datadir . "/fig4.tsv" skip 1 using ($1 == r - 1 ? $2 : NaN):4 smooth bezier lw 3 lc r title rn[r]
unset multiplot

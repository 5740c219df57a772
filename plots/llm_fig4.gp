# llm diagnose, the paper's Fig. 4: quantization error E per training step of each run
# given to --runs (in order, e.g. STE then RoSTE). fig4.tsv: 1 run 2 step 3 E; the
# command defines nruns and rn[1..nruns], the runs' folder names, for the legend.
set terminal pngcairo size 1200,800
set output datadir . "/fig4_error.png"
set title "Quantization error E over training (per-element means, every site)"
set xlabel "step"
set ylabel "E"
set key top right noenhanced
plot for [r=1:nruns] datadir . "/fig4.tsv" skip 1 using ($1 == r - 1 ? $2 : NaN):3 with lines lw 2 title rn[r]

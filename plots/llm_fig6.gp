# llm diagnose, the paper's Fig. 6: per-channel max |input| of one layer's q/k/v and
# down_proj inputs at the end of training, one curve per --runs folder (e.g. STE vs RoSTE;
# inputs after the run's own online rotations). fig6.tsv: 1 site 2 channel 3.. one column
# per run, the header naming the runs' folders.
set terminal pngcairo size 1200,800
set output datadir . "/fig6_channels.png"
set multiplot layout 2,1 title "Per-channel max |activation| at the end of training"
set xlabel "channel"
set ylabel "max |x|"
set key top right noenhanced
plot datadir . "/fig6.tsv" using (strcol(1) eq "qkv" ? $2 : NaN):3 with impulses title "q/k/v input, " . columnheader(3), \
     '' using (strcol(1) eq "qkv" ? $2 : NaN):4 with lines lw 2 title "q/k/v input, " . columnheader(4)
plot datadir . "/fig6.tsv" using (strcol(1) eq "down" ? $2 : NaN):3 with impulses title "down_proj input, " . columnheader(3), \
     '' using (strcol(1) eq "down" ? $2 : NaN):4 with lines lw 2 title "down_proj input, " . columnheader(4)
unset multiplot

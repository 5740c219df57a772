# llm diagnose, the paper's Fig. 3: per-channel max |input| of one layer's q/k/v and
# down_proj inputs, without and with rotation. fig3.tsv: 1 site 2 channel 3 max_off 4 max_on
set terminal pngcairo size 1200,800
set output datadir . "/fig3_channels.png"
set multiplot layout 2,1 title "Per-channel max |activation| before / after rotation"
set xlabel "channel"
set ylabel "max |x|"
set key top right
plot datadir . "/fig3.tsv" skip 1 using (strcol(1) eq "qkv" ? $2 : NaN):3 with impulses title "q/k/v input, no rotation", \
     '' skip 1 using (strcol(1) eq "qkv" ? $2 : NaN):4 with lines lw 2 title "q/k/v input, rotated"
plot datadir . "/fig3.tsv" skip 1 using (strcol(1) eq "down" ? $2 : NaN):3 with impulses title "down_proj input, no rotation", \
     '' skip 1 using (strcol(1) eq "down" ? $2 : NaN):4 with lines lw 2 title "down_proj input, rotated"
unset multiplot

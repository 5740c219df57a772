# rostesim paper table1 / table3: grouped bars of the ROUGE mean, one group per method and
# one bar per bit setting, each with its 95% bootstrap CI over the test prompts as an error
# bar. NAME_chart.tsv: method, then per bit setting three columns: mean, CI low, CI high.
# The command defines datadir, name ("table1" or "table3"), ttl (the title) and nbits.
set terminal pngcairo size 1200,800
set output datadir . "/" . name . ".png"
set title ttl noenhanced
set ylabel "ROUGE mean (F, stemmed), 95% CI"
set yrange [0:*]
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right noenhanced
set xtics noenhanced
set grid ytics
plot for [b=0:nbits-1] datadir . "/" . name . "_chart.tsv" using 2+3*b:3+3*b:4+3*b:xtic(1) title columnheader(2+3*b)

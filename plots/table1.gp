# rostesim paper table1 / table3: grouped bars of the ROUGE mean, one group per method and
# one bar per bit setting. NAME_chart.tsv: method, then one column per bit setting. The
# command defines datadir, name ("table1" or "table3"), ttl (the title) and nbits.
set terminal pngcairo size 1200,800
set output datadir . "/" . name . ".png"
set title ttl noenhanced
set ylabel "ROUGE mean (F, stemmed)"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right noenhanced
set xtics noenhanced
set grid ytics
plot for [c=2:nbits+1] datadir . "/" . name . "_chart.tsv" using c:xtic(1) title columnheader(c)

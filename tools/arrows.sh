#!/usr/bin/env bash
# tools/arrows.sh: the include arrows between the rooms of the tree (quant/, par/, solvers/,
# llm/<room>/, sim/, plots/, cli/), counted, and any arrow that points back against the
# layering below (a room may include only rooms of a lower rank). Exit 1 when one does.
# Run from the repository root.
set -u
declare -A rank=([quant]=0 [par]=1 [solvers]=1 [llm/io]=2 [llm/text]=3 [llm/nn]=3
                 [llm/import]=4 [llm/train]=4 [llm/quantize]=5 [llm/eval]=6
                 [sim]=2 [plots]=2 [cli]=9)
back=0
while read -r n from to; do
  mark=""
  if [ -z "${rank[$from]:-}" ] || [ -z "${rank[$to]:-}" ]; then mark="  (room without a rank)"; back=1
  elif [ "${rank[$from]}" -le "${rank[$to]}" ]; then mark="  <- points back"; back=1; fi
  printf '%4d  %-13s -> %s%s\n' "$n" "$from" "$to" "$mark"
done < <(for f in $(git ls-files 'quant/*.[ch]' 'par/*.[ch]' 'solvers/*.[ch]' 'llm/*/*.[ch]' 'sim/*.[ch]' 'plots/*.[ch]' 'cli/*.[ch]'); do
           from=$(dirname "$f")
           grep -oE '^#include "[a-z_/]+\.h"' "$f" | sed -E 's/^#include "(.*)"/\1/' | while read -r h; do
             to=$(dirname "$h"); [ "$from" != "$to" ] && echo "$from $to"; done
         done | sort | uniq -c)
exit $back

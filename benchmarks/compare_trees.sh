#!/bin/bash
# Every benchmark run from two checkouts back to back, same arguments, on this machine.
# usage: bash benchmarks/compare_trees.sh BEFORE_CHECKOUT AFTER_CHECKOUT OUT_DIR
# Each benchmark runs from its own checkout (its code and its own benchmarks/ script); tables go to
# OUT_DIR/all.md. Both checkouts use this checkout's .venv.
set -u
B=$1; A=$2; OUT=$3; mkdir -p "$OUT"
PY="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python"
run() {  # name args...
  local name=$1; shift
  for t in before after; do
    local dir=$B; [ $t = after ] && dir=$A
    echo "### $name ($t: $dir)" >> "$OUT/all.md"
    (cd "$dir" && timeout 900 "$PY" "benchmarks/$name.py" "$@" > "$OUT/$name.$t.md" 2> "$OUT/$name.$t.err")
    echo "rc=$?" >> "$OUT/all.md"
    cat "$OUT/$name.$t.md" >> "$OUT/all.md"
  done
}
run pubsub_bench --messages 200000 --client-messages 20000 --backlog 50000
run detector_bench --events 30000 --stock-events 200 --seconds 20 --cpu-seconds 10
run console_ingest --events 100000
run warehouse_bench --commits 200
run models_bench --rows 200000 --repeat 1
run loadgen_bench --repeats 1 --events 20000 --parquet-events 100000 --dataset-rows 50000
(cd "$A" && timeout 900 "$PY" benchmarks/processor_bench.py --tree before="$B" --tree after="$A" --rates 200,800 \
  --duration 15 > "$OUT/processor_bench.md" 2> "$OUT/processor_bench.err")
cat "$OUT/processor_bench.md" >> "$OUT/all.md"
run stack_bench --skip-docker --warm-runs 1

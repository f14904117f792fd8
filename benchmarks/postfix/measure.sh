#!/bin/bash
# One benchmark run inside the container: smtp-source -> Postfix instance -> smtp-sink, end to end.
#
# Usage: measure.sh LABEL PORT CONFIG_DIRECTORY SENDER COUNT SESSIONS SIZE
#
# Starts smtp-sink on 198.51.100.25:10025 (port 25 of that address is redirected there), injects COUNT
# messages of SIZE bytes over SESSIONS parallel sessions with smtp-source (a new connection per
# message, unique recipients @sink.test), and waits until the sink has counted all of them and the
# instance's queue is empty. Prints one JSON line: the seconds from the first
# injection to the last delivery, messages per second, the CPU the whole machine spent, and the part
# of it OpenDKIM spent.
set -euo pipefail

label=$1 port=$2 config=$3 sender=$4 count=$5 sessions=$6 size=$7
sink_log=$(mktemp)

cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# CPU ticks of every OpenDKIM process (ours and the stock one): what signing costs.
dkim_cpu() { for pid in $(pgrep -x opendkim); do awk '{ print $14 + $15 }' "/proc/$pid/stat"; done | awk '{ s += $1 } END { print s + 0 }'; }

# smtp-sink -c keeps a running count ("sess=... quit=... mesg=N", separated by carriage returns).
received() { tr '\r' '\n' <"$sink_log" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1; }

smtp-sink -u postfix -c 198.51.100.25:10025 1024 >"$sink_log" 2>&1 &
sink=$!
trap 'kill "$sink" 2>/dev/null || true; rm -f "$sink_log"' EXIT
sleep 0.5

start=$(date +%s.%N)
cpu_start=$(cpu)
dkim_start=$(dkim_cpu)
smtp-source -s "$sessions" -l "$size" -m "$count" -N -f "$sender" -t bench@sink.test "127.0.0.1:$port"
injected=$(date +%s.%N)

deadline=$((SECONDS + 600))
until [ "$(received)" = "$count" ] && [ -z "$(postqueue -c "$config" -j)" ]; do
    if ((SECONDS > deadline)); then
        echo "{\"label\": \"$label\", \"error\": \"the sink counted $(received) of $count messages in 600 s\"}"
        exit 1
    fi
    sleep 0.1
done
end=$(date +%s.%N)
cpu_end=$(cpu)
dkim_end=$(dkim_cpu)

awk -v label="$label" -v count="$count" -v start="$start" -v injected="$injected" -v end="$end" \
    -v cpu="$((cpu_end - cpu_start))" -v dkim="$((dkim_end - dkim_start))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    seconds = end - start
    printf "{\"label\": \"%s\", \"messages\": %d, \"seconds\": %.2f, \"injection_seconds\": %.2f, ", label, count, seconds, injected - start
    printf "\"messages_per_second\": %.1f, \"cpu_seconds\": %.1f, \"cpu_ms_per_message\": %.2f, ", count / seconds, cpu / hz, 1000 * cpu / hz / count
    printf "\"opendkim_cpu_ms_per_message\": %.2f}\n", 1000 * dkim / hz / count
}'

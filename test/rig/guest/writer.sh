#!/bin/sh
# Writer workload: appends "<seq> <unix-time> <checksum>" records to DIR/records.log, each fsynced
# before the next. checksum = first 8 hex digits of md5("<seq> <unix-time>"), see test/rig/records.ts.
# On start it drops a torn tail (a crash or a disk-only snapshot can leave one) and continues the sequence.
dir=$1
log=$dir/records.log

checksum() {
  set -- $(printf '%s' "$1" | md5sum)
  echo "${1%"${1#????????}"}"
}

# Prints "<seq> <end-offset> <time> <checksum>" for each complete, well-formed, consecutive record.
scan() {
  awk 'BEGIN { end = 0; want = 0 }
    !/^[0-9]+ [0-9]+ [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/ { exit }
    { if (want && $1 != want) exit; want = $1 + 1; end += length($0) + 1; print $1, end, $2, $3 }' "$log"
}

damaged() {
  echo "writer: $log is damaged after seq $1; not writing to it" >&2
  exit 1
}

# Drops a torn tail (one partial record, maybe NUL-padded: the only damage a crash may leave)
# and prints the seq of the last record kept, 0 when there is none.
resume() {
  [ -s "$log" ] || { echo 0; return; }
  size=$(stat -c %s "$log")
  set -- 0 0 0 0
  while read -r seq end time sum; do
    [ -n "$seq" ] && [ "$end" -le "$size" ] && set -- "$seq" "$end" "$time" "$sum"
  done <<EOF
$(scan | tail -n 2)
EOF
  last=$1
  keep=$2
  [ "$last" = 0 ] || [ "$(checksum "$1 $3")" = "$4" ] || damaged "$((last - 1))"
  [ "$(tail -c +$((keep + 1)) "$log" | tr -d '\000' | wc -l)" = 0 ] || damaged "$last"
  if [ "$keep" -lt "$size" ]; then
    echo "writer: $log: dropping a torn tail of $((size - keep)) bytes after seq $last" >&2
    truncate -s "$keep" "$log"
    sync "$log"
  fi
  echo "$last"
}

last=$(resume) || exit 1
seq=$((last + 1))
echo "writer: $log: starting at seq $seq" >&2
while :; do
  rec="$seq $(date +%s)"
  printf '%s %s\n' "$rec" "$(checksum "$rec")" >>"$log"
  sync "$log"
  seq=$((seq + 1))
  usleep 100000
done

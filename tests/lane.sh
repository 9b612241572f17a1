#!/usr/bin/env bash
# tests/lane.sh NAME TARGET...: make's targets one after the other, each output line prefixed with
# [NAME]; each target's time and status go to build/test-times.txt, which make test prints at its
# end. Without targets: the time since make test started (build/test-start), as NAME.
set -uo pipefail
name=$1
shift
times=build/test-times.txt
record() { printf '%-12s %-18s %6ss  %s\n' "$name" "$1" "$2" "$3" >>"$times"; }
if (($# == 0)); then
  record '(set-up)' $(($(date +%s) - $(cat build/test-start))) ok
  exit 0
fi
for target in "$@"; do
  start=$(date +%s)
  ${MAKE:-make} --no-print-directory "$target" 2>&1 | sed -u "s/^/[$name] /"
  status=${PIPESTATUS[0]}
  record "$target" $(($(date +%s) - start)) "$( ((status == 0)) && echo ok || echo "FAILED ($status)")"
  ((status == 0)) || exit "$status"
done

#!/usr/bin/env bash
# Where the suite's CPU goes (figures, not a timed test): rig/test (or the stages given) under the
# kernel's process accounting, then the CPU seconds of every program that ended meanwhile, by name,
# the containers' processes included (the host's accounting records them too). The suite is bound
# by CPU on a small machine, so this says what a shorter run must cost less of.
# Names are the kernel's (15 characters); a * marks a process forked and never exec'd:
#   ansible-playboo    the controller of each run (start-up, parsing, the strategy loop)
#   ansible-playboo*   the worker each task forks (templating, the action, the module's payload)
#   python3            module runs on the nodes (AnsiballZ), and on the controller (the
#                      virtualenv's python3: boto3, google-auth)
#   python             pytest, the sanity tests, the harnesses
# The accounting is the whole machine's: run it on a quiet one. Needs root (accton).
#   bench/suite_cpu.sh [STAGE...]     (rig/test's stages; default all)
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"
rig_apt acct
pacct=$(mktemp /tmp/oce-bench-pacct.XXXXXX)
trap 'accton off >/dev/null 2>&1; rm -f "$pacct"' EXIT
accton "$pacct" >/dev/null
rc=0
"$OCE_ROOT/rig/test" "$@" || rc=$?
accton off >/dev/null
# dump-acct: name | version | user | system | elapsed (ticks of 1/100 s) | ... | flags (F: forked,
# never exec'd: a worker of the process it came from) | ...
dump-acct "$pacct" | awk -F'|' '
  { name = $1; gsub(/ +$/, "", name); if ($12 ~ /F/) name = name "*"
    cpu = ($3 + $4) / 100; n[name]++; s[name] += cpu; total += cpu; count++ }
  END {
    printf "%-18s %9s %9s %6s %11s\n", "program (15 chars)", "processes", "CPU s", "share", "CPU s each"
    for (k in s) if (s[k] >= total / 1000)
      printf "%-18s %9d %9.1f %5.1f%% %11.3f\n", k, n[k], s[k], 100 * s[k] / total, s[k] / n[k] | "sort -k3 -n -r"
    close("sort -k3 -n -r")
    printf "%-18s %9d %9.1f\n", "all", count, total
  }'
exit "$rc"

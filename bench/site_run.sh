#!/usr/bin/env bash
# Benchmarks on the local target (figures, not a timed test):
#  1. create -> answer: site.yml from the bare base image to the model's printed answer (wall s)
#  2. a second site.yml on the converged node: wall seconds and changed count (target 0)
#  and the ten slowest tasks of each (ansible.posix.profile_tasks)
# Uses its own deployment and port so the demo node is left alone; destroys it at the end.
#   OCE_BENCH_DEPLOYMENT (default bench) and OCE_BENCH_PORT (default 11435): to run two at once.
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"
rig_setup
cd "$OCE_ROOT" || exit
args=(-e cloud=local -e "deployment=${OCE_BENCH_DEPLOYMENT:-bench}" -e "node_local_api_port=${OCE_BENCH_PORT:-11435}"
  -e "@$OCE_RIG_VARS")
log=$(mktemp -d)
trap 'ansible-playbook playbooks/destroy.yml "${args[@]}" >/dev/null; rm -rf "$log"' EXIT
ansible-playbook playbooks/destroy.yml "${args[@]}" >/dev/null

changed() { awk '/ changed=/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { split($i, a, "="); n += a[2] } } END { print n + 0 }' "$1"; }
run() {
  local start end
  start=$(date +%s.%N)
  ansible-playbook site.yml "${args[@]}" >"$log/$1" || { cat "$log/$1"; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=10
first=$(run first)
second=$(run second)
printf 'create -> answer (bare image)   %6.1f s   changed=%s\n' "$first" "$(changed "$log/first")"
printf 'second site.yml (converged)    %6.1f s   changed=%s\n' "$second" "$(changed "$log/second")"
grep -A1 ' answered in ' "$log/second" | head -2 || true
# profile_tasks ends a run with its table: the lines after the last "=====" rule.
slowest() { awk '/^=====/ { n = NR } { line[NR] = $0 } END { for (i = n + 1; i <= NR; i++) if (line[i] ~ / ---/) print line[i] }' "$1" | head -10; }
echo "ten slowest tasks from the bare image:"
slowest "$log/first"
echo "ten slowest tasks of the converged run:"
slowest "$log/second"

#!/usr/bin/env bash
# Starts and stops a real single-node Slurm (munged + slurmctld + slurmd, all on 127.0.0.1) for
# the Slurm executor's tests. Everything it writes lives under STATE_DIR; see tests/slurm/README.md.
#
#   tests/slurm/slurm_cluster.sh start  STATE_DIR   # stdout: export SLURM_CONF=STATE_DIR/slurm.conf
#   tests/slurm/slurm_cluster.sh stop   STATE_DIR   # idempotent; exit 0 once nothing runs
#   tests/slurm/slurm_cluster.sh status STATE_DIR   # exit 0 when sinfo shows the node, else 1
#
# start: installs slurmctld slurmd slurm-client munge when missing (root only; otherwise exits 77,
#   CTest's usual skip code, naming what to install); needs root to run the daemons (exit 77 too);
#   writes a fresh munge key and slurm.conf, starts munged, slurmctld and slurmd, and waits at most
#   60 s for sinfo to show the node idle. On failure it prints the logs' tails, stops what it
#   started and exits 1. The export line is the only output on stdout (so
#   `eval "$(slurm_cluster.sh start DIR)"` works) and is also written to STATE_DIR/env.
#   A cluster that already answers in STATE_DIR is reused as it is.
# stop: cancels the cluster's jobs while it still answers (a job outlives slurmd otherwise), then
#   stops slurmd, slurmctld and munged by their PID files: SIGTERM, SIGKILL after 10 s; a zombie
#   counts as stopped. Exit 1 only if a daemon survives SIGKILL.
#
# Environment: PROXYTASK_SLURMCTLD_PORT, PROXYTASK_SLURMD_PORT (default: 6817 and 6818 when free,
# otherwise the next free ports, so a second cluster or a leftover never collides);
# PROXYTASK_SLURM_CRED_EXPIRE (seconds; default Slurm's 120): also the time a requeued job waits.
# Checked with Debian 12's Slurm 22.05.8 and munge 0.5.15, as root, without systemd; the facts
# behind each setting and what the cluster does with jobs are in tests/slurm/README.md.
set -euo pipefail

readonly packages=(slurmctld slurmd slurm-client munge)
readonly grace_s=10     # SIGTERM -> SIGKILL
readonly ready_s=60     # start: how long to wait for the node to be idle

# The daemons live in /usr/sbin, which a non-root PATH may lack.
export PATH=$PATH:/usr/sbin:/sbin

log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
action=$1
case $action in start | stop | status) ;; *) usage ;; esac
# Slurm wants absolute paths. Only start creates the folder: stopping or asking about a cluster
# that was never started is not an error worth a folder.
if [[ $action == start ]]; then mkdir -p "$2"; fi
if [[ ! -d $2 ]]; then
  [[ $action == stop ]] && exit 0   # nothing was started there, so nothing runs
  exit 1                            # status: no cluster
fi
state=$(cd "$2" && pwd)

# Layout of STATE_DIR.
conf=$state/slurm.conf
env_file=$state/env
munge_dir=$state/munge            # socket, PID, log, seed; 755: munged refuses a socket folder
                                  # that not everyone can enter
key_dir=$state/munge-key          # 700, so the key stays private although munge_dir is 755
key=$key_dir/munge.key
socket=$munge_dir/munge.socket
munged_pid=$munge_dir/munged.pid
ctld_state=$state/slurmctld       # StateSaveLocation
spool=$state/slurmd               # SlurmdSpoolDir
log_dir=$state/log                # daemons' logs and jobcomp.txt (one line per finished job)
run_dir=$state/run                # slurmctld and slurmd PID files
ctld_pid=$run_dir/slurmctld.pid
slurmd_pid=$run_dir/slurmd.pid
node=$(hostname -s)               # the one node has the host's name; slurmd is started with -N

# pid_of PIDFILE: prints the PID that PIDFILE holds; fails when there is none.
pid_of() {
  local pid
  [[ -r $1 ]] && read -r pid <"$1" && [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# alive PID NAME: true when PID is a live process whose command is NAME. The name check guards
# against a PID reused since the daemon died; a zombie (state Z) is not alive: here nobody may
# ever reap it (PID 1 need not be an init that does).
alive() {
  local comm stat
  comm=$(cat "/proc/$1/comm" 2>/dev/null) && [[ $comm == "$2" ]] || return 1
  stat=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $stat != Z* ]]
}

# running PIDFILE NAME: true when PIDFILE names a live NAME.
running() {
  local pid
  pid=$(pid_of "$1") && alive "$pid" "$2"
}

# stop_daemon PIDFILE NAME: SIGTERM, then SIGKILL after grace_s; returns 1 if it survives that.
# It watches the PID, not the file: a daemon may delete its PID file long before it exits
# (slurmd does, then waits for its jobs' steps).
stop_daemon() {
  local pidfile=$1 name=$2 pid i
  if pid=$(pid_of "$pidfile") && alive "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace_s * 10; i++)); do    # polls every 0.1 s
      alive "$pid" "$name" || break
      sleep 0.1
    done
    if alive "$pid" "$name"; then
      log "$name (pid $pid) still runs ${grace_s} s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        alive "$pid" "$name" || break
        sleep 0.1
      done
      if alive "$pid" "$name"; then
        log "$name (pid $pid) survives SIGKILL"
        return 1
      fi
    fi
  fi
  rm -f "$pidfile"   # the daemons remove it themselves, but not after SIGKILL
}

# client CMD ARGS...: a Slurm client command bound to this cluster. Without SLURM_CONF a client
# retries for 60 s and fails; the timeout bounds its retries when the controller is gone.
client() { SLURM_CONF=$conf timeout 20 "$@"; }

# node_state: prints the node's state as sinfo's %t shows it (idle, alloc, mix, down*, ...);
# prints nothing when the cluster does not answer. It asks only while our slurmctld runs: a
# client of a dead controller retries for about 10 s, and its port may belong to another cluster
# by now (which would refuse us, our munge key being another, after as long).
node_state() {
  [[ -r $conf ]] && running "$ctld_pid" slurmctld || return 0
  client sinfo --noheader --Node --nodes="$node" --format=%t 2>/dev/null | head -n 1 || true
}

# queue_drains SECONDS: true once squeue shows no job (or no longer answers) within SECONDS.
queue_drains() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do   # polls every 0.1 s
    [[ -z $(client squeue --noheader 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  return 1
}

# our_steps: PIDs of this cluster's slurmstepd processes (one per running job step). A step is
# a process of its own (parent: PID 1) that outlives slurmd. slurmd puts SLURM_CONF=<its
# slurm.conf> in every step's environment, which tells ours from another cluster's.
our_steps() {
  local pid
  for pid in $(pgrep -x slurmstepd || true); do
    { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf" &&
      echo "$pid"
  done
  return 0
}

# descendants PID...: the children of the PIDs, their children, and so on.
descendants() {
  local queue=("$@") i=0 child
  while ((i < ${#queue[@]})); do
    for child in $(ps -o pid= --ppid "${queue[i]}" || true); do
      queue+=("$child")
      echo "$child"
    done
    i=$((i + 1))
  done
}

# cancel_jobs: ends every job while the controller answers; waits up to grace_s for the queue
# to drain.
cancel_jobs() {
  local ids steps=() procs=()
  [[ -n $(node_state) ]] || return 0
  # %F: the array's job id for array tasks (scancel of it covers every task), else the job id.
  ids=$(client squeue --noheader --format=%F 2>/dev/null | sort -u) || return 0
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086  # one word per job id
  client scancel $ids 2>/dev/null || true
  queue_drains 3 && return 0
  # scancel sends SIGTERM and Slurm sends SIGKILL only KillWait (30 s) later; scancel
  # --signal=KILL is the same cancel. So SIGKILL the jobs' processes ourselves, but not their
  # slurmstepd: it then reports the end as usual, and slurmd is left waiting for nothing.
  mapfile -t steps < <(our_steps)
  [[ ${#steps[@]} -gt 0 ]] && mapfile -t procs < <(descendants "${steps[@]}")
  if [[ ${#procs[@]} -gt 0 ]]; then
    log "jobs still running 3 s after scancel: SIGKILL to ${procs[*]}"
    kill -KILL "${procs[@]}" 2>/dev/null || true
  fi
  queue_drains "$grace_s" ||
    log "jobs still in the queue ${grace_s} s after that; stopping the daemons anyway"
}

# kill_steps: once the daemons are gone, kills whatever is left of this cluster's jobs: their
# slurmstepd processes with all their descendants, listed before any is killed (once a step
# dies, its children are re-parented and could no longer be found).
kill_steps() {
  local steps=() tree=()
  mapfile -t steps < <(our_steps)
  [[ ${#steps[@]} -gt 0 ]] || return 0
  mapfile -t tree < <(descendants "${steps[@]}")
  tree+=("${steps[@]}")
  log "killing ${#steps[@]} leftover job step(s) and their processes: ${tree[*]}"
  kill -KILL "${tree[@]}" 2>/dev/null || true
}

stop_all() {
  local ok=0
  cancel_jobs
  # Reverse start order: slurmd and slurmctld need munged to say goodbye to each other.
  stop_daemon "$slurmd_pid" slurmd || ok=1
  stop_daemon "$ctld_pid" slurmctld || ok=1
  stop_daemon "$munged_pid" munged || ok=1
  kill_steps
  return "$ok"
}

# fail MESSAGE: the start failed; show why, leave nothing running, exit 1.
fail() {
  local f
  log "error: $1"
  for f in "$munge_dir/munged.log" "$log_dir/slurmctld.log" "$log_dir/slurmd.log"; do
    [[ -r $f ]] || continue
    echo "----- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
  stop_all || true
  exit 1
}

# missing_tools: the packages' programs that are not on PATH, on one line.
missing_tools() {
  local tool missing=()
  for tool in munged slurmctld slurmd sinfo squeue sbatch scancel scontrol; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  echo "${missing[*]}"
}

# apt_install LOG: installs the packages; apt's output goes to stderr (stdout carries only the
# export line) and to LOG. DPkg::Lock::Timeout waits for another apt or dpkg run to end instead
# of failing at once.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${packages[@]}" 2>&1 | tee "$1" >&2
}

# ensure_installed: installs the packages when a program is missing; exit 77 when it cannot.
ensure_installed() {
  local missing output installed=0 policy=/usr/sbin/policy-rc.d
  missing=$(missing_tools)
  [[ -z $missing ]] && return 0
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "skipped: not found: $missing. Install, as root:"
    log "  apt-get install -y --no-install-recommends ${packages[*]}"
    exit 77
  fi
  # The packages' maintainer scripts start their services unless policy-rc.d says no (exit 101).
  # Container images often ship one; otherwise add a temporary one. The EXIT trap removes it
  # even when apt fails or a signal ends the script (bash runs it on SIGINT and SIGTERM too).
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from proxytask slurm_cluster.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  output=$(mktemp)
  log "installing ${packages[*]}"
  if apt_install "$output"; then
    installed=1
  elif grep -qE 'Unable to locate package|has no installation candidate' "$output"; then
    # Images often ship without package lists: fetch them, but only then (an update is slow).
    log "no package lists: apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update >&2 && apt_install "$output" && installed=1
  fi
  rm -f "$output"
  # Our policy-rc.d goes now, not at exit: it would also silence any other apt run meanwhile.
  if [[ -n $(trap -p EXIT) ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
  ((installed)) || die "apt-get failed (its output is above)"
  missing=$(missing_tools)
  [[ -z $missing ]] || die "still not found after installing ${packages[*]}: $missing"
}

# port_in_use PORT: true when a local TCP socket uses PORT. Sockets in TIME-WAIT (left by a
# cluster just stopped) do not count: the daemons bind with SO_REUSEADDR.
port_in_use() {
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htan exclude time-wait "( sport = :$1 )" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null   # a connection means a listener
  fi
}

# free_port FROM [AVOID]: the first port >= FROM that is free and is not AVOID.
free_port() {
  local port=$1
  while port_in_use "$port" || [[ $port == "${2:-}" ]]; do
    port=$((port + 1))
    ((port <= 65535)) || die "no free TCP port from $1 up"
  done
  echo "$port"
}

# write_conf CTLD_PORT SLURMD_PORT: slurm.conf for one node with the host's CPU layout.
write_conf() {
  local detected layout memory auth_info
  # `slurmd -C` prints the detected hardware as a node line ("NodeName=vm CPUs=2 Boards=1
  # SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105", then "UpTime=...").
  # Keep its CPU layout, and declare 90% of its memory: a node that reports less memory than
  # slurm.conf declares is drained, so leave a margin.
  detected=$(slurmd -C | head -n 1 | tr ' ' '\n')
  layout=$(grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' <<<"$detected" |
    tr '\n' ' ')
  memory=$(sed -n 's/^RealMemory=//p' <<<"$detected")
  [[ -n $layout && $memory =~ ^[0-9]+$ ]] || die "cannot read the node's layout from slurmd -C"
  memory=$((memory * 9 / 10))
  # cred_expire (Slurm's default: 120 s) is also how long a requeued job waits before it may run
  # again; a test of requeueing can shorten it through PROXYTASK_SLURM_CRED_EXPIRE.
  auth_info=socket=$socket
  if [[ -n ${PROXYTASK_SLURM_CRED_EXPIRE:-} ]]; then
    [[ $PROXYTASK_SLURM_CRED_EXPIRE =~ ^[0-9]+$ ]] ||
      die "PROXYTASK_SLURM_CRED_EXPIRE must be a number of seconds"
    auth_info+=,cred_expire=$PROXYTASK_SLURM_CRED_EXPIRE
  fi
  cat >"$conf" <<EOF
# Written by tests/slurm/slurm_cluster.sh for a throw-away test cluster; see tests/slurm/README.md.
ClusterName=proxytask
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=$auth_info
StateSaveLocation=$ctld_state
SlurmdSpoolDir=$spool
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
# No cgroups: processes are tracked by parent PID, and tasks are not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# Whole CPUs are the consumable resource, so N one-CPU jobs run side by side on N CPUs.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# No slurmdbd (so no sacct); finished jobs are kept MinJobAge seconds for scontrol show job.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$log_dir/jobcomp.txt
MinJobAge=3600
# A node that was down comes back by itself once slurmd registers.
ReturnToService=2
# Schedule a new batch job at once (the default delay makes a trivial job take ~3 s).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
NodeName=$node NodeAddr=127.0.0.1 ${layout}RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  local ctld_port slurmd_port st deadline dir
  ensure_installed
  if [[ $EUID -ne 0 ]]; then
    log "skipped: start needs root (munged, slurmctld and slurmd run as root; SlurmUser=root)"
    exit 77
  fi
  # Reuse a cluster that runs and answers (its jobs go on); otherwise clear whatever is left of
  # an earlier one.
  if running "$munged_pid" munged && running "$ctld_pid" slurmctld &&
     running "$slurmd_pid" slurmd && [[ -n $(node_state) ]]; then
    log "reusing the cluster already running in $state"
  else
    stop_all || die "cannot stop the leftover daemons of $state"
    # Two clusters starting at once could pick the same free ports: pick and start under a lock.
    # The daemons get the lock's descriptor closed (9>&-), or they would hold it for ever.
    exec 9>"${TMPDIR:-/tmp}/proxytask-slurm-ports.lock"
    flock -w 120 9 || die "timed out waiting for ${TMPDIR:-/tmp}/proxytask-slurm-ports.lock"
    ctld_port=${PROXYTASK_SLURMCTLD_PORT:-}
    slurmd_port=${PROXYTASK_SLURMD_PORT:-}
    [[ $ctld_port =~ ^[0-9]*$ && $slurmd_port =~ ^[0-9]*$ ]] ||
      die "PROXYTASK_SLURMCTLD_PORT and PROXYTASK_SLURMD_PORT must be port numbers"
    # Unset ports: the first free one from 6817 (Slurm's default), then the next free one.
    [[ -n $ctld_port ]] || ctld_port=$(free_port 6817 "$slurmd_port")
    [[ -n $slurmd_port ]] || slurmd_port=$(free_port $((ctld_port + 1)) "$ctld_port")
    [[ $ctld_port != "$slurmd_port" ]] || die "slurmctld and slurmd cannot share port $ctld_port"
    ! port_in_use "$ctld_port" || die "slurmctld's port $ctld_port is in use"
    ! port_in_use "$slurmd_port" || die "slurmd's port $slurmd_port is in use"

    # munged refuses a socket below any folder that not everyone may enter (o+x), e.g. below a
    # `mktemp -d` folder (700). STATE_DIR is ours to open (x only: it still cannot be listed);
    # a folder above it is the caller's, so say which one instead of changing it.
    chmod a+x "$state"
    dir=$(dirname "$state")
    while :; do
      (($(stat -c '8#%a' "$dir") & 1)) ||
        die "munged needs every folder above its socket enterable by all: chmod o+x $dir"
      [[ $dir == / ]] && break
      dir=$(dirname "$dir")
    done

    # Fresh controller and node state: no job of an earlier run comes back.
    rm -rf "$ctld_state" "$spool"
    mkdir -p "$ctld_state" "$spool" "$log_dir" "$run_dir"
    install -d -m 755 "$munge_dir"
    install -d -m 700 "$key_dir"
    # munged's checks: a 1024-byte random key readable by its owner (root) only.
    rm -f "$key"
    dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    chmod 400 "$key"
    write_conf "$ctld_port" "$slurmd_port"

    # Each daemon forks into the background; its parent's exit status says whether it started.
    munged --socket="$socket" --key-file="$key" --pid-file="$munged_pid" \
      --log-file="$munge_dir/munged.log" --seed-file="$munge_dir/munged.seed" 9>&- ||
      fail "munged did not start"
    slurmctld -f "$conf" 9>&- || fail "slurmctld did not start"
    slurmd -f "$conf" -N "$node" 9>&- || fail "slurmd did not start"

    # The node turns idle once slurmd has registered (about 0.3 s). A daemon whose PID file is
    # there but whose process is gone has died: no need to wait out the timeout. (The file may
    # not be written yet when the daemon's parent returns, so a missing one means nothing.)
    deadline=$((SECONDS + ready_s))
    while st=$(node_state); [[ $st != idle ]]; do
      ((SECONDS < deadline)) || fail "the node is not idle after ${ready_s} s (sinfo: ${st:-none})"
      [[ ! -e $munged_pid ]] || running "$munged_pid" munged || fail "munged exited"
      [[ ! -e $ctld_pid ]] || running "$ctld_pid" slurmctld || fail "slurmctld exited"
      [[ ! -e $slurmd_pid ]] || running "$slurmd_pid" slurmd || fail "slurmd exited"
      sleep 0.2
    done
    exec 9>&-   # the ports are taken now: release the lock
    log "cluster up in $state (slurmctld port $ctld_port, slurmd port $slurmd_port)"
  fi
  echo "export SLURM_CONF=$conf" >"$env_file"
  cat "$env_file"
}

case $action in
  start) start ;;
  stop) stop_all ;;
  status) [[ -n $(node_state) ]] ;;   # node_state asks only while our slurmctld runs
esac

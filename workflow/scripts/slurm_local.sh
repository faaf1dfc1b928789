#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this machine (Debian, root, no systemd), so that the
# workflow's SLURM profile can be tested for real (tests/test_slurm.py).
#
#   bash workflow/scripts/slurm_local.sh up       # install if needed, configure, start, smoke-test
#   bash workflow/scripts/slurm_local.sh status   # sinfo
#   bash workflow/scripts/slurm_local.sh down     # stop exactly the daemons `up` started (PID files)
#
# No accounting database: jobs are polled with `squeue`, which the executor plugin only trusts
# when MinJobAge >= 3 x --slurm-init-seconds-before-status-checks; MinJobAge=600 here.
# GPUs are count-only fakes (gres/gpu on char devices): scheduling only, no CUDA.
# Env: D2ST_SLURM_LAB (state/logs/PIDs, default .slurmlab), D2ST_FAKE_GPUS (default 1).
set -euo pipefail

LAB=$(realpath -m "${D2ST_SLURM_LAB:-.slurmlab}")
FAKE_GPUS=${D2ST_FAKE_GPUS:-1}
PARTITION=debug

say() { printf '[slurm_local] %s\n' "$*"; }

wait_until() { # wait_until SECONDS CMD...
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { say "timed out waiting for: $*"; return 1; }
    sleep 0.5
  done
}

launch() { # launch NAME CMD...: own session, PID remembered for `down`
  local name=$1; shift
  setsid nohup "$@" >"$LAB/log/$name.out" 2>&1 </dev/null &
  echo $! >"$LAB/run/$name.pid"
}

alive() { [[ -f $LAB/run/$1.pid ]] && kill -0 "$(cat "$LAB/run/$1.pid")" 2>/dev/null; }

install_packages() {
  local missing=()
  for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null 2>&1 || [[ -x /usr/sbin/$bin ]] || missing+=("$bin")
  done
  (( ${#missing[@]} == 0 )) && return 0
  say "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
    >"$LAB/log/apt.log" 2>&1
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi   # already running
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 600 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged          # daemonises itself
  wait_until 10 sh -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$LAB/run/munged.pid"
}

write_conf() {
  local host cpus mem gres_line="" gres_types=""
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)   # MB; > slurmd -C drains
  if (( FAKE_GPUS > 0 )); then
    gres_types="GresTypes=gpu"
    gres_line="Gres=gpu:$FAKE_GPUS"
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
      [[ -c $LAB/fakegpu$i ]] || mknod "$LAB/fakegpu$i" c 1 3   # gres/gpu needs device files
    done
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/fakegpu[0-%d]\n' \
      "$host" "$LAB" $((FAKE_GPUS - 1)) >/etc/slurm/gres.conf
  fi
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=d2stlocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$LAB/state/ctld
SlurmdSpoolDir=$LAB/state/d
SlurmctldPidFile=$LAB/run/slurmctld.daemon.pid
SlurmdPidFile=$LAB/run/slurmd.daemon.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=600
$gres_types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
  local t0=$SECONDS
  mkdir -p "$LAB"/{state/ctld,state/d,log,run}
  if alive slurmctld && alive slurmd && sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    say "already up"; sinfo -N -o "%N %c %m %G %T"; return 0
  fi
  install_packages
  start_munge
  write_conf
  alive slurmctld || launch slurmctld /usr/sbin/slurmctld -D -c   # -c: ignore stale state
  alive slurmd || launch slurmd /usr/sbin/slurmd -D
  wait_until 60 sh -c "sinfo -h -o %T | grep -qx idle"
  local jid
  jid=$(sbatch --parsable -p $PARTITION -t 1 --mem 100 -o "$LAB/log/smoke-%j.out" --wrap hostname)
  wait_until 60 sh -c "squeue -h -j $jid -t all -o %T | grep -qx COMPLETED"
  sinfo -N -o "%N %c %m %G %T"
  say "up in $((SECONDS - t0)) s (partition $PARTITION, $FAKE_GPUS fake GPU(s), no accounting)"
}

down() {
  local name pid
  for name in slurmd slurmctld munged; do           # newest first
    [[ -f $LAB/run/$name.pid ]] || continue
    pid=$(cat "$LAB/run/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      say "stopped $name ($pid)"
    fi
    rm -f "$LAB/run/$name.pid"
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) sinfo -N -o "%N %c %m %G %T" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

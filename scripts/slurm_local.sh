#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing the SLURM profile for real.
#
#   bash scripts/slurm_local.sh install   # Debian's slurmctld, slurmd, munge (needs root)
#   bash scripts/slurm_local.sh start     # munged + slurmctld + slurmd; returns once the node is idle
#   bash scripts/slurm_local.sh stop      # stops slurmctld and slurmd, removes the slurm.conf
#
# The configuration goes to /etc/slurm/slurm.conf, where every Slurm command (and srun
# inside a batch job, which does not see SLURM_CONF) looks; the script refuses to replace a
# slurm.conf it did not write. State and logs live under $GROKMAP_SLURM_DIR (default
# /tmp/grokmap-slurm). Accounting is off: finished jobs are listed in
# $GROKMAP_SLURM_DIR/log/jobcomp.txt and stay visible to squeue/scontrol for MinJobAge (1 h).
set -euo pipefail

DIR=${GROKMAP_SLURM_DIR:-/tmp/grokmap-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# Written by scripts/slurm_local.sh"
NODE=$(hostname -s)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        echo "slurm_local: slurmctld, slurmd, munged and the clients are installed"
        return 0
    fi
    echo "slurm_local: installing Debian's slurm-wlm and munge"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >/dev/null
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$DIR/ctld" "$DIR/d" "$DIR/log"
    if [ -e "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
        echo "slurm_local: $CONF exists and was not written by this script; not replacing it" >&2
        return 1
    fi
    as_root mkdir -p "$(dirname "$CONF")"
    as_root tee "$CONF" >/dev/null <<EOF
$MARK: a one-node test cluster on $NODE.
ClusterName=grokmap-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if pgrep -x munged >/dev/null; then return 0; fi
    if [ ! -s /etc/munge/munge.key ]; then
        as_root mkdir -p /etc/munge
        as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
    as_root chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    as_root chmod 0400 /etc/munge/munge.key
    as_root chmod 0755 /run/munge
    as_root runuser -u munge -- /usr/sbin/munged
}

start() {
    install
    stop_daemons quiet
    rm -rf "$DIR"
    write_conf
    start_munge
    as_root /usr/sbin/slurmctld
    as_root /usr/sbin/slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; then
            echo "slurm_local: node $NODE is up (sinfo, squeue, sbatch work now)"
            return 0
        fi
        sleep 1
    done
    echo "slurm_local: the node did not come up; logs follow" >&2
    tail -n 30 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    return 1
}

stop_daemons() {
    for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
        if [ -s "$pidfile" ]; then as_root kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    as_root pkill -x slurmd 2>/dev/null || true
    as_root pkill -x slurmctld 2>/dev/null || true
    for _ in $(seq 1 30); do  # they save state on the way out
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || break
        sleep 0.5
    done
    # Remove our configuration too: with a slurm.conf naming a controller that is down, every
    # Slurm client (and so every `snakemake` start, whose SLURM plugin runs `scontrol show
    # config` to pick its defaults) waits ~9 s for the controller before giving up.
    if [ -e "$CONF" ] && grep -q "^$MARK" "$CONF"; then as_root rm -f "$CONF"; fi
    [ "${1:-}" = quiet ] || echo "slurm_local: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop_daemons ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A real single-node SLURM on this machine, for `make test-slurm` and for trying
# `suite run --executor slurm --partition debug` without a cluster.
#
#   sudo benchmarks/local_slurm.sh          # start (or check) munged, MariaDB, slurmdbd,
#                                           # slurmctld and slurmd; partition `debug`
#   sudo benchmarks/local_slurm.sh stop     # stop them again
#   sudo benchmarks/local_slurm.sh status   # what runs
#
# Needs root and Debian's packages: apt-get install slurm-wlm slurmdbd munge mariadb-server.
# Accounting (slurmdbd on MariaDB) is part of it because submitit asks sacct how jobs ended:
# without it a cancelled job would never be seen to end. Idempotent: a second start keeps what
# runs and only starts what does not. Processes are tracked with proctrack/linuxproc (no
# cgroups needed in a container), so `scancel` reaches every process of a job, as on a cluster.
set -euo pipefail

NODE=$(hostname -s)
CLUSTER=hilobench
ETC=/etc/slurm
STATE=/var/lib/hilobench-slurm
LOGS=/var/log/hilobench-slurm
DB_PASS=hilobench-local
export SLURM_CONF=$ETC/slurm.conf

need() { command -v "$1" >/dev/null || { echo "local_slurm: $1 not found; apt-get install $2" >&2; exit 2; }; }
alive() { local pid; pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local t=$1 what=$2; shift 2
    for _ in $(seq "$((t * 5))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "local_slurm: $what did not come up; see $LOGS" >&2; exit 1
}

stop_one() {  # stop_one NAME PIDFILE
    local pid
    if alive "$2"; then
        pid=$(cat "$2")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        echo "stopped $1"
    fi
    rm -f "$2"
}

stop() {
    stop_one slurmd "$STATE/run/slurmd.pid"
    stop_one slurmctld "$STATE/run/slurmctld.pid"
    stop_one slurmdbd "$STATE/run/slurmdbd.pid"
    stop_one mariadb "/run/mysqld/hilobench.pid"
    stop_one munged /run/munge/munged.pid
}

status() {
    local name pid
    for name in munged:/run/munge/munged.pid mariadb:/run/mysqld/hilobench.pid slurmdbd:$STATE/run/slurmdbd.pid \
        slurmctld:$STATE/run/slurmctld.pid slurmd:$STATE/run/slurmd.pid; do
        pid=${name#*:}
        if alive "$pid"; then echo "${name%%:*}: running ($(cat "$pid"))"; else echo "${name%%:*}: stopped"; fi
    done
}

write_if_changed() {  # write_if_changed FILE MODE OWNER < content
    local tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if ! cmp -s "$tmp" "$1"; then install -m "$2" -o "$3" "$tmp" "$1"; fi
    rm -f "$tmp"
}

configure() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$STATE/run" "$LOGS" /run/munge /var/lib/munge /var/log/munge
    chown slurm:slurm "$STATE/ctld" "$STATE/run" "$LOGS"
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    write_if_changed "$ETC/slurm.conf" 644 root <<EOF
# Written by benchmarks/local_slurm.sh: one node, one partition, accounting through slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
AuthType=auth/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
KillWait=10
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    write_if_changed "$ETC/slurmdbd.conf" 600 slurm <<EOF
# Written by benchmarks/local_slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$STATE/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
}

start() {
    need munged munge
    need slurmctld slurm-wlm
    need slurmd slurm-wlm
    need slurmdbd slurmdbd
    need mariadbd mariadb-server
    [ "$(id -u)" = 0 ] || { echo "local_slurm: needs root" >&2; exit 2; }
    configure
    if ! alive /run/munge/munged.pid; then
        runuser -u munge -- /usr/sbin/munged --force
        wait_for 10 munged munge -n
    fi
    if ! alive "/run/mysqld/hilobench.pid"; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
        mariadbd --user=mysql --pid-file="/run/mysqld/hilobench.pid" --skip-networking=0 \
            --bind-address=127.0.0.1 >"$LOGS/mariadb.log" 2>&1 &
        wait_for 30 mariadb mariadb -e 'select 1'
        mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    fi
    if ! alive "$STATE/run/slurmdbd.pid"; then
        slurmdbd
        wait_for 30 slurmdbd sacctmgr -n list cluster
    fi
    sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    if ! alive "$STATE/run/slurmctld.pid"; then
        slurmctld
        wait_for 30 slurmctld scontrol ping
    fi
    if ! alive "$STATE/run/slurmd.pid"; then
        slurmd
    fi
    wait_for 30 "node $NODE" sh -c "sinfo -h -n $NODE -o %T | grep -Eq '^(idle|mixed|allocated)'"
    echo "local SLURM up: node $NODE, partition debug ($(nproc) CPUs); stop with $0 stop"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

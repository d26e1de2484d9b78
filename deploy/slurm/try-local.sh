#!/usr/bin/env bash
# End to end on this machine: install Debian's Slurm and MUNGE, start a throwaway single-node cluster
# (slurmctld and slurmd in the background, state under a temporary directory), run
# deploy/slurm/explore.sbatch as an array, merge the shards, stop the cluster. Needs root and apt
# (Debian 12 / Ubuntu). Leaves the packages installed; the cluster's files are in $WORK.
#   deploy/slurm/try-local.sh                       # 4 shards, a small battery
#   SHARDS=8 EXPLORE_ARGS="--families random --seeds 40" deploy/slurm/try-local.sh
set -euo pipefail
SHARDS=${SHARDS:-4}
export EXPLORE_ARGS=${EXPLORE_ARGS:---variants default --families random --seeds 4 --steps 60}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/hmmsim-slurm.XXXXXX)}
HOST=$(hostname -s)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
fi

# MUNGE authenticates the daemons to each other (Slurm has no auth/none any more).
if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --keyfile=/etc/munge/munge.key) || /usr/sbin/create-munge-key -f
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
STARTED_MUNGED=
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
    STARTED_MUNGED=1
fi

mkdir -p "$WORK/state" "$WORK/spool"
cat > "$WORK/slurm.conf" <<CONF
ClusterName=hmmsim
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$HOST CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$WORK/slurm.conf
slurmctld -c -f "$SLURM_CONF"
slurmd -c -f "$SLURM_CONF"
stop() {
    for pid in "$WORK/slurmd.pid" "$WORK/slurmctld.pid"; do
        [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    # munged writes no pid file of its own here; stop it only if this script started it.
    if [ -n "$STARTED_MUNGED" ] && [ -s /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
}
trap stop EXIT
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
    sleep 1
done
sinfo

# hmmsim, built once where every task can run it.
dotnet build "$REPO/src/HmmSim.Cli" -c Release -o "$WORK/hmmsim" >/dev/null
export HMMSIM="dotnet $WORK/hmmsim/HmmSim.Cli.dll" EXPLORE_OUT="$WORK/results"
cd "$WORK"
sbatch --wait --array=0-$((SHARDS - 1)) --export=ALL "$REPO/deploy/slurm/explore.sbatch"
$HMMSIM explore merge "$WORK"/results/shard-*.json --report "$WORK/explore.html" && rc=0 || rc=$?
echo "shards, logs and report in $WORK (merge exit code $rc)"
exit "$rc"

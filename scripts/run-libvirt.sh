#!/usr/bin/env bash
# run-libvirt.sh runs Keel with one real compute node on this machine (root,
# Debian; `make run-libvirt` installs the packages and builds bin/keel first):
#
#   - a private libvirtd in its own mount and PID namespaces, the way
#     adapters/libvirt/lvtest starts one: empty directories of its own are
#     bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
#     /var/log/libvirt and /var/cache/libvirt, its socket is
#     DATA_DIR/libvirt/sock/libvirt-sock, QEMU runs as root with no security
#     driver and writes serial consoles itself (no virtlogd). A system
#     libvirtd, if any, is neither needed nor touched;
#   - keel serve on LISTEN with its NATS for agents on NATS_LISTEN, no
#     simulated hosts, data (and its private Postgres) in DATA_DIR;
#   - keel agent --driver libvirt on that libvirtd as host HOST_NAME, with its
#     image cache and server disks in DATA_DIR/HOST_NAME;
#   - once the host is up: the test guest (scripts/test-guest.sh, cached in
#     .tools/guest like the tests' one) uploaded as image keel-test-guest, and
#     flavor m1.tiny; both are kept when they exist already.
#
# Logs: DATA_DIR/logs/{serve,agent,libvirtd}.log (libvirtd's own output in
# libvirtd.out). Ctrl-C (SIGINT or SIGTERM to this script) stops the agent,
# powers off the guests still running, stops libvirtd (its namespace, so no
# QEMU is left) and keel serve with its Postgres. The next run finds
# everything again in DATA_DIR.
#
# Environment: DATA_DIR (./keel-data-libvirt), LISTEN (127.0.0.1:8080),
# NATS_LISTEN (127.0.0.1:4222), HOST_NAME (node-1), KEEL (bin/keel),
# ACCEL (auto: KVM when a probe guest runs under it, else TCG).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keel=${KEEL:-$root/bin/keel}
data=$(realpath -m "${DATA_DIR:-./keel-data-libvirt}")
listen=${LISTEN:-127.0.0.1:8080}
nats_listen=${NATS_LISTEN:-127.0.0.1:4222}
host_name=${HOST_NAME:-node-1}
accel=${ACCEL:-auto}
lv=$data/libvirt
logs=$data/logs
sock=$lv/sock/libvirt-sock
uri="qemu:///system?socket=$sock"
tools=${KEEL_TOOLS_DIR:-$root/.tools}
export KEEL_API=http://$listen

say() { printf 'run-libvirt: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

((EUID == 0)) || die "needs root: a private libvirtd runs QEMU as root in namespaces of its own"
[[ -x $keel ]] || die "$keel not found: make build"
libvirtd=$(command -v libvirtd || echo /usr/sbin/libvirtd)
[[ -x $libvirtd ]] || die "libvirtd not found: run scripts/install-deps.sh as root (make deps)"
# The kernel limits unix socket paths to 107 bytes.
((${#sock} < 100)) || die "socket path $sock is too long: use a shorter DATA_DIR"

mkdir -p "$logs" "$lv"/{etc,run,lib,log,cache,sock}

serve_pid='' agent_pid='' lv_pid=''

# stop ends what this script started, agent first (its host says goodbye),
# then the guests and libvirtd, then keel serve (which stops its Postgres).
stop() {
  trap '' INT TERM
  say "stopping"
  stop_pid "$agent_pid" TERM 40 agent
  if [[ -n $lv_pid ]] && kill -0 "$lv_pid" 2>/dev/null; then
    local dom
    for dom in $(virsh -c "$uri" list --name 2>/dev/null); do
      virsh -c "$uri" destroy "$dom" >/dev/null 2>&1 && say "powered off $dom"
    done
    # unshare ignores INT and TERM; libvirtd is the child of the namespace's
    # init shell. When the shell exits, the kernel kills the namespace.
    local init
    init=$(pgrep -P "$lv_pid" || true)
    [[ -n $init ]] && pkill -TERM -P "$init" 2>/dev/null
    wait_gone "$lv_pid" 20 || kill -KILL "$lv_pid" 2>/dev/null
    wait_gone "$lv_pid" 10
  fi
  stop_pid "$serve_pid" TERM 60 "keel serve"
  say "stopped; the data stays in $data"
}

# stop_pid PID SIGNAL SECONDS NAME signals PID and waits for it, then kills it.
stop_pid() {
  local pid=$1 sig=$2 secs=$3 name=$4
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$secs"; then
    say "$name did not stop in ${secs}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# wait_gone PID SECONDS waits until PID has exited.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  return 1
}

trap 'exit 130' INT
trap 'exit 143' TERM
trap stop EXIT

# host_uuid: kept across runs, so the node stays the same machine.
[[ -s $lv/host-uuid ]] || cat /proc/sys/kernel/random/uuid >"$lv/host-uuid"
cat >"$lv/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$lv/sock"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "$(cat "$lv/host-uuid")"
log_outputs = "3:file:$logs/libvirtd.log"
EOF
# The same qemu.conf as adapters/libvirt/lvtest/config.go.
cat >"$lv/etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
vnc_listen = "127.0.0.1"
EOF
# /run is empty after a reboot: so is the daemon's, at each start (libvirtd
# then sees the domains of a previous run as shut off, not as lost QEMUs).
rm -rf "${lv:?}/run" "$lv/sock" && mkdir -p "$lv/run" "$lv/sock"

# The daemons run in sessions of their own: Ctrl-C reaches this script only,
# which stops them in order.
say "starting a private libvirtd (socket $sock, log $logs/libvirtd.log)"
setsid unshare --mount --propagation private --pid --fork --mount-proc --kill-child=SIGKILL sh -c "
set -e
for d in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
  mkdir -p \${d#*:}
  mount --bind $lv/\${d%%:*} \${d#*:}
done
$libvirtd --config $lv/etc/libvirtd.conf --pid-file $lv/libvirtd.pid
" >"$logs/libvirtd.out" 2>&1 &
lv_pid=$!
for ((i = 0; ; i++)); do
  virsh -c "$uri" version >/dev/null 2>&1 && break
  kill -0 "$lv_pid" 2>/dev/null || die "libvirtd exited: see $logs/libvirtd.out and $logs/libvirtd.log"
  ((i < 600)) || die "libvirtd does not answer on $sock after 60s"
  sleep 0.1
done

# The admin's password: chosen at the first run, kept (0600) in the data dir,
# so that this script and the person running it can log in at every run.
pwfile=$data/admin-password
if [[ ! -s $pwfile ]]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$pwfile")
fi
export KEEL_ADMIN_PASSWORD
KEEL_ADMIN_PASSWORD=$(<"$pwfile")

say "starting keel serve on $listen (NATS for agents on $nats_listen, data $data, log $logs/serve.log)"
setsid "$keel" serve --data-dir "$data" --listen "$listen" --nats-listen "$nats_listen" --fake-hosts 0 \
  >"$logs/serve.log" 2>&1 &
serve_pid=$!
# Logging in as admin (the token goes to the user's ~/.config/keel) is also
# how this script knows the API is up.
for ((i = 0; ; i++)); do
  KEEL_PASSWORD=$KEEL_ADMIN_PASSWORD "$keel" login --user admin >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -n 20 "$logs/serve.log" >&2; die "keel serve exited: see $logs/serve.log"; }
  ((i < 1200)) || die "the API does not answer on $KEEL_API after 120s: see $logs/serve.log"
  sleep 0.1
done

say "issuing the credentials of host $host_name ($data/$host_name.creds)"
rm -f "$data/$host_name.creds"
"$keel" host credentials "$host_name" -o "$data/$host_name.creds" >/dev/null || die "keel host credentials $host_name failed"
say "starting keel agent --driver libvirt as host $host_name (disks in $data/$host_name, log $logs/agent.log)"
setsid "$keel" agent --driver libvirt --libvirt-uri "$uri" --credentials "$data/$host_name.creds" \
  --data-dir "$data/$host_name" --nats "nats://$nats_listen" --accel "$accel" >"$logs/agent.log" 2>&1 &
agent_pid=$!
for ((i = 0; ; i++)); do
  [[ $("$keel" host show "$host_name" 2>/dev/null | awk '$1 == "STATE" {print $2}') == up ]] && break
  kill -0 "$agent_pid" 2>/dev/null || { tail -n 20 "$logs/agent.log" >&2; die "the agent exited: see $logs/agent.log"; }
  ((i < 600)) || die "host $host_name is not up after 120s: see $logs/agent.log"
  sleep 0.2
done
say "host $host_name is up ($(grep -o 'domain_type=[a-z]*' "$logs/agent.log" | head -n 1))"

say "building the test guest into $tools/guest (once; later runs reuse it)"
bash "$root/scripts/test-guest.sh" "$tools/guest" >"$logs/test-guest.log" 2>&1 ||
  { tail -n 20 "$logs/test-guest.log" >&2; die "scripts/test-guest.sh failed: see $logs/test-guest.log"; }

image=keel-test-guest
if ! status=$("$keel" image show "$image" 2>/dev/null | awk '$1 == "STATUS" {print $2}'); then
  say "uploading $tools/guest/keel-test-guest.qcow2 as image $image"
  "$keel" image create "$image" --disk-format qcow2 --visibility public --file "$tools/guest/keel-test-guest.qcow2" >/dev/null
elif [[ $status != active ]]; then # created, but an earlier upload did not finish
  say "uploading $tools/guest/keel-test-guest.qcow2 into image $image ($status)"
  "$keel" image upload "$image" "$tools/guest/keel-test-guest.qcow2" >/dev/null
else
  say "image $image is there"
fi
if "$keel" flavor show m1.tiny >/dev/null 2>&1; then
  say "flavor m1.tiny is there"
else
  "$keel" flavor create m1.tiny --vcpus 1 --ram-mib 256 --disk-gib 1 >/dev/null
  say "created flavor m1.tiny (1 vCPU, 256 MiB, 1 GiB)"
fi

cat >&2 <<EOF

Keel runs with one libvirt compute node, $host_name. You are logged in as
admin (its password is in $pwfile). In another terminal:

  export KEEL_API=$KEEL_API
  echo 'hello from my first guest' > /tmp/hello.txt
  bin/keel server create vm-1 --flavor m1.tiny --image $image --user-data /tmp/hello.txt --wait
  bin/keel server console-log vm-1
  bin/keel server login-info vm-1
  bin/keel server stop vm-1 --wait; bin/keel server start vm-1 --wait
  bin/keel server delete vm-1 --wait
  virsh -c '$uri' list --all

Logs: $logs/serve.log, $logs/agent.log, $logs/libvirtd.log
Ctrl-C stops it all (agent, guests, libvirtd, keel serve and its Postgres).
EOF

# Wait until Ctrl-C, or until one of them dies.
while kill -0 "$serve_pid" 2>/dev/null && kill -0 "$agent_pid" 2>/dev/null && kill -0 "$lv_pid" 2>/dev/null; do
  sleep 1
done
say "a process exited on its own: see the logs in $logs"
exit 1

#!/usr/bin/env bash
# micro-ceph.sh - a throw-away single-node Ceph cluster (1 mon, 1 memstore OSD, radosgw)
# living entirely inside one directory, for integration tests of the S3 client.
#
# Usage:
#   micro-ceph.sh start     <dir> <rgw_port> [mon_port]
#       Creates <dir> (if needed), writes <dir>/ceph.conf, starts ceph-mon, one ceph-osd
#       (memstore, data in RAM) and radosgw (beast on 127.0.0.1:<rgw_port>, path-style
#       buckets), creates the S3 user "wharf" and waits until radosgw answers. On success
#       prints exactly one line on stdout and exits 0, leaving the daemons running:
#         endpoint=http://127.0.0.1:<rgw_port> access_key=<AK> secret_key=<SK>
#       mon_port: a free TCP port on 127.0.0.1 is picked when it is not given, so several
#       clusters (different dirs, different rgw ports) can run at the same time.
#       On failure: a message plus the tail of the relevant log on stderr, everything
#       started so far is stopped, exit status non-zero.
#   micro-ceph.sh stop      <dir>            kill all daemons of the cluster in <dir> and
#                                            wait until they are gone (a next start
#                                            begins afresh; data is not kept)
#   micro-ceph.sh stop-rgw  <dir>            stop only radosgw ("S3 store down")
#   micro-ceph.sh start-rgw <dir> [rgw_port] start radosgw again, wait until it answers
#                                            (default port: the one given to start)
#   micro-ceph.sh smoke     <dir> [rgw_port] create a bucket, PUT/GET/DELETE an object
#                                            with curl --aws-sigv4 (curl >= 7.75)
#
# Notes:
#   * No systemd, nothing under /etc or /var; only 127.0.0.1. Daemons run as the calling
#     user (root in CI; no --setuser), in their own session (setsid), with pid files in
#     <dir>/run. Logs are in <dir>/log.
#   * auth is "none": nothing to secure on loopback, and no keyrings to manage.
#   * No ceph-mgr: mon + osd + radosgw are enough for S3 I/O (health shows a warning).
#   * S3 signing (AWS SigV4): radosgw accepts any region in the credential scope (the
#     zonegroup is "default"). Send a signed x-amz-content-sha256 header (hex SHA-256 of
#     the body, or UNSIGNED-PAYLOAD; radosgw checks the hash against the body): without
#     the header radosgw puts UNSIGNED-PAYLOAD in the canonical request, so a signature
#     made over the body's hash gives SignatureDoesNotMatch (curl --aws-sigv4 does that).
#     CreateBucket: no LocationConstraint, or "default" ("us-east-1" is refused with
#     InvalidLocationConstraint).
#   * Stop radosgw with stop-rgw (SIGTERM), never with SIGKILL: see cmd_stop_rgw.
#   * Data lives in the OSD's memory (memstore; MEMSTORE_BYTES, default 2 GiB) and is
#     gone after "stop".
#   * <dir> should be short: unix socket paths (admin sockets) are limited to 107 bytes;
#     when <dir> is too long the admin sockets are just disabled.
set -euo pipefail

# Fixed S3 credentials of the test user.
readonly S3_UID="wharf"
readonly ACCESS_KEY="WHARFTESTACCESSKEY00"
readonly SECRET_KEY="wharf-test-secret-key-0000000000000000000"

# Deadlines (seconds) for the steps that wait on a condition.
readonly MON_DEADLINE=30
readonly OSD_DEADLINE=60
readonly RGW_DEADLINE=60
readonly STOP_DEADLINE=20

PROG=$(basename "$0")

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

log() { echo "$PROG: $*" >&2; }

# die MESSAGE [LOGFILE...]: report, show the end of the logs, stop what was started.
die() {
  local msg=$1; shift
  log "error: $msg"
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      echo "---- last lines of $f ----" >&2
      tail -n 40 "$f" >&2 || true
      echo "----" >&2
    fi
  done
  case ${CLEANUP_ON_FAILURE:-} in
    all) stop_all || true ;;
    rgw) stop_daemons KILL rgw || true ;;
  esac
  exit 1
}

now() { date +%s; }

# pick_free_port: a TCP port on 127.0.0.1 that was free a moment ago.
pick_free_port() {
  local py=/usr/bin/python3   # the system one starts faster than a pyenv shim
  [[ -x $py ]] || py=$(command -v python3) \
    || die "python3 is needed to pick a free port (or pass mon_port)"
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# set_paths DIR: absolute paths of everything in the cluster directory (which must exist).
set_paths() {
  [[ -d $1 ]] || die "no such directory: $1"
  DIR=$(cd "$1" && pwd)
  CONF=$DIR/ceph.conf
  RUN=$DIR/run
  LOGDIR=$DIR/log
  export CEPH_CONF=$CONF
}

# ceph CLI against this cluster, never waiting forever.
cephcli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }

# running PID: the process exists and is not a zombie. Daemons outlive this script and
# are reaped by init, which may take a while: a zombie has already released everything.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }          # the fields after "pid (comm) "; the first one is the state
  [[ ${stat:0:1} != [ZX] ]]
}

# pid_alive PIDFILE: the daemon recorded in PIDFILE is running.
pid_alive() {
  [[ -s $1 ]] && running "$(cat "$1")"
}

# launch NAME LOGFILE CMD...: start a daemon in the foreground mode of ceph (-f) but in the
# background of this script, detached (own session, no inherited stdin/stdout/stderr, so
# a caller reading our output is not held open), and record its pid in $RUN/NAME.pid.
launch() {
  local name=$1 out=$2; shift 2
  setsid "$@" </dev/null >>"$out" 2>&1 &
  echo $! >"$RUN/$name.pid"
  disown $!   # no "Killed" job report from bash if it has to be stopped again
}

# stop_daemons SIGNAL NAME...: send SIGNAL to the daemons, SIGKILL those still running at
# the deadline, wait until all are gone, remove their pid files.
stop_daemons() {
  local sig=$1; shift
  local name pid pids=() deadline
  for name in "$@"; do
    if pid_alive "$RUN/$name.pid"; then
      pid=$(cat "$RUN/$name.pid")
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  deadline=$(( $(now) + STOP_DEADLINE ))
  for pid in "${pids[@]}"; do
    while running "$pid"; do
      if (( $(now) >= deadline )); then
        log "pid $pid did not stop within ${STOP_DEADLINE}s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$(( $(now) + 5 ))
        while running "$pid" && (( $(now) < deadline )); do sleep 0.05; done
        break
      fi
      sleep 0.05
    done
  done
  for name in "$@"; do rm -f "$RUN/$name.pid"; done
}

# stop_all: the whole cluster is thrown away (start always begins afresh), so there is
# nothing to shut down cleanly: SIGKILL is instant, where a SIGTERMed memstore OSD first
# writes all its objects to disk.
stop_all() {
  stop_daemons KILL rgw osd mon
}

write_conf() {
  local fsid=$1 mon_port=$2 rgw_port=$3 asok
  asok="$RUN/\$cluster-\$name.asok"
  # sockaddr_un.sun_path is 108 bytes; "ceph-client.rgw.wharf.<pid>.<cct>.asok" adds ~45.
  if (( ${#RUN} > 60 )); then asok=""; fi
  cat >"$CONF" <<EOF
# Generated by $PROG: a single-node test cluster living in $DIR.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false

# No authentication: loopback only, no keyrings to manage.
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = $DIR/keyring

# Everything under the cluster directory.
run dir = $RUN
admin socket = $asok
pid file = $RUN/\$name.pid.ceph
log file = $LOGDIR/\$name.log
mon cluster log file = $LOGDIR/cluster.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = true

# One OSD, one replica, few placement groups, no warnings about it.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false

# Small and quick; a port that cannot be bound fails within seconds, not 15 s.
ms async op threads = 2
ms bind retry delay = 1

[mon]
# Commit map changes at once instead of batching them for 1 s: every pool that
# radosgw-admin/radosgw create costs two osdmap changes.
paxos propose interval = 0.01
paxos min wait = 0.01
mon data = $DIR/mon/\$cluster-\$id
# Do not shut down / warn when the disk holding <dir> is nearly full.
mon data avail crit = 1
mon data avail warn = 2

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-2147483648}
osd op num shards = 2
osd op num threads per shard = 1

[client]
# radosgw asks for "secure" mode towards the mons by default, which auth none lacks.
ms mon client mode = crc
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw thread pool size = 32
rgw enable gc threads = false
rgw enable lc threads = false
rgw enable quota threads = false
rgw dynamic resharding = false
rgw enable usage log = false
rgw enable ops log = false
rgw num control oids = 1
rgw init timeout = $RGW_DEADLINE
EOF
}

# logs_of NAME: the log files worth showing when daemon NAME fails.
logs_of() {
  case $1 in
    mon) echo "$LOGDIR/mon.out $LOGDIR/mon.a.log" ;;
    osd) echo "$LOGDIR/osd.out $LOGDIR/osd.0.log" ;;
    rgw) echo "$LOGDIR/rgw.out $LOGDIR/client.rgw.wharf.log" ;;
  esac
}

# wait_until NAME SECONDS WHAT COMMAND...: poll COMMAND until it succeeds; fail when the
# daemon NAME exits or SECONDS pass first.
wait_until() {
  local name=$1 secs=$2 what=$3; shift 3
  local deadline=$(( $(now) + secs ))
  # shellcheck disable=SC2046  # logs_of gives several paths without spaces
  until "$@"; do
    pid_alive "$RUN/$name.pid" || die "$name exited while waiting for $what" $(logs_of "$name")
    (( $(now) < deadline )) || die "timed out after ${secs}s waiting for $what" $(logs_of "$name")
    sleep 0.1
  done
}

# mon_ready FSID: our monitor answers (and not that of another cluster on the same port).
# Short timeouts: a monitor that failed to start is noticed between two polls.
mon_ready() {
  [[ $(timeout 10 ceph -c "$CONF" --connect-timeout 3 fsid 2>/dev/null) == "$1" ]]
}

osd_up_and_in() {
  local stat
  stat=$(cephcli osd stat -f json 2>/dev/null) || return 1
  [[ $stat == *'"num_up_osds":1'* && $stat == *'"num_in_osds":1'* ]]
}

rgw_answers() {
  local port=$1 body
  body=$(curl -s --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) || return 1
  [[ $body == *ListAllMyBucketsResult* ]]
}

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# rgw_frontend_failed: radosgw could not listen (it logs that but keeps running).
rgw_frontend_failed() {
  grep -qE 'failed to bind address|failed initializing frontend' "$LOGDIR/client.rgw.wharf.log" 2>/dev/null
}

rgw_ready() { ! rgw_frontend_failed && rgw_answers "$1"; }

start_rgw() {
  local port=$1
  if pid_alive "$RUN/rgw.pid"; then die "radosgw is already running (pid $(cat "$RUN/rgw.pid"))"; fi
  # Another server on the port would answer in place of ours: refuse at once.
  if port_in_use "$port"; then die "127.0.0.1:$port is already in use"; fi
  # The port goes into ceph.conf so that start-rgw can use another one.
  sed -i "s|^rgw frontends = .*|rgw frontends = beast endpoint=127.0.0.1:$port|" "$CONF"
  : >"$LOGDIR/client.rgw.wharf.log"   # fresh log: rgw_frontend_failed reads it
  launch rgw "$LOGDIR/rgw.out" radosgw -f -c "$CONF" -n client.rgw.wharf
  wait_until rgw "$RGW_DEADLINE" "radosgw to answer on 127.0.0.1:$port" rgw_ready "$port"
  if rgw_frontend_failed; then
    # shellcheck disable=SC2046
    die "radosgw could not listen on 127.0.0.1:$port" $(logs_of rgw)
  fi
  echo "$port" >"$DIR/rgw_port"   # the default port of start-rgw
}

cmd_start() {
  local dir=$1 rgw_port=$2 mon_port=${3:-}
  [[ $rgw_port =~ ^[0-9]+$ ]] || die "bad rgw port: $rgw_port"
  [[ -z $mon_port || $mon_port =~ ^[0-9]+$ ]] || die "bad mon port: $mon_port"
  [[ $dir != *[[:space:]]* ]] || die "the directory must not contain white space: $dir"
  mkdir -p "$dir"
  set_paths "$dir"
  if pid_alive "$RUN/mon.pid" || pid_alive "$RUN/osd.pid" || pid_alive "$RUN/rgw.pid"; then
    die "a cluster is already running in $DIR (run: $PROG stop $DIR)"
  fi
  if port_in_use "$rgw_port"; then die "127.0.0.1:$rgw_port is already in use"; fi
  local t0=$SECONDS
  # A fresh cluster every time: remove the state of an earlier run.
  rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/crash" "$RUN" "$LOGDIR" "$DIR/monmap" "$CONF"
  mkdir -p "$RUN" "$LOGDIR" "$DIR/mon" "$DIR/osd/ceph-0" "$DIR/rgw" "$DIR/crash"

  if [[ -z $mon_port ]]; then
    mon_port=$(pick_free_port)
    [[ $mon_port != "$rgw_port" ]] || mon_port=$(pick_free_port)
  fi
  # The ceph tools would happily talk to another cluster's monitor on that port.
  if port_in_use "$mon_port"; then die "127.0.0.1:$mon_port (mon) is already in use"; fi
  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid" "$mon_port" "$rgw_port"
  CLEANUP_ON_FAILURE=all

  # --- monitor -----------------------------------------------------------------------
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" \
    >"$LOGDIR/mkfs.out" 2>&1 || die "monmaptool failed" "$LOGDIR/mkfs.out"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$LOGDIR/mkfs.out" 2>&1 \
    || die "ceph-mon --mkfs failed" "$LOGDIR/mkfs.out" "$LOGDIR/mon.a.log"
  launch mon "$LOGDIR/mon.out" ceph-mon -f -c "$CONF" -i a
  wait_until mon "$MON_DEADLINE" "the monitor on 127.0.0.1:$mon_port" mon_ready "$fsid"

  # --- OSD ---------------------------------------------------------------------------
  local osd_uuid osd_id
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(cephcli osd new "$osd_uuid" 2>>"$LOGDIR/mkfs.out") \
    || die "ceph osd new failed" "$LOGDIR/mkfs.out" "$LOGDIR/mon.a.log"
  [[ $osd_id == 0 ]] || die "unexpected OSD id '$osd_id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$LOGDIR/mkfs.out" 2>&1 \
    || die "ceph-osd --mkfs failed" "$LOGDIR/mkfs.out" "$LOGDIR/osd.0.log"
  launch osd "$LOGDIR/osd.out" ceph-osd -f -c "$CONF" -i 0
  wait_until osd "$OSD_DEADLINE" "osd.0 to be up and in" osd_up_and_in

  # --- S3 user, then radosgw -------------------------------------------------------
  # radosgw-admin creates the default realm/zonegroup/zone and the .rgw.root and
  # default.rgw.* metadata pools on its first run.
  timeout "$RGW_DEADLINE" radosgw-admin -c "$CONF" user create --uid "$S3_UID" \
    --display-name "Wharf tests" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
    >"$LOGDIR/user.out" 2>&1 \
    || die "radosgw-admin user create failed" "$LOGDIR/user.out" "$LOGDIR/client.admin.log"
  start_rgw "$rgw_port"

  CLEANUP_ON_FAILURE=
  log "cluster in $DIR is up in $(( SECONDS - t0 ))s (mon 127.0.0.1:$mon_port, rgw 127.0.0.1:$rgw_port)"
  echo "endpoint=http://127.0.0.1:$rgw_port access_key=$ACCESS_KEY secret_key=$SECRET_KEY"
}

cmd_stop() {
  [[ -d $1 ]] || return 0   # nothing was ever started there
  set_paths "$1"
  stop_all
  rm -f "$RUN"/*.asok "$RUN"/*.pid.ceph
}

# stop-rgw uses SIGTERM: radosgw then drops its watches on the control objects. After a
# SIGKILL the OSD keeps the dead watchers for osd_client_watch_timeout (30 s), and every
# metadata change of the next radosgw (e.g. creating a bucket) hangs until then.
cmd_stop_rgw() {
  set_paths "$1"
  stop_daemons TERM rgw
}

cmd_start_rgw() {
  set_paths "$1"
  [[ -f $CONF ]] || die "no cluster in $DIR"
  pid_alive "$RUN/osd.pid" || die "the cluster in $DIR is not running"
  local port=${2:-$(cat "$DIR/rgw_port")}
  CLEANUP_ON_FAILURE=rgw
  start_rgw "$port"
  CLEANUP_ON_FAILURE=
}

# s3 METHOD URL [FILE] [curl options...]: one SigV4-signed request with curl. radosgw
# needs the x-amz-content-sha256 header (curl does not send it by itself), and checks it.
s3() {
  local method=$1 url=$2 file=$3; shift 3
  local hash data=()
  if [[ -n $file ]]; then
    hash=$(sha256sum "$file" | cut -d' ' -f1)
    data=(--data-binary "@$file")
  else
    hash=$(printf '' | sha256sum | cut -d' ' -f1)
  fi
  curl -sS --fail-with-body --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: $hash" \
    -X "$method" "${data[@]}" "$@" "$url"
}

# smoke DIR [PORT]: bucket create, object PUT, GET (compare), list, DELETE, bucket DELETE.
cmd_smoke() {
  set_paths "$1"
  local port=${2:-$(cat "$DIR/rgw_port")}
  local url=http://127.0.0.1:$port bucket=smoke-$RANDOM$RANDOM tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: $tmp is local
  trap "rm -rf '$tmp'" RETURN
  head -c 1000000 /dev/urandom >"$tmp/object"
  s3 PUT "$url/$bucket" "" >/dev/null || die "smoke: create bucket $bucket failed"
  s3 PUT "$url/$bucket/dir/object.bin" "$tmp/object" >/dev/null || die "smoke: put object failed"
  s3 GET "$url/$bucket/dir/object.bin" "" -o "$tmp/back" || die "smoke: get object failed"
  cmp -s "$tmp/object" "$tmp/back" || die "smoke: object read back differs"
  local listing
  listing=$(s3 GET "$url/$bucket?list-type=2" "") || die "smoke: list objects failed"
  [[ $listing == *'<Key>dir/object.bin</Key>'* ]] || die "smoke: object missing from the listing"
  s3 DELETE "$url/$bucket/dir/object.bin" "" >/dev/null || die "smoke: delete object failed"
  s3 DELETE "$url/$bucket" "" >/dev/null || die "smoke: delete bucket failed"
  log "smoke test passed on $url (bucket $bucket: create, put 1 MB, get, list, delete)"
}

main() {
  local cmd=${1:-}
  case $cmd in
    start)     [[ $# -eq 3 || $# -eq 4 ]] || usage; cmd_start "$2" "$3" "${4:-}" ;;
    stop)      [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    stop-rgw)  [[ $# -eq 2 ]] || usage; cmd_stop_rgw "$2" ;;
    start-rgw) [[ $# -eq 2 || $# -eq 3 ]] || usage; cmd_start_rgw "$2" "${3:-}" ;;
    smoke)     [[ $# -eq 2 || $# -eq 3 ]] || usage; cmd_smoke "$2" "${3:-}" ;;
    *) usage ;;
  esac
}

main "$@"

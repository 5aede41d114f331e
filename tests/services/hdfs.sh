#!/usr/bin/env bash
# Throwaway Apache Hadoop 2.7.3 HDFS (one NameNode and one DataNode, or more) for tests, all on 127.0.0.1.
# No Docker, no Maven: the Hadoop jars come from the PyPI sdist of pyspark 2.4.8 (its deps/jars
# folder), cached under .cache/hadoop-jars; WebHDFS needs Jersey 1 from Debian.
# Usage: hdfs.sh start|stop|restart|status
#   start    fresh (formatted) file system
#   restart  stop then start on the SAME data (for the "NameNode restart mid-stream" tests)
#   stop-datanode [I] / start-datanode [I]   DataNode I alone (default 1)
# LAB_TEST_HDFS_DATANODES=N runs N DataNodes (default 1; DataNode I > 1 on the first one's ports +
# 100 * (I - 1), its data in data-I), LAB_TEST_HDFS_REPLICATION the default replication (1), and
# LAB_TEST_HDFS_RECHECK_MS the NameNode's heartbeat recheck interval (Hadoop's 300000): a stopped
# DataNode is declared dead after 2 * recheck + 10 * heartbeat (1 s), and only then are its blocks
# copied again to the others.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HADOOP_VERSION=2.7.3
PYSPARK_JARS_VERSION=2.4.8
JAR_CACHE=${LAB_HADOOP_JAR_CACHE:-$LAB_REPO_ROOT/.cache/hadoop-jars}
H_DIR=$LAB_SERVICES_DIR/hdfs
NN_PID=$LAB_SERVICES_DIR/hdfs-namenode.pid
DN_PID=$LAB_SERVICES_DIR/hdfs-datanode.pid
DATANODES=${LAB_TEST_HDFS_DATANODES:-1}
REPLICATION=${LAB_TEST_HDFS_REPLICATION:-1}
RECHECK_MS=${LAB_TEST_HDFS_RECHECK_MS:-300000}

# DataNode I's pid file, and its port offset from the first one's.
dn_pid() { if [ "$1" = 1 ]; then echo "$DN_PID"; else echo "$LAB_SERVICES_DIR/hdfs-datanode-$1.pid"; fi; }
dn_offset() { echo $((100 * ($1 - 1))); }

# The jars HDFS needs from pyspark-2.4.8/deps/jars. Jersey 2 (also in that folder) must stay off
# the classpath: with it every WebHDFS call answers 500. httpclient: WebHDFS auth filter.
# jaxb-api + activation: Java 11+ no longer ships javax.xml.bind, which Jersey 1 needs.
HADOOP_JARS=(
  hadoop-common-$HADOOP_VERSION hadoop-hdfs-$HADOOP_VERSION hadoop-auth-$HADOOP_VERSION
  hadoop-annotations-$HADOOP_VERSION guava-14.0.1 protobuf-java-2.5.0 htrace-core-3.1.0-incubating
  commons-cli-1.2 commons-codec-1.10 commons-io-2.4 commons-lang-2.6 commons-logging-1.1.3
  commons-collections-3.2.2 commons-configuration-1.6 commons-math3-3.4.1 commons-net-3.1
  commons-httpclient-3.1 commons-compress-1.20 httpclient-4.5.6 httpcore-4.4.10
  log4j-1.2.17 slf4j-api-1.7.16 slf4j-log4j12-1.7.16 jetty-6.1.26 jetty-util-6.1.26
  javax.servlet-api-3.1.0 jackson-core-asl-1.9.13 jackson-mapper-asl-1.9.13 xmlenc-0.52
  xercesImpl-2.9.1 jsr305-1.3.9 netty-3.9.9.Final netty-all-4.1.47.Final jaxb-api-2.2.2 activation-1.1.1
)
JERSEY1_PKGS=(libjersey1-core-java libjersey1-server-java libjersey1-servlet-java libjsr311-api-java)
JERSEY1_JARS=(/usr/share/java/jersey1-core.jar /usr/share/java/jersey1-server.jar
  /usr/share/java/jersey1-servlet.jar /usr/share/java/jsr311-api.jar)

ensure_jars() {
  local j missing=0
  for j in "${HADOOP_JARS[@]}"; do [ -f "$JAR_CACHE/$j.jar" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    log "fetching Hadoop $HADOOP_VERSION jars from the pyspark==$PYSPARK_JARS_VERSION sdist (~220 MB, once) into $JAR_CACHE"
    mkdir -p "$JAR_CACHE"
    local tmp; tmp=$(mktemp -d "$JAR_CACHE/.fetch.XXXXXX")
    # pyspark 2.4.8's setup.py breaks under pip's build isolation (newest pypandoc lacks
    # pypandoc.convert): use a scratch venv with old setuptools + wheel, no isolation.
    python3 -m venv "$tmp/venv" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$tmp/venv/bin/pip" install -q --disable-pip-version-check 'setuptools<70' wheel >&2
    "$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-build-isolation \
      "pyspark==$PYSPARK_JARS_VERSION" -d "$tmp/dl" >&2 || die "pip download pyspark==$PYSPARK_JARS_VERSION failed"
    local members=()
    for j in "${HADOOP_JARS[@]}"; do members+=("pyspark-$PYSPARK_JARS_VERSION/deps/jars/$j.jar"); done
    tar -xzf "$tmp/dl/pyspark-$PYSPARK_JARS_VERSION.tar.gz" -C "$tmp" "${members[@]}"
    mv -f "$tmp/pyspark-$PYSPARK_JARS_VERSION/deps/jars/"*.jar "$JAR_CACHE/"
    rm -rf "$tmp"
  fi
  missing=0
  for j in "${JERSEY1_JARS[@]}"; do [ -f "$j" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "Jersey 1 jars missing; run: sudo apt-get install -y ${JERSEY1_PKGS[*]}"
    log "installing ${JERSEY1_PKGS[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${JERSEY1_PKGS[@]}" >/dev/null \
      || die "apt-get install ${JERSEY1_PKGS[*]} failed"
  fi
  command -v java >/dev/null || die "java not found (HDFS needs Java 11+; on Debian: apt-get install openjdk-17-jre-headless)"
}

write_conf() {
  local conf=$H_DIR/conf
  mkdir -p "$conf" "$H_DIR/logs" "$H_DIR/tmp"
  cat >"$conf/core-site.xml" <<EOF
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT</value></property>
  <property><name>hadoop.tmp.dir</name><value>$H_DIR/tmp</value></property>
</configuration>
EOF
  # datanode.hostname=127.0.0.1: WebHDFS redirects and block locations name 127.0.0.1, not the
  # machine's host name, so clients on loopback can follow them.
  cat >"$conf/hdfs-site.xml" <<EOF
<?xml version="1.0"?>
<configuration>
  <property><name>dfs.namenode.rpc-address</name><value>127.0.0.1:$LAB_TEST_HDFS_PORT</value></property>
  <property><name>dfs.namenode.http-address</name><value>127.0.0.1:$LAB_TEST_HDFS_HTTP_PORT</value></property>
  <property><name>dfs.datanode.address</name><value>127.0.0.1:$LAB_TEST_HDFS_DN_PORT</value></property>
  <property><name>dfs.datanode.http.address</name><value>127.0.0.1:$LAB_TEST_HDFS_DN_HTTP_PORT</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>127.0.0.1:$LAB_TEST_HDFS_DN_IPC_PORT</value></property>
  <property><name>dfs.datanode.hostname</name><value>127.0.0.1</value></property>
  <property><name>dfs.namenode.datanode.registration.ip-hostname-check</name><value>false</value></property>
  <property><name>dfs.namenode.name.dir</name><value>file://$H_DIR/name</value></property>
  <property><name>dfs.datanode.data.dir</name><value>file://$H_DIR/data</value></property>
  <property><name>dfs.replication</name><value>$REPLICATION</value></property>
  <property><name>dfs.namenode.heartbeat.recheck-interval</name><value>$RECHECK_MS</value></property>
  <property><name>dfs.permissions.enabled</name><value>false</value></property>
  <property><name>dfs.namenode.safemode.extension</name><value>0</value></property>
  <property><name>dfs.webhdfs.enabled</name><value>true</value></property>
  <property><name>dfs.heartbeat.interval</name><value>1</value></property>
</configuration>
EOF
  cat >"$conf/log4j.properties" <<'EOF'
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
EOF
  # The HTTP servers look up webapps/<name> on the classpath; the jars ship none.
  local app
  for app in hdfs datanode; do
    mkdir -p "$conf/webapps/$app/WEB-INF"
    echo '<?xml version="1.0" encoding="UTF-8"?><web-app xmlns="http://java.sun.com/xml/ns/javaee" version="2.5"></web-app>' \
      >"$conf/webapps/$app/WEB-INF/web.xml"
  done
}

classpath() {
  local cp=$H_DIR/conf j
  for j in "${HADOOP_JARS[@]}"; do cp+=":$JAR_CACHE/$j.jar"; done
  for j in "${JERSEY1_JARS[@]}"; do cp+=":$j"; done
  printf '%s' "$cp"
}

java_opts() { echo "-Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true -Dhadoop.log.dir=$H_DIR/logs"; }

start_daemon() {   # start_daemon PIDFILE CLASS [ARGS...]
  local f=$1 class=$2; shift 2
  # shellcheck disable=SC2046
  start_bg "$f" java $(java_opts) -cp "$(classpath)" "$class" "$@"
}

jmx_state() {
  curl -sf --max-time 2 "http://127.0.0.1:$LAB_TEST_HDFS_HTTP_PORT/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState" 2>/dev/null || true
}

# Ready: one live DataNode, out of safe mode, capacity to write to.
wait_ready() {
  local i s
  for i in $(seq 600); do
    s=$(jmx_state)
    if grep -q "\"NumLiveDataNodes\" : $DATANODES[^0-9]" <<<"$s" && grep -q '"FSState" : "Operational"' <<<"$s" \
      && ! grep -q '"CapacityRemaining" : 0,' <<<"$s" \
      && curl -sf --max-time 2 "http://127.0.0.1:$LAB_TEST_HDFS_HTTP_PORT/webhdfs/v1/?op=GETFILESTATUS" >/dev/null; then
      return 0
    fi
    for f in "$NN_PID" $(for i in $(seq "$DATANODES"); do dn_pid "$i"; done); do
      if [ -f "$f" ] && ! group_alive "$(cat "$f")"; then
        log_tail "${f%.pid}.log"; die "hdfs: $(basename "${f%.pid}") exited during start"
      fi
    done
    sleep 0.2
  done
  log_tail "${NN_PID%.pid}.log"; log_tail "${DN_PID%.pid}.log"
  die "hdfs: not ready within 120 s"
}

stop_namenode() { stop_bg "$NN_PID" 15 java; }
stop_datanode() { stop_bg "$(dn_pid "${1:-1}")" 15 java; }
# Every DataNode a pid file names (also ones of an earlier run with more of them).
stop_datanodes() {
  local f
  for f in "$DN_PID" "$LAB_SERVICES_DIR"/hdfs-datanode-*.pid; do [ -f "$f" ] && stop_bg "$f" 15 java; done
  return 0
}
do_stop() { stop_datanodes; stop_namenode; }

# start_datanode [I]: the first DataNode takes hdfs-site.xml as written; the others the same with
# their own ports and data directory, as generic options (DataNode's main parses -D).
start_datanode() {
  local i=${1:-1} o
  o=$(dn_offset "$i")
  require_port_free $((LAB_TEST_HDFS_DN_PORT + o)) "hdfs-datanode-$i"
  if [ "$i" = 1 ]; then
    start_daemon "$DN_PID" org.apache.hadoop.hdfs.server.datanode.DataNode
  else
    start_daemon "$(dn_pid "$i")" org.apache.hadoop.hdfs.server.datanode.DataNode \
      -Ddfs.datanode.address=127.0.0.1:$((LAB_TEST_HDFS_DN_PORT + o)) \
      -Ddfs.datanode.http.address=127.0.0.1:$((LAB_TEST_HDFS_DN_HTTP_PORT + o)) \
      -Ddfs.datanode.ipc.address=127.0.0.1:$((LAB_TEST_HDFS_DN_IPC_PORT + o)) \
      -Ddfs.datanode.data.dir="file://$H_DIR/data-$i"
  fi
}

# start_daemons: both daemons on whatever is in $H_DIR (formatted or not yet).
start_daemons() {
  ensure_jars
  write_conf
  local p i o
  for p in "$LAB_TEST_HDFS_PORT" "$LAB_TEST_HDFS_HTTP_PORT"; do require_port_free "$p" hdfs; done
  for i in $(seq "$DATANODES"); do
    o=$(dn_offset "$i")
    for p in "$LAB_TEST_HDFS_DN_PORT" "$LAB_TEST_HDFS_DN_HTTP_PORT" "$LAB_TEST_HDFS_DN_IPC_PORT"; do
      require_port_free $((p + o)) "hdfs-datanode-$i"
    done
  done
  if [ ! -f "$H_DIR/name/current/VERSION" ]; then
    rm -rf "$H_DIR"/data "$H_DIR"/data-*
    # shellcheck disable=SC2046
    java $(java_opts) -cp "$(classpath)" org.apache.hadoop.hdfs.server.namenode.NameNode -format -force -nonInteractive \
      >"$H_DIR/logs/format.log" 2>&1 || { log_tail "$H_DIR/logs/format.log"; die "hdfs: namenode -format failed"; }
  fi
  trap do_stop EXIT
  start_daemon "$NN_PID" org.apache.hadoop.hdfs.server.namenode.NameNode
  for i in $(seq "$DATANODES"); do start_datanode "$i"; done
  wait_ready
  trap - EXIT
  log "hdfs on hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT (http :$LAB_TEST_HDFS_HTTP_PORT, namenode pid $(cat "$NN_PID"), $DATANODES datanode(s), replication $REPLICATION)"
}

do_start() {
  do_stop
  rm -rf "$H_DIR"
  start_daemons
}

do_restart() {
  do_stop
  start_daemons
}

do_status() {
  local s; s=$(jmx_state)
  if [ -n "$s" ] && grep -q '"FSState" : "Operational"' <<<"$s"; then
    echo "hdfs: running on hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT ($(grep -o '"NumLiveDataNodes" : [0-9]*' <<<"$s"))"
  else
    echo "hdfs: stopped"; return 3
  fi
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_restart ;;
  stop-datanode) stop_datanode "${2:-1}" ;;
  start-datanode) start_datanode "${2:-1}"; wait_ready ;;
  status) do_status ;;
  # The real `hdfs dfsadmin` against this NameNode, e.g. `dfsadmin -report -live`.
  dfsadmin) shift
    # shellcheck disable=SC2046
    java $(java_opts) -cp "$(classpath)" org.apache.hadoop.hdfs.tools.DFSAdmin \
      -fs "hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT" "$@" 2>/dev/null ;;
  *) echo "usage: $0 start|stop|restart|stop-datanode [I]|start-datanode [I]|status|dfsadmin ARGS..." >&2; exit 2 ;;
esac

#!/bin/sh
# A pod built by hand from namespaces, what the runtime does for every pod:
#  1. a "pause" process holds new net, ipc and uts namespaces (the sandbox);
#  2. two "containers" join those three with nsenter, each in its own new pid and mount namespaces.
# Then we print the namespace inodes: net/ipc/uts equal, pid/mnt different — compare with
# `kubelite inspect pod <any pod>`. Needs root; everything it starts is killed at the end.
set -e
unshare --net --ipc --uts sh -c 'hostname hand-made-pod; exec sleep 300' &
pause=$!
sleep 0.5
nsenter -t $pause --net --ipc --uts unshare --pid --mount --fork --mount-proc sleep 301 &
c1=$!
nsenter -t $pause --net --ipc --uts unshare --pid --mount --fork --mount-proc sleep 302 &
c2=$!
sleep 0.5
child() { cat /proc/"$1"/task/"$1"/children 2>/dev/null | awk '{print $1}'; }
# unshare --fork's child is the process inside the new pid namespace; nsenter execs unshare in place
p1=$(child $c1); p2=$(child $c2)
for ns in net ipc uts pid mnt; do
  printf '%-4s sandbox=%s c1=%s c2=%s\n' $ns "$(readlink /proc/$pause/ns/$ns)" \
    "$(readlink /proc/$p1/ns/$ns)" "$(readlink /proc/$p2/ns/$ns)"
done
printf 'hostname in c1: %s\n' "$(nsenter -t $p1 --uts hostname)"
# a PID namespace's init ignores SIGTERM from outside: SIGKILL
kill -9 $p1 $p2 $c1 $c2 $pause 2>/dev/null || true
wait 2>/dev/null || true

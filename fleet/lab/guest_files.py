"""The text files of the guest's root: /init, sshd_config, passwd and friends. Constants only."""

from __future__ import annotations

# /init runs as PID 1 under dash. It never stops on an error: it says what failed on the
# serial console and carries on, so that the console log explains a guest that never answers.
INIT = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin
umask 022
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=755,nosuid,nodev run /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp
mkdir -p /run/sshd && chmod 755 /run/sshd

fail() { echo "fleet-lab: FAILED: $*"; }

kver=$(uname -r)
while read -r module; do
    insmod "/lib/modules/$kver/$module" || fail "insmod $module"
done < /etc/lab/modules.load

lab_ip=
lab_name=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        lab.ip=*) lab_ip=${arg#lab.ip=} ;;
        lab.name=*) lab_name=${arg#lab.name=} ;;
    esac
done
[ -n "$lab_name" ] && hostname "$lab_name"
ip link set lo up || fail "ip link set lo up"
if [ -n "$lab_ip" ]; then
    ip addr add "$lab_ip" dev eth0 || fail "ip addr add $lab_ip dev eth0"
else
    fail "no lab.ip= on the kernel command line"
fi
ip link set eth0 up || fail "ip link set eth0 up"
/usr/sbin/sshd -E /run/sshd.log || fail "sshd did not start: $(cat /run/sshd.log)"
echo "fleet-lab: $lab_name ready ip=$lab_ip kernel=$kver"
# busybox init reaps orphans as PID 1 must; its inittab only handles power-off.
exec /usr/bin/busybox init
"""

INITTAB = """::ctrlaltdel:/usr/bin/busybox poweroff -f
::shutdown:/usr/bin/busybox true
"""

SSHD_CONFIG = """# fleet lab guest: key authentication only, root may log in with a key.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
PidFile /run/sshd.pid
MaxStartups 200:30:400
MaxSessions 50
Subsystem sftp internal-sftp
"""

PASSWD = """root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""

GROUP = """root:x:0:
tty:x:5:
nogroup:x:65534:
"""

SHADOW = """root:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
"""

NSSWITCH = """passwd: files
group: files
shadow: files
hosts: files
"""

PROFILE = """export PATH=/usr/sbin:/usr/bin
"""

# fping looks its protocol up by name (getprotobyname("ipv6-icmp")) and exits 4 without it.
PROTOCOLS = """ip 0 IP
icmp 1 ICMP
tcp 6 TCP
udp 17 UDP
ipv6 41 IPv6
ipv6-icmp 58 IPv6-ICMP
"""


def hosts_file(entries: list[tuple[str, str]]) -> str:
    """/etc/hosts for a guest: localhost and every guest of the lab (name, ipv4)."""
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{address} {name}" for name, address in entries]
    return "\n".join(lines) + "\n"

"""A stand-in Linux host for the tunnel's and the mesh's shell scripts, run by a real /bin/sh.

`StandInHost(root)` lays out, under `root`:

    bin/            stand-in commands, put first on the scripts' PATH:
                    ip     keeps sit1's state in files (below) and in proc/net/if_inet6, logs every
                           call to `calls`, fails
                           the calls that contain a line of `fail` and sleeps 30 s in those that
                           contain the text of `hang`
                    sudo   runs `sudo -n CMD...` as CMD (the login user is root already), or
                           refuses as sudo does when it wants a password (`refuse_sudo()`);
                           logs each call's first line to `sudo-calls`
                    id     says uid `uid` (1000 unless `write_uid` says otherwise), so that
                           fleet's `as_root` goes through sudo
                    uname  says kernel FAKE_KERNEL, which has no /lib/modules entry
                    fping  prints what `fping -q -C N` prints for the addresses it is given: every
                           reply for a peer, none for one listed in `unreachable`, all but one for
                           one listed in `lossy`
    sys/class/net/  sysfs: sit1/ifindex while sit1 exists
    sys/module/sit  the sit module is loaded (`sit=False`: the kernel lacks it)
    proc/net/if_inet6, proc/sys/net/ipv6/conf/{all,default}/disable_ipv6
                    IPv6 on, as the kernel shows it (if_inet6: sit1's addresses)

and the state files of sit1 (`mtu`, `up`, `alias`, `addrs`, `local`, `remote`, `isatap`, `kind`).
The scripts read /sys and /proc literally: `paths` maps those paths to this tree, and
`rewrite_paths` (also used by the in-process SSH server) applies it to a script.
"""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv6Interface
from pathlib import Path

from sshserver import rewrite_paths

from fleet.tunnel.iproute import TunnelState

FAKE_KERNEL = "6.1.0-standin"

LINK_JSON = ('[{"ifindex":IDX,"ifname":"sit1","flags":FLAGS,"mtu":MTU,"ifalias":"ALIAS",'
             '"linkinfo":{"info_kind":"KIND","info_data":{"proto":"ip6ip","remote":"REMOTE",'
             '"local":"LOCAL"ISATAP}}}]')

IP_STAND_IN = r"""#!/bin/sh
r=ROOT
echo "$*" >> $r/calls
while read -r pattern; do
  case "$*" in *"$pattern"*) [ -n "$pattern" ] && { echo "RTNETLINK answers: refused" >&2; exit 2; };; esac
done < $r/fail
[ -s $r/hang ] && case "$*" in *"$(cat $r/hang)"*) sleep 30;; esac
case "$*" in
  "tunnel add sit1 mode isatap local "*)
                 mkdir -p $r/sys/class/net/sit1; echo 9 > $r/sys/class/net/sit1/ifindex
                 echo 1480 > $r/mtu; echo 0 > $r/up; : > $r/alias; : > $r/addrs; echo sit > $r/kind
                 echo "$7" > $r/local; echo any > $r/remote; echo true > $r/isatap;;
  "link del sit1") rm -rf $r/sys/class/net/sit1; : > $r/proc/net/if_inet6;;
  "link set dev sit1 alias "*) echo -n "$6" > $r/alias;;
  "link set dev sit1 mtu "*) echo "$6" > $r/mtu;;
  "link set dev sit1 up") echo 1 > $r/up;;
  "link set dev sit1 down") echo 0 > $r/up;;
  "addr replace "*|"addr add "*) grep -qx "$3" $r/addrs || echo "$3" >> $r/addrs
                                 PYTHON -c 'INET6' $r < $r/addrs > $r/proc/net/if_inet6;;
  "addr del "*) grep -vx "$3" $r/addrs > $r/addrs.new; mv $r/addrs.new $r/addrs
                PYTHON -c 'INET6' $r < $r/addrs > $r/proc/net/if_inet6;;
  "-j -d link show dev sit1")
    [ -d $r/sys/class/net/sit1 ] || { echo 'Device "sit1" does not exist.' >&2; exit 1; }
    flags='["NOARP"]'; [ "$(cat $r/up)" = 1 ] && flags='["NOARP","UP"]'
    isatap=; [ "$(cat $r/isatap)" = true ] && isatap=',"isatap":true'
    echo 'LINKJSON' | sed -e "s/IDX/$(cat $r/sys/class/net/sit1/ifindex)/" -e "s/FLAGS/$flags/" \
      -e "s/MTU/$(cat $r/mtu)/" -e "s/ALIAS/$(cat $r/alias)/" -e "s/KIND/$(cat $r/kind)/" \
      -e "s/REMOTE/$(cat $r/remote)/" -e "s/LOCAL/$(cat $r/local)/" -e "s/ISATAP/$isatap/";;
  "-j addr show dev sit1")
    printf '[{"ifname":"sit1","addr_info":['; sep=
    while read -r a; do
      printf '%s{"family":"inet6","local":"%s","prefixlen":%s}' "$sep" "${a%/*}" "${a#*/}"; sep=,
    done < $r/addrs
    echo ']}]';;
esac
exit 0
"""

# /proc/net/if_inet6 from the addresses on stdin (the ip stand-in keeps it as the kernel would)
INET6_PROGRAM = ('import ipaddress, sys; '
                 'index = int(open(sys.argv[1] + "/sys/class/net/sit1/ifindex").read()); '
                 '[print(ipaddress.IPv6Interface(a).ip.exploded.replace(":", ""), format(index, "02x"), '
                 'format(ipaddress.IPv6Interface(a).network.prefixlen, "02x"), "00 80     sit1") '
                 'for a in sys.stdin.read().split()]')

SUDO_STAND_IN = r"""#!/bin/sh
nl='
'
all="$*"; echo "${all%%"$nl"*}" >> ROOT/sudo-calls
if [ -s ROOT/refuse-sudo ]; then echo "sudo: a password is required" >&2; exit 1; fi
[ "$1" = -n ] && shift
exec "$@"
"""

ID_STAND_IN = r"""#!/bin/sh
case "$1" in -u) cat ROOT/uid;; *) echo "uid=$(cat ROOT/uid)(tester) gid=$(cat ROOT/uid)(tester)";; esac
"""

UNAME_STAND_IN = f"""#!/bin/sh
case "$1" in -r) echo {FAKE_KERNEL};; *) echo Linux;; esac
"""

# fping -C N -q: one line per target on stderr, the name padded to the longest, one field per
# ping (the round-trip time in ms, or - without a reply); exit 1 when some target never replied
FPING_STAND_IN = r"""#!/bin/sh
r=ROOT
count=1
opts=
while [ $# -gt 0 ]; do
  case "$1" in
    -C) count=$2; opts="$opts $1 $2"; shift 2;;
    -p|-i|-t|-c|-B|-r|-b|-O|-I|-S) opts="$opts $1 $2"; shift 2;;
    -*) opts="$opts $1"; shift;;
    *) break;;
  esac
done
echo "${opts# }" >> $r/fping-calls
width=0
for a in "$@"; do [ ${#a} -gt $width ] && width=${#a}; done
rc=0
for a in "$@"; do
  times=; n=0
  while [ $n -lt $count ]; do
    n=$((n + 1))
    if grep -qx "$a" $r/unreachable; then t=-
    elif [ $n = 1 ] && grep -qx "$a" $r/lossy; then t=-
    else t="0.0$((40 + n))"; fi
    times="$times $t"
  done
  grep -qx "$a" $r/unreachable && rc=1
  printf '%-*s :%s\n' "$width" "$a" "$times" >&2
done
exit $rc
"""


def proc_inet6_line(address: IPv6Interface, ifindex: int, name: str = "sit1") -> str:
    """A /proc/net/if_inet6 line as the kernel writes it."""
    return (f"{address.ip.exploded.replace(':', '')} {ifindex:02x} {address.network.prefixlen:02x} "
            f"00 80 {name:>8}\n")


class StandInHost:
    """The tree and stand-in commands described in the module's docstring, under `root`."""

    def __init__(self, root: Path, state: TunnelState | None = None, *, sit: bool = True,
                 fping: bool = True) -> None:
        self.root = root
        self.bin = root / "bin"
        self.net = root / "sys" / "class" / "net"
        self.log = root / "calls"
        self.fail = root / "fail"
        self.net.mkdir(parents=True)
        self.bin.mkdir()
        if sit:
            (root / "sys" / "module" / "sit").mkdir(parents=True)
        for conf in ("all", "default"):
            directory = root / "proc" / "sys" / "net" / "ipv6" / "conf" / conf
            directory.mkdir(parents=True)
            (directory / "disable_ipv6").write_text("0\n")
        (root / "proc" / "net").mkdir(parents=True)
        (root / "proc" / "net" / "if_inet6").write_text("")
        for name in ("fail", "unreachable", "lossy", "refuse-sudo"):
            (root / name).write_text("")
        self.write_uid(1000)
        ip = IP_STAND_IN.replace("LINKJSON", LINK_JSON).replace("PYTHON", sys.executable) \
            .replace("INET6", INET6_PROGRAM)
        commands = {"ip": ip, "sudo": SUDO_STAND_IN,
                    "id": ID_STAND_IN, "uname": UNAME_STAND_IN}
        if fping:
            commands["fping"] = FPING_STAND_IN
        for name, text in commands.items():
            (self.bin / name).write_text(text.replace("ROOT", str(root)))
            (self.bin / name).chmod(0o755)
        if state is not None and state.exists:
            self.write(state)

    @property
    def paths(self) -> dict[str, str]:
        """The literal paths the scripts read, mapped into this tree."""
        return {path: f"{self.root}{path}" for path in
                ("/sys/class/net", "/sys/module/sit", "/proc/net/if_inet6", "/proc/sys/net")}

    def write(self, state: TunnelState) -> None:
        """Make sit1 be `state` (which exists), /proc/net/if_inet6 included."""
        dev = self.net / "sit1"
        dev.mkdir(exist_ok=True)
        (dev / "ifindex").write_text(f"{state.ifindex}\n")
        files = {"mtu": str(state.mtu), "up": "1" if state.up else "0", "alias": state.alias or "",
                 "addrs": "".join(f"{a}\n" for a in state.addresses), "kind": state.kind or "sit",
                 "local": str(state.local or "any"), "remote": state.remote or "any",
                 "isatap": "true" if state.isatap else "false"}
        for name, text in files.items():
            (self.root / name).write_text(text)
        (self.root / "proc" / "net" / "if_inet6").write_text(
            "".join(proc_inet6_line(a, state.ifindex or 9) for a in state.addresses))

    def files(self) -> dict[str, str]:
        """sit1 as the stand-in keeps it, read straight from its files: {} when it is absent."""
        dev = self.net / "sit1"
        if not dev.exists():
            return {}
        names = ("mtu", "up", "alias", "addrs", "kind", "local", "remote", "isatap")
        return {"ifindex": (dev / "ifindex").read_text().strip(),
                **{name: (self.root / name).read_text().strip() for name in names}}

    def refuse_sudo(self) -> None:
        (self.root / "refuse-sudo").write_text("yes\n")

    def write_uid(self, uid: int) -> None:
        (self.root / "uid").write_text(f"{uid}\n")

    def set_peers(self, *, unreachable: tuple[str, ...] = (), lossy: tuple[str, ...] = ()) -> None:
        """Which peers (their ISATAP address texts) fping hears nothing from, or loses one ping of."""
        (self.root / "unreachable").write_text("".join(f"{a}\n" for a in unreachable))
        (self.root / "lossy").write_text("".join(f"{a}\n" for a in lossy))

    def rewrite(self, script: str) -> str:
        return rewrite_paths(script, self.paths)

    def run(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", self.rewrite(script)], capture_output=True, text=True,
                              env={"PATH": f"{self.bin}:/usr/bin:/bin"})

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def fping_calls(self) -> list[str]:
        """fping's options in each call, without the addresses."""
        path = self.root / "fping-calls"
        return path.read_text().splitlines() if path.exists() else []

    def changing_calls(self) -> list[str]:
        """The calls of `ip` that are not reads (`ip -j ...`)."""
        return [call for call in self.calls() if not call.startswith("-j ")]

    def privileged_calls(self) -> list[str]:
        """What sudo was asked to run, leaving out the preflight's `sudo -n true`."""
        path = self.root / "sudo-calls"
        calls = path.read_text().splitlines() if path.exists() else []
        return [call for call in calls if call != "-n true"]

"""What a host has that the tasks need: privilege, `ip`, `ping`, IPv6, the sit module.

`FACTS_SCRIPT` asks all of it in one command (no privilege needed); `parse_facts` reads the answer,
`preflight_problems` turns it into one Problem per missing thing (typed: what is lacking, and the
line that says so), and `preflight_error` into the failure they come to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from fleet.core.errors import PreflightError, PrivilegeError

FACTS_SCRIPT = r"""
echo "uid=$(id -u)"
if [ "$(id -u)" != 0 ]; then
  if sudo -n true >/dev/null 2>&1; then echo sudo=ok; else echo sudo=refused; fi
fi
echo "ip=$(command -v ip || true)"
echo "ping=$(command -v ping || true)"
echo "fping=$(command -v fping || true)"
echo "python3=$(command -v python3 || true)"
if [ -e /proc/net/if_inet6 ]; then echo ipv6=1; else echo ipv6=0; fi
echo "disable_ipv6_all=$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null)"
echo "disable_ipv6_default=$(cat /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null)"
k=$(uname -r)
if [ -d /sys/module/sit ]; then echo sit=loaded
elif ls /lib/modules/"$k"/kernel/net/ipv6/sit.ko* /usr/lib/modules/"$k"/kernel/net/ipv6/sit.ko* \
     >/dev/null 2>&1; then echo sit=module
elif grep -qs 'net/ipv6/sit.ko' /lib/modules/"$k"/modules.builtin /usr/lib/modules/"$k"/modules.builtin
     then echo sit=builtin
else echo sit=missing; fi
echo "kernel=$k"
""".strip()


@dataclass(frozen=True)
class HostFacts:
    uid: int | None
    sudo: str  # "ok", "refused", or "" for root
    ip: str
    ping: str
    fping: str
    python3: str
    ipv6: bool
    ipv6_disabled: bool
    sit: str  # loaded, module, builtin or missing
    kernel: str


def parse_facts(text: str) -> HostFacts:
    """Read FACTS_SCRIPT's `key=value` lines; missing keys read as absent."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    uid = values.get("uid", "")
    return HostFacts(
        uid=int(uid) if uid.isdigit() else None,
        sudo=values.get("sudo", ""),
        ip=values.get("ip", ""),
        ping=values.get("ping", ""),
        fping=values.get("fping", ""),
        python3=values.get("python3", ""),
        ipv6=values.get("ipv6") == "1",
        ipv6_disabled="1" in (values.get("disable_ipv6_all"), values.get("disable_ipv6_default")),
        sit=values.get("sit", "missing"),
        kernel=values.get("kernel", "unknown"),
    )


class Lack(StrEnum):
    """What a host lacks."""

    PRIVILEGE = "privilege"
    IP = "ip"
    PROBER = "prober"
    IPV6 = "ipv6"
    IPV6_DISABLED = "ipv6-disabled"
    SIT = "sit"


@dataclass(frozen=True)
class Problem:
    """One thing the host lacks, and the line that says so (its str)."""

    lack: Lack
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def error(self) -> type[PreflightError]:
        """The failure this problem is on its own."""
        return PrivilegeError if self.lack is Lack.PRIVILEGE else PreflightError


def preflight_problems(facts: HostFacts, *, need_sit: bool = True, need_ping: bool = False,
                       need_root: bool = True) -> list[Problem]:
    """One Problem per thing the host lacks; an empty list when it is ready.

    `need_ping`: the mesh must be able to probe from this host (ping, fping or python3).
    """
    problems = []
    if need_root and facts.uid != 0 and facts.sudo != "ok":
        problems.append(Problem(Lack.PRIVILEGE, "no privilege: not root and `sudo -n` refused (it "
                                "wants a password or is not installed); log in as root or allow "
                                "passwordless sudo"))
    if not facts.ip:
        problems.append(Problem(Lack.IP, "`ip` (iproute2) is not installed"))
    if need_ping and not (facts.ping or facts.fping or facts.python3):
        problems.append(Problem(Lack.PROBER, "nothing to ping with: install iputils-ping (or fping)"))
    if not facts.ipv6:
        problems.append(Problem(Lack.IPV6, "the kernel has no IPv6 (/proc/net/if_inet6 missing)"))
    elif facts.ipv6_disabled:
        problems.append(Problem(Lack.IPV6_DISABLED, "IPv6 is disabled (net.ipv6.conf.all/default."
                                "disable_ipv6=1); set them to 0"))
    if need_sit and facts.sit == "missing":
        problems.append(Problem(Lack.SIT, f"the kernel lacks sit/ISATAP support (CONFIG_IPV6_SIT, "
                                f"kernel {facts.kernel})"))
    return problems


def preflight_error(host: str, problems: Sequence[Problem]) -> PreflightError:
    """The failure that `problems` (at least one) come to: their own class when they all have one
    (PrivilegeError when privilege alone is lacking), else PreflightError; the message lists them."""
    classes = {problem.error for problem in problems}
    cls = classes.pop() if len(classes) == 1 else PreflightError
    return cls(host, "; ".join(map(str, problems)))

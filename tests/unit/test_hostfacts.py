import subprocess

from fleet.core.errors import PreflightError, PrivilegeError
from fleet.tunnel.preflight import FACTS_SCRIPT, Lack, parse_facts, preflight_error, preflight_problems

READY = ("uid=0\nip=/usr/sbin/ip\nping=/usr/bin/ping\nfping=\npython3=\nipv6=1\n"
         "disable_ipv6_all=0\ndisable_ipv6_default=0\nsit=module\nkernel=6.1.0-40-amd64\n")


def facts(**changes):
    text = READY
    for key, value in changes.items():
        text = "\n".join(f"{key}={value}" if line.startswith(f"{key}=") else line
                         for line in text.splitlines()) + "\n"
    return parse_facts(text)


def test_a_ready_host_has_no_problems():
    assert preflight_problems(facts(), need_ping=True) == []


def test_each_missing_thing_is_one_line():
    problems = preflight_problems(facts(ip="", sit="missing", disable_ipv6_all="1"), need_ping=True)
    assert [p.lack for p in problems] == [Lack.IP, Lack.IPV6_DISABLED, Lack.SIT]
    assert list(map(str, problems)) == [
        "`ip` (iproute2) is not installed",
        "IPv6 is disabled (net.ipv6.conf.all/default.disable_ipv6=1); set them to 0",
        "the kernel lacks sit/ISATAP support (CONFIG_IPV6_SIT, kernel 6.1.0-40-amd64)",
    ]


def test_no_prober_at_all():
    assert list(map(str, preflight_problems(facts(ping=""), need_ping=True))) == [
        "nothing to ping with: install iputils-ping (or fping)"]
    assert preflight_problems(facts(ping="", fping="/usr/bin/fping"), need_ping=True) == []


def test_sit_only_matters_when_the_tunnel_must_be_created():
    assert preflight_problems(facts(sit="missing"), need_sit=False) == []


def test_privilege():
    text = READY.replace("uid=0", "uid=1000\nsudo=refused")
    assert [p.lack for p in preflight_problems(parse_facts(text))] == [Lack.PRIVILEGE]
    assert preflight_problems(parse_facts(READY.replace("uid=0", "uid=1000\nsudo=ok"))) == []
    assert preflight_problems(parse_facts(text), need_root=False) == []


def test_the_script_runs_in_a_real_shell():
    found = parse_facts(subprocess.run(["sh", "-c", FACTS_SCRIPT], capture_output=True,
                                       text=True, check=True).stdout)
    assert found.uid is not None and found.ip and found.kernel != "unknown"
    assert found.sit in ("loaded", "module", "builtin", "missing")


def test_the_failure_is_chosen_by_what_is_lacking_not_by_the_words():
    no_root = parse_facts(READY.replace("uid=0", "uid=1000\nsudo=refused"))
    alone = preflight_error("h1", preflight_problems(no_root))
    assert type(alone) is PrivilegeError and alone.kind == "privilege"
    assert alone.reason.startswith("no privilege")
    both = preflight_error("h1", preflight_problems(parse_facts(
        READY.replace("uid=0", "uid=1000\nsudo=refused").replace("ip=/usr/sbin/ip", "ip="))))
    assert type(both) is PreflightError and both.kind == "preflight"
    assert "no privilege" in both.reason and "`ip` (iproute2) is not installed" in both.reason
    other = preflight_error("h1", preflight_problems(facts(sit="missing")))
    assert type(other) is PreflightError and "sit/ISATAP" in other.reason

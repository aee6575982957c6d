"""Ownership, planning and the apply/remove scripts of the ISATAP tunnel (pure, plus the scripts
run by a real /bin/sh against a stand-in `ip` and a stand-in sysfs tree)."""

import subprocess
from ipaddress import IPv4Address, IPv6Interface

import pytest
from standins import StandInHost as Host

from fleet.core.sections import split_sections
from fleet.core.transport import CommandResult
from fleet.tunnel.iproute import ABSENT, TunnelState
from fleet.tunnel.plan import (
    MARK,
    DesiredTunnel,
    ForeignTunnel,
    Ownership,
    StateUnreadable,
    creates_tunnel,
    ownership,
    plan,
    removal,
)
from fleet.tunnel.scripts import (
    STALE_STATUS,
    apply_script,
    failure_account,
    parse_apply,
    parse_state,
    read_state_script,
    remove_script,
    went_stale,
)

DESIRED = DesiredTunnel(local=IPv4Address("172.31.0.11"),
                        address=IPv6Interface("fd00:5efe:1ab::5efe:ac1f:b/64"))
GOOD = TunnelState(exists=True, kind="sit", isatap=True, local=IPv4Address("172.31.0.11"),
                   remote="any", mtu=1480, up=True, addresses=(DESIRED.address,), alias=MARK,
                   ifindex=4)
BY_HAND = TunnelState(**{**GOOD.__dict__, "alias": None})  # the walk-through's own sit1
SIX_IN_FOUR = TunnelState(exists=True, kind="sit", isatap=False, local=IPv4Address("172.31.0.11"),
                          remote="198.51.100.7", mtu=1480, up=True,
                          addresses=(IPv6Interface("2001:db8:7::2/64"),), ifindex=5)


def drift(**changes):
    return TunnelState(**{**GOOD.__dict__, **changes})


def commands(state, **kwargs):
    return [step.command for step in plan(state, DESIRED, **kwargs)]


def test_nothing_to_do_when_it_is_right():
    assert ownership(GOOD, DESIRED) is Ownership.FLEETS
    assert plan(GOOD, DESIRED) == ()


def test_from_nothing_it_is_the_article_recipe_plus_the_mark():
    assert commands(ABSENT) == [
        "ip tunnel add sit1 mode isatap local 172.31.0.11",
        f"ip link set dev sit1 alias {MARK}",
        "ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
        "ip link set dev sit1 mtu 1480",
        "ip link set dev sit1 up",
    ]
    assert creates_tunnel(plan(ABSENT, DESIRED))


def test_a_tunnel_made_by_hand_is_adopted_in_place_never_recreated():
    assert ownership(BY_HAND, DESIRED) is Ownership.ADOPTABLE
    steps = plan(BY_HAND, DESIRED)
    assert [s.command for s in steps] == [f"ip link set dev sit1 alias {MARK}"]
    assert steps[0].description.startswith("adopt sit1")
    assert steps[0].undo == ("ip", "link", "set", "dev", "sit1", "alias", "")
    with_drift = TunnelState(**{**BY_HAND.__dict__, "mtu": 8981, "up": False, "addresses": ()})
    assert not any("del sit1" in c or "tunnel add" in c for c in commands(with_drift))


def test_a_foreign_tunnel_is_refused_and_names_what_is_there():
    assert ownership(SIX_IN_FOUR, DESIRED) is Ownership.FOREIGN
    with pytest.raises(ForeignTunnel) as refused:
        plan(SIX_IN_FOUR, DESIRED)
    message = str(refused.value)
    assert "remote 198.51.100.7" in message and "2001:db8:7::2/64" in message
    assert "--replace" in message and "untouched" in message
    for other in (drift(alias=None, local=IPv4Address("172.31.0.99")),   # another local
                  drift(alias="someone else's", isatap=False),
                  drift(alias=None, kind="gre", isatap=False)):
        with pytest.raises(ForeignTunnel):
            plan(other, DESIRED)
        with pytest.raises(ForeignTunnel):
            removal(other, DESIRED)


def test_replace_removes_the_foreign_tunnel_and_says_it_cannot_be_undone():
    steps = plan(SIX_IN_FOUR, DESIRED, replace=True)
    assert steps[0].command == "ip link del sit1" and not steps[0].reversible
    assert "not fleet's: --replace" in steps[0].description
    assert steps[1].command == "ip tunnel add sit1 mode isatap local 172.31.0.11"


def test_fleets_own_tunnel_with_the_wrong_local_or_mode_is_recreated():
    for drifted in (drift(local=IPv4Address("172.31.0.99")), drift(isatap=False)):
        assert commands(drifted)[:2] == ["ip link del sit1",
                                         "ip tunnel add sit1 mode isatap local 172.31.0.11"]


def test_missing_address_and_link_down_are_repaired_in_place_with_their_undo():
    steps = plan(drift(addresses=(), up=False), DESIRED)
    assert [(s.command, s.undo) for s in steps] == [
        ("ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
         ("ip", "addr", "del", "fd00:5efe:1ab::5efe:ac1f:b/64", "dev", "sit1")),
        ("ip link set dev sit1 up", ("ip", "link", "set", "dev", "sit1", "down"))]


def test_stale_address_and_mtu_are_restored_by_their_undo():
    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:b/64")
    steps = plan(drift(addresses=(stale, DESIRED.address), mtu=8981), DESIRED)
    assert [(s.command, s.undo) for s in steps] == [
        ("ip addr del 2002:ca0c:1e01::5efe:ac1f:b/64 dev sit1",
         ("ip", "addr", "add", "2002:ca0c:1e01::5efe:ac1f:b/64", "dev", "sit1")),
        ("ip link set dev sit1 mtu 1480", ("ip", "link", "set", "dev", "sit1", "mtu", "8981"))]


def test_address_with_another_prefix_length_is_not_ours():
    assert commands(drift(addresses=(IPv6Interface("fd00:5efe:1ab::5efe:ac1f:b/128"),))) == [
        "ip addr del fd00:5efe:1ab::5efe:ac1f:b/128 dev sit1",
        "ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1"]


def test_removal_takes_only_fleets_or_an_adoptable_tunnel():
    assert removal(ABSENT, DESIRED) is None
    assert removal(GOOD, DESIRED).command == "ip link del sit1"
    assert removal(BY_HAND, DESIRED).command == "ip link del sit1"
    assert removal(SIX_IN_FOUR, DESIRED, replace=True).command == "ip link del sit1"


# -- the scripts, run by /bin/sh ------------------------------------------------------------------

def state_of(host: Host) -> TunnelState:
    return parse_state(split_sections(host.run(read_state_script()).stdout))


def test_read_state_tells_absent_present_and_unreadable_apart(tmp_path):
    host = Host(tmp_path)
    assert state_of(host) == ABSENT
    host.write(GOOD)
    assert state_of(host).same_configuration(GOOD)
    host.fail.write_text("-j -d link show\n")  # an `ip` that cannot do JSON, say
    with pytest.raises(StateUnreadable, match="exit status 2"):
        state_of(host)
    with pytest.raises(StateUnreadable):
        parse_state({})  # the script said nothing at all


def test_apply_creates_marks_and_reads_the_state_back(tmp_path):
    host = Host(tmp_path)
    steps = plan(ABSENT, DESIRED)
    done = host.run(apply_script(steps, ABSENT))
    assert done.returncode == 0, done.stderr
    outcome = parse_apply(split_sections(done.stdout))
    assert outcome.applied == len(steps) and outcome.undone == ()
    assert ownership(outcome.after, DESIRED) is Ownership.FLEETS
    assert plan(outcome.after, DESIRED) == ()


def test_a_failed_create_removes_only_the_tunnel_it_made(tmp_path):
    host = Host(tmp_path)
    host.fail.write_text("mtu\n")
    steps = plan(ABSENT, DESIRED)
    done = host.run(apply_script(steps, ABSENT))
    assert done.returncode == 2
    outcome = parse_apply(split_sections(done.stdout))
    assert not outcome.after.exists
    calls = [c for c in host.calls() if not c.startswith("-j")]
    assert calls == ["tunnel add sit1 mode isatap local 172.31.0.11", f"link set dev sit1 alias {MARK}",
                     "addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
                     "link set dev sit1 mtu 1480", "link del sit1"]
    account = failure_account(steps, ABSENT, outcome)
    assert account.startswith("failed at 'set mtu 1480'; rolled back") and account.endswith("absent")


def test_a_failure_while_changing_an_existing_tunnel_restores_it(tmp_path):
    # the old address removed, the new one refused: the old one must come back, never a sit1
    # left up without an address
    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:b/64")
    before = drift(addresses=(stale,), mtu=8981)
    host = Host(tmp_path, before)
    host.fail.write_text("addr replace\n")
    steps = plan(before, DESIRED)
    done = host.run(apply_script(steps, before))
    assert done.returncode == 2
    outcome = parse_apply(split_sections(done.stdout))
    assert outcome.after.same_configuration(before)
    assert "link del sit1" not in host.calls()
    account = failure_account(steps, before, outcome)
    assert "failed at 'add address fd00:5efe:1ab::5efe:ac1f:b/64'; rolled back" in account
    assert "remove stale address 2002:ca0c:1e01::5efe:ac1f:b/64" in account


def test_an_undo_that_fails_is_reported_with_what_is_left(tmp_path):
    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:b/64")
    before = drift(addresses=(stale,))
    host = Host(tmp_path, before)
    host.fail.write_text("addr replace\naddr add\n")  # the re-add of the old address fails too
    steps = plan(before, DESIRED)
    outcome = parse_apply(split_sections(host.run(apply_script(steps, before)).stdout))
    account = failure_account(steps, before, outcome)
    assert "NOT fully rolled back" in account and "no address" in account
    assert "undo failed for: remove stale address" in account


def test_apply_does_nothing_when_the_device_changed_since_it_was_read(tmp_path):
    host = Host(tmp_path, GOOD)
    # planned for "absent", but a sit1 appeared meanwhile (another run, a second inventory name)
    done = host.run(apply_script(plan(ABSENT, DESIRED), ABSENT))
    assert done.returncode == STALE_STATUS and host.calls() == []
    # planned for one device, but it was replaced by another (another ifindex)
    done = host.run(apply_script(plan(drift(mtu=1400), DESIRED), drift(mtu=1400, ifindex=77)))
    assert done.returncode == STALE_STATUS and host.calls() == []
    assert state_of(host).same_configuration(GOOD)
    assert went_stale(CommandResult("apply", done.returncode, done.stdout, done.stderr))


def test_stale_is_read_from_the_guards_marker_not_from_a_sentence_or_a_status(tmp_path):
    host = Host(tmp_path, GOOD)
    done = host.run(remove_script(removal(GOOD, DESIRED), drift(ifindex=77)))
    assert done.returncode == STALE_STATUS and "changed since it was read" in done.stderr
    assert went_stale(CommandResult("remove", done.returncode, done.stdout, done.stderr))
    assert state_of(host).same_configuration(GOOD)
    # a step that failed with status 3 (and said the same words) did not stop at the guard
    assert not went_stale(CommandResult("apply", STALE_STATUS, "", done.stderr))
    assert not went_stale(CommandResult("apply", 1, done.stdout, done.stderr))


def test_remove_script_removes_and_reads_again(tmp_path):
    host = Host(tmp_path, GOOD)
    done = host.run(remove_script(removal(GOOD, DESIRED), GOOD))
    assert done.returncode == 0
    assert parse_state(split_sections(done.stdout)) == ABSENT


def test_an_apply_stopped_midway_undoes_its_steps_even_with_nobody_reading(tmp_path):
    # what fleet does after --command-timeout or Ctrl-C: TERM to the script's process group;
    # the channel may be gone already, so its output goes nowhere (EPIPE)
    import os
    import signal
    import time

    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:b/64")
    before = drift(addresses=(stale,), mtu=1400)
    host = Host(tmp_path, before)
    (tmp_path / "hang").write_text("mtu 1480")
    script = host.rewrite(apply_script(plan(before, DESIRED), before))
    running = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={"PATH": f"{host.bin}:/usr/bin:/bin"}, start_new_session=True)
    try:
        for _ in range(200):
            if any("mtu 1480" in call for call in host.calls()):
                break
            time.sleep(0.05)
        assert any("mtu 1480" in call for call in host.calls()), host.calls()
        running.stdout.close()  # nobody reads any more
        os.killpg(running.pid, signal.SIGTERM)
        assert running.wait(timeout=20) == 143
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
        running.stderr.close()
    (tmp_path / "hang").write_text("")
    assert state_of(host).same_configuration(before)

"""The shipped tasks (setup, teardown, mesh) run by `fleet.cli.main` in this process, over real SSH
to in-process servers whose commands run by /bin/sh against stand-in hosts (tests/inprocess.py,
tests/standins.py). No root: the stand-ins keep each host's sit1 in files, and the tests read
those files, the JSON report, the exit code and the printed lines."""

from ipaddress import IPv4Address, IPv6Interface

from fleet.tunnel.iproute import TunnelState

MARK = "fleet-isatap"


def fleets_tunnel(member, **changes) -> TunnelState:
    """The sit1 setup leaves on `member`, with `changes`."""
    good = dict(exists=True, kind="sit", isatap=True, local=IPv4Address(member.ipv4), remote="any",
                mtu=1480, up=True, addresses=(IPv6Interface(f"{member.address}/64"),), alias=MARK,
                ifindex=4)
    return TunnelState(**{**good, **changes})


def six_in_four(member) -> TunnelState:
    """Somebody else's sit1: a 6in4 tunnel to a remote, not ISATAP, unmarked."""
    return TunnelState(exists=True, kind="sit", isatap=False, local=IPv4Address(member.ipv4),
                       remote="198.51.100.7", mtu=1480, up=True,
                       addresses=(IPv6Interface("2001:db8:7::2/64"),), ifindex=5)


def configured_files(member, ifindex="9") -> dict[str, str]:
    """What the stand-in's files say for the sit1 setup makes on `member`."""
    return {"ifindex": ifindex, "mtu": "1480", "up": "1", "alias": MARK,
            "addrs": f"{member.address}/64", "kind": "sit", "local": member.ipv4, "remote": "any",
            "isatap": "true"}


def test_dry_run_prints_the_plan_and_changes_nothing(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    h2.stand_in.write(fleets_tunnel(h2, mtu=1400))
    before = h2.stand_in.files()
    done = inprocess_fleet.run("setup", "--dry-run")
    assert done.code == 0, done.err
    assert (f"h1 changed would create sit1 mode isatap local 172.31.0.11; mark sit1 as fleet's; "
            f"add address {h1.address}/64; set mtu 1480; set link up") in done.table
    assert "h2 changed would set mtu 1480 (was 1400)" in done.table
    assert h1.stand_in.files() == {} and h2.stand_in.files() == before
    assert h1.stand_in.changing_calls() == [] and h2.stand_in.changing_calls() == []
    assert h1.stand_in.privileged_calls() == [] and h2.stand_in.privileged_calls() == []
    report = done.host("h2")
    assert report["status"] == "changed" and report["result"]["dry_run"] is True
    assert report["result"]["commands"] == ["ip link set dev sit1 mtu 1480"]


def test_setup_creates_and_marks_the_tunnel_then_has_nothing_to_do(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    done = inprocess_fleet.run("setup")
    assert done.code == 0, done.err
    for member in (h1, h2):
        assert member.stand_in.files() == configured_files(member)
        assert member.stand_in.changing_calls() == [
            f"tunnel add sit1 mode isatap local {member.ipv4}", f"link set dev sit1 alias {MARK}",
            f"addr replace {member.address}/64 dev sit1", "link set dev sit1 mtu 1480",
            "link set dev sit1 up"]
        assert [call[:9] for call in member.stand_in.privileged_calls()] == ["-n sh -c "]  # the apply
        result = done.host(member.name)["result"]
        assert done.host(member.name)["status"] == "changed"
        assert result["owner"] == "absent" and result["before"] == "absent"
        assert result["after"] == (f"isatap, local {member.ipv4}, mtu 1480, up, "
                                   f"{member.address}/64, alias '{MARK}'")
    assert done.report["summary"] == {"hosts": 2, "ok": 0, "changed": 2, "failed": 0}
    assert "setup: 2 hosts: 0 ok, 2 changed, 0 failed" in done.out

    calls_before = len(h1.stand_in.calls())
    again = inprocess_fleet.run("setup")
    assert again.code == 0, again.err
    assert f"h1 ok sit1 isatap, local 172.31.0.11, mtu 1480, up, {h1.address}/64" in again.table
    assert again.report["summary"] == {"hosts": 2, "ok": 2, "changed": 0, "failed": 0}
    assert h1.stand_in.files() == configured_files(h1)
    assert all(call.startswith("-j ") for call in h1.stand_in.calls()[calls_before:])


def test_drift_is_repaired_in_place_and_the_plan_names_exactly_the_drift(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h1.stand_in.write(fleets_tunnel(h1, mtu=1400, addresses=()))
    done = inprocess_fleet.run("setup")
    assert done.code == 0, done.err
    result = done.host("h1")["result"]
    assert result["owner"] == "fleet's"
    assert result["changes"] == [f"add address {h1.address}/64", "set mtu 1480 (was 1400)"]
    assert result["commands"] == [f"ip addr replace {h1.address}/64 dev sit1",
                                  "ip link set dev sit1 mtu 1480"]
    assert h1.stand_in.files() == configured_files(h1, ifindex="4")  # the same device, repaired


def test_a_foreign_tunnel_is_refused_untouched_and_replace_replaces_it(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    h1.stand_in.write(six_in_four(h1))
    before = h1.stand_in.files()
    done = inprocess_fleet.run("setup")
    assert done.code == 1
    refused = done.host("h1")
    assert refused["status"] == "failed" and refused["error_kind"] == "foreign-tunnel"
    assert "remote 198.51.100.7" in refused["error"] and "--replace" in refused["error"]
    assert "h1 failed foreign-tunnel: sit1 exists and is not fleet's" in done.table
    assert h1.stand_in.files() == before and h1.stand_in.changing_calls() == []
    assert done.host("h2")["status"] == "changed"

    replaced = inprocess_fleet.run("setup", "--replace")
    assert replaced.code == 0, replaced.err
    changes = replaced.host("h1")["result"]["changes"]
    assert changes[0].startswith("remove sit1 (not fleet's: --replace")
    assert h1.stand_in.files() == configured_files(h1)
    assert replaced.host("h2")["status"] == "ok"


def test_a_step_failing_midway_is_rolled_back_and_said_so(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")             # creating: the tunnel goes
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")             # changing: it comes back
    inprocess_fleet.add_host("h3", "172.31.0.13")
    h1.stand_in.fail.write_text("mtu\n")
    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:c/64")
    h2.stand_in.write(fleets_tunnel(h2, addresses=(stale,), mtu=8981))
    h2.stand_in.fail.write_text("addr replace\n")
    before = h2.stand_in.files()
    done = inprocess_fleet.run("setup")
    assert done.code == 1
    first = done.host("h1")
    assert first["error_kind"] == "command"
    assert "failed at 'set mtu 1480'; rolled back" in first["error"]
    assert h1.stand_in.files() == {} and "link del sit1" in h1.stand_in.calls()
    second = done.host("h2")
    assert second["error_kind"] == "command"
    assert f"failed at 'add address {h2.address}/64'; rolled back" in second["error"]
    assert "sit1 is as it was (read again)" in second["error"]
    assert h2.stand_in.files() == before
    assert done.host("h3")["status"] == "changed"
    assert "h1 failed command: configuring sit1 failed at 'set mtu 1480'; rolled back" in done.table


def test_preflight_and_privilege_name_the_host_and_leave_the_others_alone(inprocess_fleet):
    no_sit = inprocess_fleet.add_host("nosit", "172.31.0.11", sit=False)
    no_sudo = inprocess_fleet.add_host("nosudo", "172.31.0.12")
    no_sudo.stand_in.refuse_sudo()
    no_ipv6 = inprocess_fleet.add_host("noipv6", "172.31.0.13")
    (no_ipv6.stand_in.root / "proc/sys/net/ipv6/conf/all/disable_ipv6").write_text("1\n")
    fine = inprocess_fleet.add_host("fine", "172.31.0.14")
    done = inprocess_fleet.run("setup")
    assert done.code == 1
    assert done.host("nosit")["error_kind"] == "preflight"
    assert "the kernel lacks sit/ISATAP support (CONFIG_IPV6_SIT, kernel 6.1.0-standin)" in \
        done.host("nosit")["error"]
    assert done.host("nosudo")["error_kind"] == "privilege"
    assert "not root and `sudo -n` refused" in done.host("nosudo")["error"]
    assert done.host("noipv6")["error_kind"] == "preflight"
    assert "IPv6 is disabled" in done.host("noipv6")["error"]
    assert "nosit failed preflight:" in done.table and "nosudo failed privilege:" in done.table
    for member in (no_sit, no_sudo, no_ipv6):
        assert member.stand_in.files() == {} and member.stand_in.changing_calls() == []
        assert member.stand_in.privileged_calls() == []
    assert done.host("fine")["status"] == "changed"
    assert fine.stand_in.files() == configured_files(fine)
    assert done.report["summary"] == {"hosts": 4, "ok": 0, "changed": 1, "failed": 3}


def test_teardown_removes_only_fleets_tunnel(inprocess_fleet):
    marked = inprocess_fleet.add_host("marked", "172.31.0.11")
    by_hand = inprocess_fleet.add_host("byhand", "172.31.0.12")
    foreign = inprocess_fleet.add_host("foreign", "172.31.0.13")
    none = inprocess_fleet.add_host("none", "172.31.0.14")
    marked.stand_in.write(fleets_tunnel(marked))
    by_hand.stand_in.write(fleets_tunnel(by_hand, alias=None))  # the walk-through's own sit1
    foreign.stand_in.write(six_in_four(foreign))
    before = foreign.stand_in.files()
    done = inprocess_fleet.run("teardown")
    assert done.code == 1
    assert marked.stand_in.files() == {} and by_hand.stand_in.files() == {}
    assert done.host("marked")["result"]["summary"] == "removed sit1 (read again: absent)"
    assert done.host("byhand")["status"] == "changed"
    assert done.host("foreign")["error_kind"] == "foreign-tunnel"
    assert foreign.stand_in.files() == before and foreign.stand_in.changing_calls() == []
    assert done.host("none")["status"] == "ok" and "none ok no sit1" in done.table
    assert none.stand_in.calls() == []  # sysfs said absent: nothing else to ask

    again = inprocess_fleet.run("teardown", "--limit", "marked,byhand,none")
    assert again.code == 0 and again.report["summary"]["ok"] == 3


def test_mesh_matrix_with_an_unreachable_and_a_lossy_pair(inprocess_fleet):
    members = [inprocess_fleet.add_host(f"h{i}", f"172.31.0.1{i}") for i in (1, 2, 3)]
    for member in members:
        member.stand_in.write(fleets_tunnel(member))
    h1, h2, h3 = members
    h1.stand_in.set_peers(unreachable=(h3.address,))
    h2.stand_in.set_peers(lossy=(h1.address,))
    done = inprocess_fleet.run("mesh")
    assert done.code == 1
    states = {(p["src"], p["dst"]): p["state"] for p in done.report["pairs"]}
    assert states == {("h1", "h2"): "ok", ("h1", "h3"): "unreachable", ("h2", "h1"): "lossy",
                      ("h2", "h3"): "ok", ("h3", "h1"): "ok", ("h3", "h2"): "ok"}
    lossy = next(p for p in done.report["pairs"] if (p["src"], p["dst"]) == ("h2", "h1"))
    assert (lossy["sent"], lossy["received"], lossy["loss_pct"]) == (3, 2, 33.3)
    assert (lossy["rtt_min_ms"], lossy["rtt_max_ms"]) == (0.042, 0.043)
    unreachable = next(p for p in done.report["pairs"] if (p["src"], p["dst"]) == ("h1", "h3"))
    assert unreachable["received"] == 0 and unreachable["rtt_avg_ms"] is None
    assert [h["state"] for h in done.report["hosts"]] == ["ok", "ok", "ok"]
    assert {h["probe"] for h in done.report["hosts"]} == {"fping"}
    assert done.report["summary"] == {"hosts": 3, "pairs": 6, "ok": 4, "lossy": 1,
                                      "unreachable": 1, "error": 0,
                                      # 14 replies: 0.041 0.042 0.043 from each of 4 ok pairs,
                                      # 0.042 0.043 from the lossy one; p99 needs 100
                                      "rtt_ms": {"p50": 0.042, "p90": 0.043, "p99": None},
                                      "underlay": None, "mtu": None}
    assert (lossy["rtt_p50_ms"], lossy["rtt_p90_ms"]) == (0.042, None)  # 2 replies
    assert lossy["underlay"] is None and lossy["mtu"] is None  # not asked for
    assert "1 h1      - . X" in done.out and "2 h2      ~ - ." in done.out
    assert "every reply: p50 0.042, p90 0.043" in done.out


def test_mesh_underlay_and_mtu_rounds_ride_in_the_same_command(inprocess_fleet):
    members = [inprocess_fleet.add_host(f"h{i}", f"172.31.0.1{i}") for i in (1, 2, 3)]
    for member in members:
        member.stand_in.write(fleets_tunnel(member))
    h1, h2, h3 = members
    # h1 hears nothing from h3 through the tunnel, but h3's IPv4 answers; h2 loses h1's IPv4
    h1.stand_in.set_peers(unreachable=(h3.address,))
    h2.stand_in.set_peers(unreachable=("172.31.0.11",))
    before = inprocess_fleet.logins()
    done = inprocess_fleet.run("mesh", "--underlay", "--mtu")
    assert done.code == 1
    assert done.report["probe"]["underlay"] is True and done.report["probe"]["mtu_size"] == 1480
    pairs = {(p["src"], p["dst"]): p for p in done.report["pairs"]}
    assert pairs["h1", "h3"]["state"] == "unreachable"
    assert pairs["h1", "h3"]["underlay"] == {"state": "ok", "sent": 3, "received": 3,
                                             "loss_pct": 0.0, "rtt_avg_ms": 0.042, "error": None}
    assert pairs["h2", "h1"]["state"] == "ok"
    assert pairs["h2", "h1"]["underlay"]["state"] == "unreachable"
    assert pairs["h2", "h1"]["underlay"]["loss_pct"] == 100.0
    assert pairs["h2", "h1"]["mtu"] == {"ok": True, "size": 1480, "error": None}
    # no small ping got through h1 -> h3, so its full-size silence says nothing of the MTU
    assert pairs["h1", "h3"]["mtu"] == {"ok": None, "size": 1480,
                                        "error": "not even the small pings got through"}
    assert done.report["summary"]["underlay"] == {"ok": 5, "lossy": 0, "unreachable": 1, "error": 0}
    assert done.report["summary"]["mtu"] == {"ok": 5, "failed": 0, "unknown": 1}
    assert "underlay (ping -4 to the tunnel IPv4): 5 ok, 0 lossy, 1 unreachable, 0 error" in done.out
    after = inprocess_fleet.logins()
    assert {n: after[n] - before.get(n, 0) for n in after} == {"h1": 1, "h2": 1, "h3": 1}
    fpings = h1.stand_in.fping_calls()
    assert [call.split()[0] for call in fpings] == ["-6", "-4", "-6"]  # the three rounds
    assert fpings[2].endswith("-M -b 1432")


def test_mesh_host_without_any_prober_is_an_error_of_kind_preflight(inprocess_fleet, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    bare = inprocess_fleet.add_host("bare", "172.31.0.13", fping=False, search_path=str(empty))
    for member in (h1, h2, bare):
        member.stand_in.write(fleets_tunnel(member))
    done = inprocess_fleet.run("mesh")
    assert done.code == 1
    host = next(h for h in done.report["hosts"] if h["name"] == "bare")
    assert host["state"] == "error" and host["error_kind"] == "preflight"
    assert "no prober" in host["error"]
    states = {(p["src"], p["dst"]): p["state"] for p in done.report["pairs"]}
    assert states[("bare", "h1")] == states[("bare", "h2")] == "error"
    assert states[("h1", "bare")] == states[("h2", "bare")] == states[("h1", "h2")] == "ok"
    assert "bare -> *: error, could not probe (preflight): no prober" in done.out


def test_setup_then_mesh_in_one_run(inprocess_fleet):
    members = [inprocess_fleet.add_host(f"h{i}", f"172.31.0.1{i}") for i in (1, 2)]
    done = inprocess_fleet.run("setup", "mesh")
    assert done.code == 0, done.err
    assert [d["task"] for d in done.report["tasks"]] == ["setup", "mesh"]
    mesh = done.report["tasks"][1]
    assert [h["state"] for h in mesh["hosts"]] == ["ok", "ok"]  # setup's addresses are there
    assert mesh["summary"]["ok"] == 2
    assert all(m.logins == 1 for m in members)  # both tasks over one connection per host

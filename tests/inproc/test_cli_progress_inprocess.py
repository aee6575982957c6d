"""`fleet run` on a terminal and off it, in this process against in-process SSH hosts: the live
display and the colours only where a terminal gets them, plain text otherwise, one line per task
with -q."""

import io
import json
import re
import sys

import pytest

SGR = re.compile(r"\x1b\[[0-9;]*m")


class Tty(io.StringIO):
    """A stream that says it is a terminal, as a shell's would."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def two_hosts(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    return inprocess_fleet


@pytest.fixture
def terminal(monkeypatch):
    """Make stdout and stderr terminals (with colours); called in the test, after pytest's own
    capture took the streams."""
    def streams():
        out, err = Tty(), Tty()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TERM", "xterm-256color")
        return out, err
    return streams


def run(fleet, *argv):
    inventory = fleet.write_inventory()
    report = fleet.workdir / "report.json"
    done = fleet.cli("run", "setup", "mesh", "-i", str(inventory), "--json", str(report), *argv)
    return done, json.loads(report.read_text())


def test_on_a_terminal_the_live_display_counts_and_the_matrix_is_coloured(two_hosts, terminal):
    out, err = terminal()
    done, report = run(two_hosts)
    assert done.code == 0
    shown = SGR.sub("", err.getvalue())
    assert "setup  connected 2/2  done 2/2  failed 0" in shown  # the last frame of each task
    assert "mesh  connected 2/2  done 2/2  failed 0  pairs answered 2" in shown
    printed = out.getvalue()
    assert "\x1b[1;32mALL OK\x1b[0m" in printed and "\x1b[32m.\x1b[0m" in printed
    assert SGR.sub("", printed).splitlines()[3] == "mesh ALL OK: 2 hosts, 2 pairs: 2 ok, 0 lossy, " \
        "0 unreachable, 0 error  (probe fping: 3 x 0.2 s, wait 1 s)"
    assert report["tasks"][1]["summary"]["ok"] == 2


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-progress"])
def test_no_color_or_no_progress_is_plain_text_even_on_a_terminal(two_hosts, terminal, monkeypatch,
                                                                   how):
    out, err = terminal()
    if how == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
    done, report = run(two_hosts, *([how] if how.startswith("--") else []))
    assert done.code == 0
    assert "\x1b" not in out.getvalue() + err.getvalue()
    assert "mesh ALL OK: 2 hosts" in out.getvalue() and "connected" not in err.getvalue()
    assert report["tasks"][0]["summary"]["changed"] == 2


def test_off_a_terminal_it_is_plain_text(two_hosts):
    done, _ = run(two_hosts)
    assert done.code == 0
    assert "\x1b" not in done.out + done.err
    assert "src \\ dst" in done.out and done.err == ""


def test_quiet_prints_one_verdict_line_per_task_and_still_writes_the_json(two_hosts):
    done, report = run(two_hosts, "-q")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"setup: 2 hosts: 0 ok, 2 changed, 0 failed \(\d+\.\d s\)", lines[0])
    assert lines[1].startswith("mesh ALL OK: 2 hosts, 2 pairs: 2 ok,")
    assert [d["task"] for d in report["tasks"]] == ["setup", "mesh"]
    assert len(report["tasks"][1]["pairs"]) == 2


def test_quiet_on_a_terminal_colours_only_the_verdict_line(two_hosts, terminal):
    out, _ = terminal()
    done, _ = run(two_hosts, "-q")
    assert done.code == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b[1;32mALL OK\x1b[0m" in lines[1]
    assert "\x1b[1;32m0 failed\x1b[0m" in lines[0]


def test_quiet_and_verbose_together_are_a_usage_error(two_hosts):
    done = two_hosts.cli("run", "setup", "-q", "-v", "-i", str(two_hosts.write_inventory()))
    assert done.code == 2 and "not allowed with argument" in done.err
    assert two_hosts.logins() == {"h1": 0, "h2": 0}


def on_a_pty(argv, env):
    """Run `python -m fleet ARGV` with stdout and stderr on a pseudo-terminal; what it wrote."""
    import os
    import pty
    import subprocess

    from conftest import REPO

    leader, follower = pty.openpty()
    try:
        done = subprocess.Popen([sys.executable, "-m", "fleet", *argv], stdin=subprocess.DEVNULL,
                                stdout=follower, stderr=follower, cwd=REPO, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return done.wait(timeout=60), b"".join(chunks).decode()
    finally:
        os.close(leader)


@pytest.mark.parametrize("no_color", [False, True])
def test_on_a_real_pseudo_terminal(two_hosts, no_color):
    import os

    from conftest import REPO

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(REPO), **({"NO_COLOR": "1"} if no_color else {}))
    code, shown = on_a_pty(["run", "setup", "mesh", "-i", str(two_hosts.write_inventory())], env)
    assert code == 0, shown
    assert "mesh ALL OK: 2 hosts" in SGR.sub("", shown)
    if no_color:
        assert "\x1b" not in shown
    else:
        assert "\x1b[1;32mALL OK\x1b[0m" in shown
        assert "mesh  connected 2/2  done 2/2  failed 0  pairs answered 2" in SGR.sub("", shown)


def test_pairs_answered_leave_out_the_pairs_that_got_no_reply(inprocess_fleet, terminal):
    h1, h2, h3 = (inprocess_fleet.add_host(f"h{i}", f"172.31.0.1{i}") for i in (1, 2, 3))
    h1.stand_in.set_peers(unreachable=(h3.address,))
    h2.stand_in.set_peers(lossy=(h1.address,))
    out, err = terminal()
    done, report = run(inprocess_fleet)
    assert done.code == 1
    assert {k: v for k, v in report["tasks"][1]["summary"].items() if k in (
        "hosts", "pairs", "ok", "lossy", "unreachable", "error")} == {
        "hosts": 3, "pairs": 6, "ok": 4, "lossy": 1, "unreachable": 1, "error": 0}
    assert "mesh  connected 3/3  done 3/3  failed 0  pairs answered 5" in SGR.sub("", err.getvalue())
    assert "\x1b[1;31mNOT OK\x1b[0m" in out.getvalue() and "\x1b[33m~\x1b[0m" in out.getvalue()

"""Output files (--json, --junit, --prometheus, --heatmap) never overwrite a file the command reads:
for `fleet run` the inventory, every login's known_hosts (OpenSSH's default ~/.ssh/known_hosts
included), client keys and ssh config (~/.ssh/config, the `config` extra); for `fleet report` its
FILE.json and --baseline. The same file is caught through a symlink or a hard link, and a path that
does not exist yet is caught by where it resolves. Every output is checked, by one function, before
anything is done: exit 2, one line naming the option and the path.

Each test has a HOME of its own: the real ~/.ssh is never read or written."""

import json
import os

import pytest
from conftest import write_inventory
from meshes import mesh

from fleet import cli
from fleet.mesh.report import MeshJson

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"
OUTPUTS = [("--json", ""), ("--junit", ""), ("--prometheus", ""), ("--heatmap", ".html")]


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n")
    (home / ".ssh" / "config").write_text("Host *\n  ServerAliveInterval 30\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def inventory(tmp_path, extras=""):
    # a closed port on loopback: were a host touched, it would fail at once, not hang
    # two hosts: a mesh of one is refused before the outputs are looked at
    hosts = ""
    for name, loopback, ipv4 in (("h1", "127.0.0.1", "10.0.0.1"), ("h2", "127.0.0.2", "10.0.0.2")):
        hosts += f"{name}:\n  hostname: {loopback}\n  port: 1\n  data: {{ipv4: {ipv4}}}\n"
        if extras:
            hosts += f"  connection_options:\n    asyncssh:\n      extras:\n{extras}"
    return write_inventory(tmp_path / "inv", hosts, defaults=DEFAULTS)


def refused(capsys, argv, option, path, protected):
    before = protected.read_bytes() if protected.exists() else None
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.startswith(f"fleet: error: {option} {path}: that is ") and err.count("\n") == 1, err
    assert "which this" in err and "Traceback" not in err
    assert (protected.read_bytes() if protected.exists() else None) == before
    return err


@pytest.mark.parametrize("option, suffix", OUTPUTS)
def test_the_users_default_known_hosts_and_ssh_config_are_never_an_output(tmp_path, capsys, home,
                                                                          option, suffix):
    inv = inventory(tmp_path)  # no known_hosts extra: ~/.ssh/known_hosts is the one in use
    for name in ("known_hosts", "config"):
        target = home / ".ssh" / name
        if suffix:  # --heatmap wants .html or .svg: the same file under that name, hard-linked
            linked = home / ".ssh" / f"{name}{suffix}"
            os.link(target, linked)
            target = linked
        err = refused(capsys, ["run", "mesh", "-i", inv, option, target], option, target, target)
        assert "which this run reads" in err


@pytest.mark.parametrize("option, suffix", OUTPUTS)
def test_a_symlink_or_hard_link_to_a_trust_file_is_refused(tmp_path, capsys, home, option, suffix):
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("not really a key\n")
    known = tmp_path / "known"
    known.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  User tester\n")
    inv = inventory(tmp_path, f"        client_keys: ['{key}']\n        known_hosts: '{known}'\n"
                              f"        config: ['{config}']\n")
    for number, protected in enumerate((key, known, config, inv / "hosts.yaml")):
        symlink = tmp_path / f"via-symlink{number}{suffix}"
        symlink.symlink_to(protected)
        hard = tmp_path / f"via-hard-link{number}{suffix}"
        os.link(protected, hard)
        for output in (symlink, hard):
            refused(capsys, ["run", "setup", "--dry-run", "-i", inv, option, output], option, output,
                    protected)


def test_a_known_hosts_that_does_not_exist_yet_is_refused_by_its_path(tmp_path, capsys, home):
    (home / ".ssh" / "known_hosts").unlink()  # accept-new would create it
    inv = inventory(tmp_path)
    target = home / ".ssh" / "known_hosts"
    err = refused(capsys, ["run", "setup", "--host-key-checking", "accept-new", "-i", inv, "--json",
                           home / ".ssh" / ".." / ".ssh" / "known_hosts"], "--json",
                  home / ".ssh" / ".." / ".ssh" / "known_hosts", target)
    assert "a known_hosts file" in err and not target.exists()
    dangling = tmp_path / "dangling.xml"
    dangling.symlink_to(target)
    refused(capsys, ["run", "setup", "-i", inv, "--junit", dangling], "--junit", dangling, target)
    assert not target.exists()


def test_other_outputs_are_still_written(tmp_path, capsys, home):
    inv = inventory(tmp_path)
    code, _, err = run_cli(capsys, "run", "setup", "--dry-run", "-i", inv, "--json", tmp_path / "r.json",
                           "--junit", tmp_path / "r.xml")
    assert code == 1, err  # the host's port is closed: it fails, and the reports say so
    assert json.loads((tmp_path / "r.json").read_text())["task"] == "setup"
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")


@pytest.mark.parametrize("option", ["--json", "--junit", "--prometheus", "--heatmap"])
def test_run_checks_every_output_path_before_any_host_is_touched(tmp_path, capsys, home, option):
    inv = inventory(tmp_path)
    missing = tmp_path / "no-such-dir" / "x.html"
    code, out, err = run_cli(capsys, "run", "mesh", "-i", inv, option, missing)
    assert code == 2 and err.count("\n") == 1 and out == "", (out, err)
    assert err.startswith(f"fleet: error: {option} {missing}: no such directory ")


def saved(tmp_path, name):
    path = tmp_path / name
    path.write_text(json.dumps(MeshJson(mesh(["h1", "h2", "h3"])).as_dict()))
    return path


@pytest.mark.parametrize("option", ["--json", "--junit", "--prometheus", "--heatmap"])
def test_report_checks_every_output_path_before_reading_anything(tmp_path, capsys, option):
    report = saved(tmp_path, "run.json")
    code, out, err = run_cli(capsys, "report", report, option, "/nonexistent/x.html")
    assert code == 2 and out == "" and err.count("\n") == 1, (out, err)
    assert err == f"fleet: error: {option} /nonexistent/x.html: no such directory /nonexistent\n"
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):  # root writes anywhere: nothing to test there
            return
        code, _, err = run_cli(capsys, "report", report, option, tmp_path / "x.html")
        assert code == 2 and f"cannot write in {tmp_path}" in err
    finally:
        os.chmod(tmp_path, 0o700)


@pytest.mark.parametrize("option, suffix", OUTPUTS)
def test_report_refuses_its_input_and_baseline_through_links(tmp_path, capsys, option, suffix):
    current, baseline = saved(tmp_path, "run.json"), saved(tmp_path, "old.json")
    for number, (protected, what) in enumerate(((current, "FILE.json"), (baseline, "--baseline"))):
        symlink = tmp_path / f"symlink{number}{suffix}"
        symlink.symlink_to(protected)
        hard = tmp_path / f"hard{number}{suffix}"
        os.link(protected, hard)
        for output in (symlink, hard):
            err = refused(capsys, ["report", current, "--baseline", baseline, option, output], option,
                          output, protected)
            assert f"that is {what} ({protected}), which this command reads" in err

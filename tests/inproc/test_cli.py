"""The command line as a user meets it: exit codes, messages, task loading."""

import json
import subprocess
import sys

from conftest import REPO, write_inventory


def fleet(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "fleet", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_inventory_lists_the_article_hosts():
    done = fleet("inventory", "-i", REPO / "inventory")
    assert done.returncode == 0
    assert "instance-a  172.31.14.146:22  172.31.14.146  2002:ca0c:1e01::5efe:ac1f:e92" in done.stdout


def test_inventory_json_and_filters():
    done = fleet("inventory", "-i", REPO / "inventory", "--json", "--limit", "instance-b")
    assert json.loads(done.stdout) == {"hosts": [{
        "name": "instance-b", "ssh": "172.31.14.147:22", "ipv4": "172.31.14.147",
        "address": "2002:ca0c:1e01::5efe:ac1f:e93", "groups": ["vpc"]}]}


def test_bad_inventory_is_exit_2_before_any_host_is_touched(tmp_path):
    # The host's address is unroutable on purpose: if fleet tried to connect, this would hang.
    write_inventory(tmp_path, "a:\n  hostname: 192.0.2.1\n  port: 1\n",
                    defaults="data:\n  isatap_prefix: 'fd00::/48'\n")
    for command in (["inventory"], ["run", "setup"], ["run", "mesh"], ["run", "teardown"]):
        done = fleet(*command, "-i", tmp_path)
        assert done.returncode == 2, done
        assert "defaults.yaml: host 'a': field 'data.isatap_prefix'" in done.stderr
        assert "ISATAP needs a /64" in done.stderr


def test_missing_inventory_directory(tmp_path):
    done = fleet("run", "setup", "-i", tmp_path / "nope")
    assert done.returncode == 2 and "inventory directory not found" in done.stderr


def test_unknown_task_and_bad_options_are_usage_errors(tmp_path):
    done = fleet("run", "nosuchtask", "-i", REPO / "inventory")
    assert done.returncode == 2 and "no task 'nosuchtask'" in done.stderr and "mesh" in done.stderr
    done = fleet("run", "mesh", "--count", "0", "-i", REPO / "inventory")
    assert done.returncode == 2 and "--count must be between 1 and 1000" in done.stderr
    done = fleet("run", "mesh", "--workers", "0", "-i", REPO / "inventory")
    assert done.returncode == 2 and "--workers" in done.stderr
    done = fleet("run", "mesh", "--limit", "nobody", "-i", REPO / "inventory")
    assert done.returncode == 2 and "no host" in done.stderr


def test_tasks_lists_the_built_ins():
    done = fleet("tasks")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["mesh", "setup", "teardown"]


def test_a_user_task_runs_without_touching_fleet(tmp_path):
    # A task file in ./tasks of the working directory, with an option of its own, run on a host
    # whose SSH fails at once (closed port on loopback): the run reports it, exit 1.
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "hello.py").write_text(
        '"""Say hello."""\n'
        "def add_arguments(parser):\n    parser.add_argument('--greeting', default='hi')\n"
        "async def run(host):\n    out = await host.run('echo ' + host.options.greeting)\n"
        "    return host.result({'summary': out.stdout.strip()})\n")
    write_inventory(tmp_path / "inventory", "a:\n  hostname: 127.0.0.1\n  port: 1\n"
                    "  data: {ipv4: 10.0.0.1}\n", defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    listed = fleet("tasks", cwd=tmp_path)
    assert "hello        Say hello." in listed.stdout
    done = fleet("run", "hello", "--greeting", "hey", "--json", "-", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["task"] == "hello" and report["summary"]["failed"] == 1
    assert "cannot connect to 127.0.0.1:1" in report["hosts"][0]["error"]
    assert report["hosts"][0]["error_kind"] == "unreachable"
    assert "a  failed  unreachable: cannot connect to 127.0.0.1:1" in done.stderr


def test_broken_task_file_is_a_usage_error(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "broken.py").write_text("def run(host):\n    pass\n")
    write_inventory(tmp_path / "inventory", "a:\n  hostname: 10.0.0.1\n",
                    defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    done = fleet("run", "broken", cwd=tmp_path)
    assert done.returncode == 2 and "must define `async def run(host)`" in done.stderr


def test_tasks_in_the_working_directory_never_replace_a_built_in(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "setup.py").write_text(
        '"""Not fleet\'s setup."""\nasync def run(host):\n    raise SystemExit("ran the impostor")\n')
    listed = fleet("tasks", cwd=tmp_path)
    assert listed.returncode == 0
    setup_line = next(line for line in listed.stdout.splitlines() if line.startswith("setup "))
    assert "Not fleet's setup" not in setup_line
    assert "tasks/setup.py ignored: 'setup' is a built-in task" in listed.stderr
    overridden = fleet("tasks", "--tasks-dir", tmp_path / "tasks", cwd=tmp_path)
    assert "Not fleet's setup." in overridden.stdout
    assert "overrides the built-in" in overridden.stderr


def test_json_report_never_overwrites_a_file_the_run_reads(tmp_path):
    # two hosts (a mesh of one is refused first), neither ever contacted: the check comes first
    inventory = write_inventory(tmp_path / "inv", "a:\n  hostname: 127.0.0.1\n  port: 1\n"
                                "  data: {ipv4: 10.0.0.1}\nb:\n  hostname: 127.0.0.2\n  port: 1\n"
                                "  data: {ipv4: 10.0.0.2}\n",
                                defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    before = (inventory / "hosts.yaml").read_text()
    for args in (["run", "setup", "--dry-run"], ["run", "mesh"]):
        done = fleet(*args, "-i", inventory, "--json", inventory / "hosts.yaml", cwd=tmp_path)
        assert done.returncode == 2 and "which this run reads" in done.stderr, done.stderr
    assert (inventory / "hosts.yaml").read_text() == before


def test_a_bad_fleet_persist_value_breaks_only_run(tmp_path):
    import os

    env = {**os.environ, "FLEET_PERSIST": "junk"}
    listed = subprocess.run([sys.executable, "-m", "fleet", "inventory", "-i", REPO / "inventory"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    run = subprocess.run([sys.executable, "-m", "fleet", "run", "setup", "-i", REPO / "inventory"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 2 and "$FLEET_PERSIST: 'junk'" in run.stderr


def test_a_missing_key_file_is_an_inventory_error_before_connecting(tmp_path):
    # 192.0.2.1 is never contacted: the check comes first
    inventory = write_inventory(tmp_path / "inv", "a:\n  hostname: 192.0.2.1\n"
                                "  data: {ipv4: 10.0.0.1}\n  connection_options:\n    asyncssh:\n"
                                "      extras:\n        client_keys: [no-such-key]\n",
                                defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    done = fleet("run", "setup", "-i", inventory, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "hosts.yaml: host 'a': field 'connection_options.asyncssh.extras.client_keys'" in done.stderr
    assert "no-such-key" in done.stderr
    assert fleet("inventory", "-i", inventory, cwd=tmp_path).returncode == 0


def test_host_key_checking_takes_openssh_words():
    done = fleet("run", "setup", "--host-key-checking", "maybe", "-i", REPO / "inventory")
    assert done.returncode == 2 and "invalid choice: 'maybe'" in done.stderr
    helped = fleet("run", "setup", "--help")
    assert "--host-key-checking {yes,accept-new,no}" in helped.stdout
    assert "--no-host-key-checking" in helped.stdout


def run_with_300_files(tmp_path, *command):
    """`fleet COMMAND -i INV` with 60 hosts whose ports refuse at once (bound, never listening),
    under an open-file limit of 300 (hard and soft)."""
    import resource
    import socket

    closed = [socket.socket() for _ in range(60)]
    try:
        for s in closed:
            s.bind(("127.0.0.1", 0))
        hosts = "".join(f"h{i}:\n  hostname: 127.0.0.1\n  port: {s.getsockname()[1]}\n"
                        f"  data: {{ipv4: 10.0.0.{i + 1}}}\n" for i, s in enumerate(closed))
        inventory = write_inventory(tmp_path / "inv", hosts,
                                    defaults="data:\n  isatap_prefix: 'fd00::/64'\n")

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

        return subprocess.run([sys.executable, "-m", "fleet", *command, "-i", str(inventory),
                               "--connect-timeout", "5"], capture_output=True, text=True, cwd=REPO,
                              timeout=120, preexec_fn=low_limit)
    finally:
        for s in closed:
            s.close()


TOO_MANY = ("60 hosts: this process may open only 300 files (ulimit -n), so hosts past about 44 in "
            "it will fail with 'Too many open files'")


def test_more_hosts_than_the_process_may_open_files_is_warned_of_before_connecting(tmp_path):
    """Each host's connection is an open file for the whole run: a fleet past `ulimit -n` hears
    so, with the way out, before the first login (here every port refuses: nothing listens)."""
    done = run_with_300_files(tmp_path, "run", "mesh", "--cluster", "no", "--no-progress")
    assert done.stderr.startswith(f"fleet: warning: {TOO_MANY}"), done.stderr  # the run's first word
    assert "Connection refused" in done.stdout and done.returncode != 0  # and the run went on


def test_a_watch_of_more_hosts_than_it_may_open_files_is_warned_of_too(tmp_path):
    done = run_with_300_files(tmp_path, "watch", "--rounds", "1", "--every", "1")
    assert done.stderr.startswith(f"fleet: warning: {TOO_MANY}; raise the limit (ulimit -Hn) or "
                                  "watch fewer hosts per process (-l/-g)"), done.stderr
    assert done.returncode != 0


def test_a_process_out_of_files_says_so_instead_of_what_a_library_made_of_it():
    """Out of descriptors, asyncssh's reading of the ssh config fails as "Unknown local
    username": fleet's message names the real cause."""
    script = (
        "import resource, os\n"
        "from fleet.core.oslimits import out_of_files\n"
        "assert out_of_files() == ''\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "held = []\n"
        "try:\n"
        "    while True: held.append(os.open(os.devnull, os.O_RDONLY))\n"
        "except OSError: pass\n"
        "print(out_of_files())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Too many open files (this process may hold 64 files, ulimit -n)"

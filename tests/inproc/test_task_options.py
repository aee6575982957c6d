"""Task options on the command line: typed params become options, shared ones are shared, and a
flag two tasks define differently is a usage error naming both, before any host is touched."""

import json

from conftest import REPO, write_inventory
from test_cli import fleet

from fleet.catalog import task
from fleet.cli import build_parser
from fleet.tasks.mesh import MeshParams
from fleet.tunnel.params import TunnelParams

HELLO = ('"""Say hello."""\n'
         "def add_arguments(parser):\n"
         "    group = parser.add_argument_group('hello')\n"
         "    group.add_argument('--greeting', default='hi')\n"
         "    group.add_argument('--loud', action='store_true')\n"
         "async def run(host):\n"
         "    out = await host.run('echo ' + host.params.greeting, check=True)\n"
         "    return host.result({'summary': out.stdout.strip()})\n")


def user_task(tmp_path, name, text):
    tasks = tmp_path / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"{name}.py").write_text(text)
    return tasks


def parsed(argv, tasks):
    parser, options = build_parser(tasks)
    namespace = parser.parse_args(argv)
    return {t.name: options.params(t, namespace) for t in tasks}


def test_typed_params_come_from_the_options_and_shared_params_are_shared(tmp_path):
    tasks_dir = user_task(tmp_path, "hello", HELLO)
    tasks = [task("setup"), task("mesh"), task("teardown"), task("hello", [tasks_dir])]
    params = parsed(["run", "setup", "mesh", "teardown", "hello", "--count", "5", "--peers", "2",
                     "--replace", "--greeting", "hey"], tasks)
    assert params["mesh"] == MeshParams(count=5, peers=2)
    assert params["setup"] == params["teardown"] == TunnelParams(replace=True)
    assert vars(params["hello"]) == {"greeting": "hey", "loud": False}
    defaults = parsed(["run", "mesh", "setup"], tasks[:2])
    assert defaults == {"setup": TunnelParams(), "mesh": MeshParams()}


def test_two_tasks_defining_one_flag_is_a_usage_error_naming_both(tmp_path):
    tasks_dir = user_task(tmp_path, "counter", '"""Counts."""\n'
                          "def add_arguments(parser):\n    parser.add_argument('--count', type=int)\n"
                          "async def run(host):\n    return host.result()\n")
    user_task(tmp_path, "hello", HELLO)
    inventory = write_inventory(tmp_path / "inv", "a:\n  hostname: 127.0.0.1\n  port: 1\n"
                                "  data: {ipv4: 10.0.0.1}\n",
                                defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    done = fleet("run", "mesh", "hello", "counter", "--greeting", "hey", "-i", inventory,
                 "--tasks-dir", tasks_dir, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "tasks 'mesh' and 'counter' both define --count" in done.stderr
    assert "unrecognized arguments" not in done.stderr


def test_a_task_option_that_is_one_of_fleet_runs_own_is_a_usage_error(tmp_path):
    tasks_dir = user_task(tmp_path, "greedy", '"""Wants --json."""\n'
                          "def add_arguments(parser):\n    parser.add_argument('--json')\n"
                          "async def run(host):\n    return host.result()\n")
    done = fleet("run", "greedy", "--tasks-dir", tasks_dir, "-i", REPO / "inventory", cwd=tmp_path)
    assert done.returncode == 2
    assert "task 'greedy' defines --json, which is an option of fleet run itself" in done.stderr


def test_options_of_several_tasks_reach_each_task_wherever_they_stand(tmp_path):
    # A value of a task option is not taken for a task name, before or after the tasks.
    user_task(tmp_path, "hello", HELLO)
    write_inventory(tmp_path / "inventory", "a:\n  hostname: 127.0.0.1\n  port: 1\n"
                    "  data: {ipv4: 10.0.0.1}\nb:\n  hostname: 127.0.0.2\n  port: 1\n"
                    "  data: {ipv4: 10.0.0.2}\n", defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    for argv in (["--greeting", "hey", "mesh", "hello"], ["mesh", "hello", "--greeting", "hey"]):
        done = fleet("run", *argv, "--count", "2", "--connect-timeout", "2", "--json", "-",
                     cwd=tmp_path)
        assert done.returncode == 1, done.stderr  # the host's port is closed: it fails, as data
        mesh, hello = json.loads(done.stdout)["tasks"]
        assert mesh["probe"]["count"] == 2 and hello["task"] == "hello"
        assert hello["hosts"][0]["error_kind"] == "unreachable"


def test_a_bad_parameter_is_a_usage_error_before_any_host_is_touched():
    done = fleet("run", "mesh", "--count", "0", "-i", REPO / "inventory")
    assert done.returncode == 2 and "mesh: --count must be between 1 and 1000" in done.stderr
    done = fleet("run", "mesh", "--peers", "0", "-i", REPO / "inventory")
    assert done.returncode == 2 and "--peers must be at least 1" in done.stderr

"""Finding one's way on the command line: `fleet run --help` lists the tasks, `fleet run TASK --help`
their options, and a mistyped option, task or command is answered by the parser of the command it
was typed for, on one line, with the closest name."""

import pytest
from test_cli import fleet

from fleet.cli import main

BROKEN = '"""Never loads."""\nimport no_such_module_anywhere\n'
HELLO = ('"""Say hello to every host.\n\nMore text that --help does not show.\n"""\n'
         "def add_arguments(parser):\n"
         "    parser.add_argument('--greeting', default='hi')\n"
         "async def run(host):\n"
         "    return host.result()\n")


def cli(capsys, *argv):
    """fleet.cli.main in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def task_lines(help_text):
    """The task listing at the end of `fleet run --help`: {name: description}."""
    section = help_text.split("\ntasks (", 1)[1].split("\n\n", 1)[0]
    return dict(line.strip().split(None, 1) for line in section.splitlines()[1:])


def test_run_help_lists_every_task_and_says_how_to_see_its_options(capsys):
    code, out, err = cli(capsys, "run", "--help")
    assert code == 0 and err == ""
    assert task_lines(out) == {
        "mesh": "Ping every host's ISATAP address from every other host; show the reachability "
                "matrix.",
        "setup": "Configure the ISATAP tunnel sit1 on every host, changing only what differs.",
        "teardown": "Remove the ISATAP tunnel sit1 that fleet manages, and nothing else."}
    assert "`fleet run TASK --help` also lists TASK's own options" in out
    assert "--count" not in out.split("\ntasks (")[0]  # no task was named: no task's options


def test_run_task_help_lists_the_tasks_options(capsys):
    code, out, _ = cli(capsys, "run", "mesh", "--help")
    assert code == 0
    options = out.split("\nmesh:\n", 1)[1].split("\ntasks (")[0]
    for flag in ("--count COUNT", "--peers K", "--underlay", "--mtu", "--probe {auto,fping,python,ping}"):
        assert flag in options
    assert "above, those of mesh." in out
    code, out, _ = cli(capsys, "run", "setup", "teardown", "-h")
    assert code == 0 and "--replace" in out and "above, those of setup, teardown." in out


def test_run_help_lists_tasks_of_tasks_dir_and_of_dot_tasks_and_survives_a_broken_one(
        capsys, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hello.py").write_text(HELLO)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "broken.py").write_text(BROKEN)
    monkeypatch.chdir(tmp_path)  # ./tasks is the working directory's
    code, out, _ = cli(capsys, "run", "--help", "--tasks-dir", mine)
    assert code == 0
    listed = task_lines(out)
    assert listed["hello"] == "Say hello to every host."
    assert listed["broken"].startswith("(cannot be loaded: ")
    assert "no_such_module_anywhere" in listed["broken"]
    assert {"mesh", "setup", "teardown"} <= set(listed)
    code, out, _ = cli(capsys, "run", "hello", "--tasks-dir", mine, "--help")
    assert code == 0 and "--greeting GREETING" in out


@pytest.mark.parametrize("argv, usage, error", [
    (["run", "mesh", "--cout", "5"], "usage: fleet run ",
     "fleet run: error: unknown option --cout; did you mean --count?"),
    (["run", "mesh", "--cout=5", "--dryrun"], "usage: fleet run ",
     "fleet run: error: unknown option --cout; did you mean --count?; "
     "unknown option --dryrun; did you mean --dry-run?"),
    (["run", "mehs"], "usage: fleet run ", "fleet run: error: no task 'mehs'; did you mean mesh?"),
    (["run", "setup", "meshh", "--count", "2"], "usage: fleet run ",
     "fleet run: error: no task 'meshh'; did you mean mesh?"),
    (["run", "mesh", "--probe", "fpng"], "usage: fleet run ",
     "fleet run: error: argument --probe: invalid choice: 'fpng' (choose from auto, fping, python, "
     "ping); did you mean fping?"),
    (["reprot", "mesh.json"], "usage: fleet [-h]",
     "fleet: error: unknown command 'reprot'; did you mean report?"),
    (["report", "mesh.json", "--baseln", "old.json"], "usage: fleet report ",
     "fleet report: error: unknown option --baseln; did you mean --baseline?"),
    (["report", "mesh.json", "other.json"], "usage: fleet report ",
     "fleet report: error: unexpected argument: other.json"),
    (["lab", "up", "--hostz", "3"], "usage: fleet lab up ",
     "fleet lab up: error: unknown option --hostz; did you mean --hosts?"),
    (["lab", "upp"], "usage: fleet lab ", "fleet lab: error: unknown command 'upp'; did you mean up?"),
    (["lab", "rest"], "usage: fleet lab ",
     "fleet lab: error: unknown command 'rest'; did you mean reset?"),
])
def test_a_mistake_is_answered_by_its_own_command_with_the_closest_name(capsys, tmp_path, argv, usage,
                                                                        error):
    # An inventory that does not exist: the mistake is found before anything is read.
    code, out, err = cli(capsys, *argv, *(["-i", tmp_path / "none"] if argv[0] == "run" else []))
    assert code == 2 and out == ""
    assert err.startswith(usage)
    lines = err.rstrip("\n").splitlines()
    assert lines[-1] == error
    assert sum("error:" in line for line in lines) == 1


def test_lab_reset_without_a_lab_says_so(capsys, tmp_path):
    code, out, err = cli(capsys, "lab", "reset", "--workdir", tmp_path / "none")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"fleet lab: error: no lab is up in {tmp_path / 'none'}"]


def test_an_unknown_task_without_a_close_name_lists_the_tasks_there_are(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hello.py").write_text(HELLO)
    code, _, err = cli(capsys, "run", "zzz", "--tasks-dir", mine)
    assert code == 2
    assert err.splitlines()[-1] == ("fleet run: error: no task 'zzz' (tasks: hello, mesh, setup, "
                                    "teardown; `fleet run --help` lists them)")
    code, _, err = cli(capsys, "run", "helo", "--tasks-dir", mine)
    assert err.splitlines()[-1] == "fleet run: error: no task 'helo'; did you mean hello?"


def test_the_installed_command_answers_the_same_way():
    done = fleet("run", "mesh", "--cout", "5")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["usage: fleet run [options] TASK [TASK ...]",
                                        "fleet run: error: unknown option --cout; did you mean --count?"]
    done = fleet("reprot")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == "fleet: error: unknown command 'reprot'; did you mean report?"

"""JUnit XML from synthetic reports, read back by junitparser (an independent reader)."""

from formats_meshes import ERROR, UNREACHABLE, Finding, hosts_outcome, mesh_of, mesh_outcome
from junitparser import Error, Failure, JUnitXml, Skipped

from fleet.formats import write_artifacts


def suites(path):
    return {suite.name: suite for suite in JUnitXml.fromfile(str(path))}


def cases(suite):
    return {case.name: case for case in suite}


def test_a_case_per_directed_pair_and_per_host_with_the_failures_numbers(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h3", "h2"): ERROR})
    finding = Finding("asymmetric", ("h1", "h3"), "h3 -> h1 ok but h1 -> h3 unreachable")
    other = Finding("host", ("h9",), "about another host")
    outcomes = [hosts_outcome("setup", {"h1": "changed", "h2": "failed", "h3": "interrupted"}),
                mesh_outcome(mesh, findings=(finding, other))]
    target = tmp_path / "out.xml"
    assert write_artifacts(outcomes, junit=target) == [target]
    found = suites(target)
    assert sorted(found) == ["fleet.mesh", "fleet.setup"]

    setup = found["fleet.setup"]
    assert (setup.tests, setup.failures, setup.skipped) == (3, 1, 1)
    by_host = cases(setup)
    assert by_host["h1"].is_passed and by_host["h1"].classname == "fleet.setup"
    (failure,) = by_host["h2"].result
    assert isinstance(failure, Failure) and failure.type == "unreachable"
    assert "cannot connect to 10.0.0.1:22" in failure.message
    assert isinstance(by_host["h3"].result[0], Skipped)

    pairs = found["fleet.mesh"]
    assert (pairs.tests, pairs.failures, pairs.errors) == (6, 1, 1)
    by_pair = cases(pairs)
    assert sorted(by_pair) == ["h1 -> h2", "h1 -> h3", "h2 -> h1", "h2 -> h3", "h3 -> h1", "h3 -> h2"]
    assert by_pair["h2 -> h1"].is_passed
    (lost,) = by_pair["h1 -> h3"].result
    assert isinstance(lost, Failure) and lost.type == "unreachable"
    assert lost.message == "h1 -> h3: unreachable, 100% loss"
    for line in ("state: unreachable", "sent: 3", "received: 0", "loss: 100%",
                 "finding (asymmetric): h3 -> h1 ok but h1 -> h3 unreachable"):
        assert line in lost.text
    assert "another host" not in lost.text
    (error,) = by_pair["h3 -> h2"].result
    assert isinstance(error, Error) and "could not tell" in error.message
    assert "error: source failed: cannot connect" in error.text


def test_hostile_host_names_are_escaped_and_read_back_as_they_were(tmp_path):
    names = ['<b>&"x\'', "evil]]>\x1b[31m", "plain"]
    mesh = mesh_of(names, {(names[0], names[1]): UNREACHABLE})
    target = tmp_path / "out.xml"
    write_artifacts([mesh_outcome(mesh)], junit=target)
    by_pair = cases(suites(target)["fleet.mesh"])
    assert '<b>&"x\' -> plain' in by_pair
    # XML cannot carry ESC: it is replaced, the rest of the name is kept
    assert '<b>&"x\' -> evil]]>\ufffd[31m' in by_pair
    assert len(by_pair) == 6


def test_no_file_for_tasks_it_has_nothing_to_say_about(tmp_path):
    from types import SimpleNamespace

    target = tmp_path / "out.xml"
    assert write_artifacts([SimpleNamespace(task="custom", report=object())], junit=target) == []
    assert not target.exists()

"""The README and docs/*.md against the tree they describe: every `fleet` command in a shell block
is accepted by fleet's own command line (parsed only, nothing runs) and every usage error shown is
the one fleet prints; every relative link leads to a file (and heading) that exists, and so does
every repository path the README and the layout name; the JSON examples are valid reports; the
tables of diagnosis kinds and of IAM actions are what the code has."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ci_recipe import fleet_rejects

from fleet.mesh.diagnosis import KINDS

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SHELL = {"", "sh", "bash", "shell"}  # the info strings of blocks that hold commands to type

FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
# A path of this repository as a page writes it: one of its top-level folders, then a path.
TOP_LEVEL = r"(?:\.ci|benchmarks|docs|examples|fleet|inventory|scripts|tasks|tests)"
REPO_PATH = re.compile(rf"(?<![\w./~$-]){TOP_LEVEL}/[\w./*-]*")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # where its body starts, 1-based
    info: str
    body: str  # dedented by the fence's own indent

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] if line[:indent].isspace() else line
                       for line in match["body"].splitlines(keepends=True))
        found.append(Block(page, text.count("\n", 0, match.start("body")) + 1,
                           match["info"].strip().lower(), body))
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks and inline code: what Markdown renders as text."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))


def command_lines(body: str) -> Iterator[str]:
    """The lines of a shell block, each continued line (trailing backslash) joined to the next."""
    pending = ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""


def fleet_argv(line: str) -> list[str] | None:
    """`fleet`'s arguments when the line runs fleet, as the shell splits them; else None."""
    if not line.lstrip().startswith("fleet "):
        return None
    words = shlex.split(line, comments=True)
    return words[1:] if words[:1] == ["fleet"] else None


def shell_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `fleet ...` line in a shell block of the README and docs/*.md."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.info in SHELL:
                found += [(block.where, argv) for line in command_lines(block.body)
                          if (argv := fleet_argv(line)) is not None]
    return found


def transcripts() -> list[tuple[str, list[str], str]]:
    """(where, argv, what it printed) of every `$ fleet ...` in a ```console block: what follows
    the prompt up to the next one is the command's output as the page shows it."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.info != "console":
                continue
            for chunk in re.split(r"^\$ ", block.body, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                argv = fleet_argv(command)
                if argv is not None:
                    found.append((block.where, argv, output))
    return found


def test_the_pages_hold_commands_and_transcripts_to_check():
    commands = shell_commands()
    assert len(commands) >= 20
    assert {where.split(":")[0] for where, _ in commands} >= {
        "README.md", "docs/commands.md", "docs/reports.md", "docs/aws.md"}
    assert any(output.startswith("usage:") for _, _, output in transcripts())


@pytest.mark.parametrize(("where", "argv"), shell_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value[:3]))
def test_every_fleet_command_in_a_shell_block_parses(where, argv):
    said = fleet_rejects(argv)
    assert said is None, f"{where}: fleet {shlex.join(argv)}: rejected by fleet's command line: {said}"


@pytest.mark.parametrize(("where", "argv", "output"), transcripts(),
                         ids=[f"{where}-{' '.join(argv[:3])}" for where, argv, _ in transcripts()])
def test_every_transcript_shows_what_fleets_command_line_says(where, argv, output):
    """A transcript that shows a usage error shows fleet's own, word for word; any other shows a
    command fleet accepts."""
    said = fleet_rejects(argv)
    if output.startswith("usage:"):
        assert said == output, f"{where}: fleet {shlex.join(argv)}"
    else:
        assert said is None, f"{where}: fleet {shlex.join(argv)}: rejected: {said}"


def test_a_command_fleet_rejects_is_caught_and_its_error_read():
    """The check above can fail: a mistyped option is rejected with fleet's message."""
    said = fleet_rejects(fleet_argv("fleet run mesh --cout 5 -i inventory") or [])
    assert said is not None and "did you mean --count?" in said
    assert fleet_rejects(["persist", "status", "[--json]"]) is not None  # a synopsis is not a command


# --- links and paths

def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", page.read_text())):
        base = slug(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in LINK.findall(prose(page))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: ...


def test_the_slugs_are_githubs():
    assert slug("Beyond the /64: ISATAP routers (PRL)") == "beyond-the-64-isatap-routers-prl"
    assert slug("Kept connections (`--persist`)") == "kept-connections---persist"
    assert slug("Protocol 41, checked") == "protocol-41-checked"


@pytest.mark.parametrize(("page", "target"), relative_links(),
                         ids=lambda value: value.name if isinstance(value, Path) else value)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page, target):
    path, _, fragment = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(REPO)}: link {target!r}: no {resolved}"
    assert resolved.is_relative_to(REPO), f"{page.relative_to(REPO)}: link {target!r} leaves the repository"
    if fragment:
        assert resolved.suffix == ".md", f"{page.relative_to(REPO)}: link {target!r}"
        assert fragment in anchors(resolved), (
            f"{page.relative_to(REPO)}: link {target!r}: no such heading in {path or page.name}")


def test_the_readme_links_every_reference_page_and_one_picture():
    linked = {target.partition("#")[0] for page, target in relative_links() if page == README}
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in linked, f"the README does not link docs/{page.name}"
    assert len([t for t in linked if re.fullmatch(r"docs/heatmap[\w-]*\.png", t)]) == 1


def repository_paths(text: str) -> set[str]:
    return {match.rstrip(".") for match in REPO_PATH.findall(text)}


def test_every_repository_path_the_readme_names_exists():
    named = repository_paths(README.read_text())
    assert {"scripts/demo", "scripts/test", "docs/ci/isatap-smoke.yml"} <= named
    missing = sorted(p for p in named if not any(REPO.glob(p.rstrip("/"))))
    assert not missing, f"the README names paths that are not in the repository: {missing}"


def layout_paths() -> set[str]:
    """The paths the layout in docs/contributing.md names: each top-level entry, and the files
    and folders listed under it (a continued line belongs to the entry above it)."""
    text = (DOCS / "contributing.md").read_text()
    (block,) = [b for b in blocks(DOCS / "contributing.md") if b.body.startswith("fleet/__init__.py")]
    assert block.info == "text" and text
    entry = re.compile(r"[\w.-]+\.py|[\w.-]+/")
    named: set[str] = set()
    top = sub = ""
    for line in block.body.splitlines():
        indent = len(line) - len(line.lstrip())
        words = [w.strip("(),;:") for w in line.split()]
        if indent == 0:  # a top-level entry; what its text says is prose
            top, sub = words[0], ""
            named.add(top)
            continue
        if indent == 2:  # an entry of the folder above: its files, or a folder and its files
            sub = words[0] if words[0].endswith("/") else ""
            names = [words[0]] + [sub + w for w in words[1:] if entry.fullmatch(w)]
        else:  # a continued line, of the entry above
            names = [sub + w for w in words if entry.fullmatch(w)]
        if top.endswith("/"):
            named.update(top + name for name in names if entry.fullmatch(name.split("/")[-1] or name))
    return named


def test_every_path_of_the_layout_exists():
    named = layout_paths()
    assert {"fleet/ssh/persist/wire.py", "fleet/cli/parser.py", "tests/golden/",
            "fleet/aws/protocol41.py"} <= named
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             timeout=60).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout: nothing to compare the layout with")
    folders = {str(Path(f).parent) + "/" for f in tracked} | {
        str(parent) + "/" for f in tracked for parent in Path(f).parents}
    missing = sorted(p for p in named if p not in tracked and p not in folders)
    assert not missing, f"the layout names what the tree does not hold: {missing}"


# --- what the pages show, against the code

def test_every_json_example_is_a_valid_report():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DOCS / "schema" / "report.schema.json").read_text())
    examples = [b for page in PAGES for b in blocks(page) if b.info == "json"]
    assert len(examples) >= 2
    for example in examples:
        document = json.loads(example.body)
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
        assert not errors, f"{example.where}: {errors[0].message}"


def section(page: Path, heading: str) -> str:
    text = page.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_table_of_diagnosis_kinds_is_the_diagnosis():
    table = section(DOCS / "failure-semantics.md", "## Verdict and diagnosis")
    listed = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M)
    assert len(listed) == len(set(listed))
    assert set(listed) == set(KINDS)


BOTO3_OWN = {"get_paginator", "get_waiter", "can_paginate", "close"}  # client methods, not AWS calls


def aws_calls() -> set[str]:
    """Every AWS API action fleet's AWS code calls, read from its source: operations named to the
    pager and to boto3's paginators, and client methods called by name."""
    calls = set()
    for path in (REPO / "fleet" / "aws").glob("*.py"):
        source = path.read_text()
        operations = re.findall(r'_pages\(\s*[\w.()]+,\s*"(\w+)"', source)
        operations += re.findall(r'get_paginator\("(\w+)"\)', source)
        operations += re.findall(r"\b(?:client|sts)\.([a-z]+(?:_[a-z0-9]+)+)\(", source)
        for operation in set(operations) - BOTO3_OWN:
            service = "sts" if operation == "assume_role" else "ec2"
            calls.add(f"{service}:" + "".join(word.capitalize() for word in operation.split("_")))
    return calls


@pytest.mark.parametrize("page", [README, DOCS / "aws.md"], ids=lambda p: p.name)
def test_the_iam_permissions_are_the_calls_fleets_aws_code_makes(page):
    calls = aws_calls()
    assert {"ec2:DescribeInstances", "ec2:AuthorizeSecurityGroupIngress", "sts:AssumeRole"} <= calls
    text = page.read_text()
    rows = text[text.index("\n| Who |") + 1:].splitlines()
    table = "\n".join(rows[:next(i for i, row in enumerate(rows) if not row.startswith("|"))])
    assert set(re.findall(r"\b(?:ec2|sts):[A-Z]\w+", table)) == calls


def test_every_ec2_source_shown_is_one_fleet_reads():
    """The EC2 inventory files the pages show, read by fleet's own reader (no AWS call)."""
    from ruamel.yaml import YAML

    from fleet.aws.ec2_inventory import parse_source

    shown = [b for page in PAGES for b in blocks(page)
             if b.info == "yaml" and re.search(r"^plugin: fleet\.aws_ec2$", b.body, flags=re.M)]
    assert {b.page for b in shown} >= {README, DOCS / "aws.md"}
    for block in shown:
        source = parse_source(Path("aws_ec2.yaml"), YAML(typ="safe").load(block.body))
        assert source.include, block.where

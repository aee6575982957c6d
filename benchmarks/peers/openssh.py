"""OpenSSH fan-out: `xargs -P 50` running one `ssh` per host, as a shell user would.

    xargs -P 50 -L 1 -a LIST \
        sh -c 'ssh OPTIONS -p PORT root@ADDR CMD >OUT/NAME 2>&1; echo $? >OUT/NAME.rc' OUT

OPTIONS: BatchMode, the bed's key only, the bed's known_hosts with strict checking, no
ControlMaster, and `-o KexAlgorithms=curve25519-sha256` (OpenSSH 9.x's default key exchange is the
post-quantum sntrup761x25519, several times dearer in client CPU; `openssh_default_kex` measures
that). A small `sh` per host keeps each host's output apart (one fork, no exec of anything else).
"""

from __future__ import annotations

import shlex
import shutil

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, Outcome, count

NAME = "OpenSSH xargs -P50"
JOBS = BED_JOBS
PARALLEL = 50
KEX: str | None = "curve25519-sha256"


def missing() -> str | None:
    for tool in ("ssh", "xargs"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install openssh-client findutils)"
    return None


def ssh_options(ctx: Context, kex: str | None, control: str | None = None) -> list[str]:
    """`control`: a directory for ControlPersist masters (kept connections), or None for none."""
    masters = (["-o", "ControlMaster=auto", "-o", f"ControlPath={control}/%C",
                "-o", "ControlPersist=600"] if control else
               ["-o", "ControlMaster=no", "-o", "ControlPath=none"])
    options = ["-F", "none", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-i", str(ctx.bench.key), "-o", f"UserKnownHostsFile={ctx.bench.known_hosts}",
               "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
               *masters, "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30"]
    if kex:
        options += ["-o", f"KexAlgorithms={kex}"]
    return options


def fan_out(ctx: Context, kex: str | None, control: str | None = None) -> Invocation:
    out = ctx.rundir / "out"
    out.mkdir()
    targets = {t.name: t for t in ctx.bench.targets}
    lines = []
    for source in ctx.sources:
        if "'" in source.command:
            raise ValueError("xargs quoting: the command must not contain a single quote")
        t = targets[source.host]
        lines.append(f"{source.host} {t.address} {t.port} '{source.command}'\n")
    listing = ctx.rundir / "hosts.list"
    listing.write_text("".join(lines))
    ssh = shlex.join(["ssh", *ssh_options(ctx, kex, control)])
    script = f'{ssh} -p "$3" {ctx.bench.user}@"$2" "$4" >"$0/$1" 2>&1; echo $? >"$0/$1.rc"'
    argv = [*ctx.bench.prefix, "xargs", "-P", str(PARALLEL), "-L", "1", "-a", str(listing),
            "sh", "-c", script, str(out)]

    def collect(_: object) -> Outcome:
        per_host = {}
        for source in ctx.sources:
            try:
                output = (out / source.host).read_text(errors="replace")
                status = int((out / f"{source.host}.rc").read_text().strip())
            except (OSError, ValueError) as exc:
                per_host[source.host] = (None, None, f"no output: {exc}")
                continue
            error = output.strip().splitlines()[-1] if status == 255 and output.strip() else None
            per_host[source.host] = (output, status, error)
        return count(ctx, per_host)

    return Invocation(argv, collect)


def invocation(ctx: Context) -> Invocation:
    return fan_out(ctx, KEX)

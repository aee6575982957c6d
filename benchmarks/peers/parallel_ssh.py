"""parallel-ssh's ParallelSSHClient (libssh2 through ssh2-python, gevent), one command per host.

pool_size 100 (its default); per-host commands through `host_args`. libssh2 does not check host
keys here (parallel-ssh does not by default). Key exchange: libssh2's preference.
"""

from __future__ import annotations

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, driver_invocation, load_spec, write_results

NAME = "parallel-ssh"
JOBS = BED_JOBS
POOL = 100


def missing() -> str | None:
    try:
        import pssh  # noqa: F401
    except ImportError:
        return "parallel-ssh is not installed (benchmarks/install)"
    return None


def invocation(ctx: Context) -> Invocation:
    return driver_invocation(ctx, "parallel_ssh", pool=POOL)


def main() -> None:
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig

    spec = load_spec()
    hosts = spec["hosts"]
    client = ParallelSSHClient(
        [h["address"] for h in hosts], user=spec["user"], pkey=spec["key"],
        pool_size=spec["pool"], timeout=30, num_retries=1,
        host_config=[HostConfig(port=h["port"], user=spec["user"], private_key=spec["key"])
                     for h in hosts])
    outputs = client.run_command("%s", host_args=[(h["command"],) for h in hosts],
                                 stop_on_errors=False)
    client.join(outputs)
    results = {}
    for host, output in zip(hosts, outputs):
        if output.exception is not None:
            results[host["name"]] = {"exit": None, "output": None,
                                     "error": f"{type(output.exception).__name__}: {output.exception}"}
            continue
        text = "\n".join(output.stdout) + "\n" + "\n".join(output.stderr)
        results[host["name"]] = {"exit": output.exit_code, "output": text, "error": None}
    write_results(spec, results)


if __name__ == "__main__":
    main()

"""The shards' runs of one task merged into the one RunOutcome a single process would have given.

Every selected host gets exactly one Result, of the parent's own Nornir host: the one its shard
gave back, `connection-lost` when its shard's worker was lost (the worker held the host's SSH
connection, which ended with it, and what the host did is not known), or `interrupted` when the
run was stopped before its shard answered. The task's report is then computed once, from this, by the
task's own code: no verdict is made per shard.
"""

from __future__ import annotations

from collections.abc import Sequence

from nornir.core.task import AggregatedResult, MultiResult

from fleet.cluster.wire import ShardRun
from fleet.core.errors import ConnectionLostError, HostError, HostInterrupted
from fleet.core.results import RunOutcome, failed_result
from fleet.core.runner import INTERRUPTED
from fleet.core.transport import RunTarget

Answer = ShardRun | BaseException | None  # None: not answered (the run was stopped first)


def merge(task: str, hosts: Sequence[RunTarget], shards: Sequence[range],
          answers: Sequence[Answer], *, stopped: bool, elapsed: float) -> RunOutcome:
    """`answers[i]` is shard i's (over `hosts[j] for j in shards[i]`)."""
    results = AggregatedResult(task)
    interrupted = stopped
    for number, (shard, answer) in enumerate(zip(shards, answers)):
        given = {}
        if isinstance(answer, ShardRun):
            interrupted = interrupted or answer.interrupted
            given = {outcome.host: outcome for outcome in answer.hosts}
        for index in shard:
            host = hosts[index]
            multi = MultiResult(task)
            outcome = given.get(host.name)
            if outcome is not None:
                multi.append(outcome.to_result(host.nornir_host, task))
            else:
                multi.append(failed_result(host.nornir_host, task, _missing(host.name, number,
                                                                            answer)))
            results[host.name] = multi
    return RunOutcome(results, interrupted, elapsed)


def _missing(host: str, shard: int, answer: Answer) -> HostError:
    if isinstance(answer, BaseException):
        why = f"{type(answer).__name__}: {answer}".rstrip(": ")
        return ConnectionLostError(host, f"the cluster worker of shard {shard + 1}, which held this "
                                   f"host's connection, was lost before the host's result came "
                                   f"back ({why}); what the host did is not known")
    if answer is None:
        return HostInterrupted(host, INTERRUPTED)
    return ConnectionLostError(host, f"the cluster worker of shard {shard + 1} gave no result for "
                               "this host")


__all__ = ["merge"]

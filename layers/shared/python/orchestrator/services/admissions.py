"""Dispatches that died between taking their Domain slot and starting their workflow.

A dispatch writes an admission marker in the transaction that takes the slot and
deletes it in the write that records the workflow run. An exception in between is
handled on the spot (:func:`orchestrator.services.dispatch.abandon`); a function
that dies outright (timeout, out of memory, a lost container) leaves the marker.
A scheduled sweep finds markers older than ``ADMISSION_GRACE`` (well past the
dispatch function's 29 s timeout, so that dispatch is certainly gone) and either
records the run that did start, or ends the Execution as ``failed`` and gives the
slot back. Either way no slot leaks and no Execution is left that never ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from orchestrator.errors import DispatchAbandoned
from orchestrator.observability import logger
from orchestrator.services.context import Context
from orchestrator.services.dispatch import abandon
from orchestrator.services.workflow_port import WorkflowStarter

ADMISSION_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class SweepResult:
    resumed: int  # the workflow had started; only its record was missing
    abandoned: int  # failed, slot released


def sweep_stalled_admissions(
    ctx: Context, workflow: WorkflowStarter, grace: timedelta = ADMISSION_GRACE
) -> SweepResult:
    """Settle every admission older than ``grace`` (idempotent: a second run finds nothing)."""
    resumed = abandoned = 0
    for execution_id in ctx.executions.admissions_before(ctx.clock.now() - grace):
        execution = ctx.executions.get(execution_id)
        if execution is None:  # cannot happen (one transaction wrote both); nothing to settle
            ctx.executions.take_admission(execution_id)
            continue
        run_arn = workflow.existing(execution_id)
        if run_arn is not None:
            # The run owns the Execution from here: it times out, finalizes and releases.
            try:
                ctx.executions.mark_workflow_started(execution_id, run_arn)
            except DispatchAbandoned:
                continue  # the dispatch recorded it meanwhile
            resumed += 1
            continue
        if abandon(ctx, execution, actor="admission_sweep"):
            abandoned += 1
    if resumed or abandoned:
        logger.warning("stalled admissions settled", resumed=resumed, abandoned=abandoned)
    return SweepResult(resumed=resumed, abandoned=abandoned)

"""Multi-step flows as explicit step lists, each step with its rollback.

    flow = Flow("resize")
    flow.step("claim destination", claim, undo=release)
    flow.step("move guest", move, undo=move_back)
    await flow.run()

``run`` executes the steps in order; when one raises, the undos of the
steps already done run in reverse order (each undo's own failure is logged
and does not stop the others), then the original error is raised again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("stratus.compute.conductor")

StepFn = Callable[[], Awaitable[None]]


@dataclass
class _Step:
    name: str
    do: StepFn
    undo: StepFn | None


@dataclass
class Flow:
    name: str
    steps: list[_Step] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def step(self, name: str, do: StepFn, undo: StepFn | None = None) -> None:
        self.steps.append(_Step(name, do, undo))

    async def run(self) -> None:
        completed: list[_Step] = []
        for step in self.steps:
            try:
                await step.do()
            except BaseException as exc:
                log.warning("flow %s failed at step %r: %s", self.name, step.name, exc)
                for prior in reversed(completed):
                    if prior.undo is None:
                        continue
                    try:
                        await prior.undo()
                    except Exception:
                        log.exception("rollback of step %r of %s failed", prior.name, self.name)
                raise
            completed.append(step)
            self.done.append(step.name)

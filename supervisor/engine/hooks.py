"""What other components do at a container's create, start, exit and remove.

The engine owns the lifecycle; networking, volumes, health checks, probes and logs
each have work at its steps (a network plan checked and committed at create, a
netns made before the start and torn down at the exit, probes started with the
init...).  Rather than the engine calling each of them by name, each is a `Hooks`
the engine calls in turn at every step, so the engine knows the steps and not the
components, and a component sees the container only through its record.

Order: hooks run in the order the engine was given them; the undoing steps
(`start_failed`, `exited`, `removed`) run in reverse, so what was set up last is
taken down first, as an exit stack would.

`NoHooks` does nothing at every step: a component overrides the steps it cares for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from supervisor.engine.live import Live
from supervisor.metadata.containers import Container


@dataclass
class Draft:
    """A create being checked: what it asks for, before any record exists.

    `plans` is where a hook keeps what its check decided (a network plan) for its
    `created` step, by its own key."""

    cid: str
    name: str
    body: dict[str, Any]
    host_config: dict[str, Any]
    config: dict[str, Any]
    plans: dict[str, object] = field(default_factory=dict)


class Hooks(Protocol):
    def check_create(self, draft: Draft) -> None:
        """Refuse a bad create before anything exists (raise a CorralError)."""

    def created(self, c: Container, draft: Draft) -> None:
        """The record is being added: in its transaction, so rows commit with it."""

    def create_failed(self, cid: str) -> None:
        """The create was rolled back: forget what `created` kept in memory."""

    async def starting(self, c: Container) -> None:
        """Before the runtime spec is made (its netns, its volumes mounted).  On a
        failure of this or a later step `start_failed` undoes it."""

    async def start_failed(self, c: Container) -> None:
        """Undo `starting` (shielded from cancellation); safe if it did not run."""

    def running(self, c: Container, live: Live, *, restored: bool) -> None:
        """The init runs (`live.pidfd` is its): just created, or adopted after a
        daemon restart (`restored`).  Must not await: start tasks in a nursery."""

    def started(self, c: Container) -> None:
        """`runc start` succeeded, before the `start` event."""

    async def exited(self, c: Container) -> None:
        """The init exited: take down what `starting` set up, before the exit is
        recorded.  A failure is logged and the exit recorded all the same."""

    def died(self, c: Container) -> None:
        """The exit is recorded and its `die` event published."""

    def removed(self, c: Container, *, volumes: bool) -> None:
        """The record is being removed (`volumes`: its anonymous volumes too)."""


class NoHooks:
    """Every step does nothing: subclass it and override the steps you need."""

    def check_create(self, draft: Draft) -> None:
        return None

    def created(self, c: Container, draft: Draft) -> None:
        return None

    def create_failed(self, cid: str) -> None:
        return None

    async def starting(self, c: Container) -> None:
        return None

    async def start_failed(self, c: Container) -> None:
        return None

    def running(self, c: Container, live: Live, *, restored: bool) -> None:
        return None

    def started(self, c: Container) -> None:
        return None

    async def exited(self, c: Container) -> None:
        return None

    def died(self, c: Container) -> None:
        return None

    def removed(self, c: Container, *, volumes: bool) -> None:
        return None

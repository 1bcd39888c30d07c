"""A sweep's lock, kept in its store: one process at a time runs a sweep (first run or resume).

Why a lock: ``resume=true`` decides which jobs still have to run and closes the runs the sweep
left RUNNING as KILLED. Both are right only when no other process is running the same sweep:
two resumes at once would train the same jobs twice, and a resume while the first sweep is
alive would close its live runs. So every sweep, resumed or not, holds the lock of its
``sl.sweep_signature`` (in its experiment) for as long as it runs; a process that holds it
knows any RUNNING run of the sweep belongs to a process that died.

Why in the store: the processes that must exclude each other are those that write to the same
store, which may be a SQLite file or an MLflow server used from several machines; a file lock
beside a SQLite database would not cover a server, and MLflow has no lock of its own. The one
atomic test-and-set both backends offer is the unique experiment name: ``create_experiment``
of a name that exists fails (a unique constraint in the database behind either), so the lock
is an experiment named ``softmax-lab-lock/<experiment id>/<sweep signature>``, created with
its holder's tags in the same call (host, pid, the pid's start time, boot id, since when).
Release renames it to a unique ``softmax-lab-lock-released/…`` name, then deletes it (a
deleted experiment still reserves its name; ``mlflow gc`` removes them for good). Every step
after the creation acts on the lock experiment's id, never its name, so a process never
releases or takes over a lock another process has taken since.

A holder killed outright (SIGKILL, power loss) leaves its lock behind. On the holder's own host
that is seen for sure: the pid is gone, or is a zombie, or belongs to another process (its
start time differs), or the machine rebooted since (another boot id); such a stale lock is
taken over. From another host nothing tells a dead holder from a slow one, so acquiring fails
with one line naming the holder, the lock's age and how to break it: ``mlflow experiments
delete`` of the lock experiment, which the next sweep then frees (a deleted lock counts as
released). A locked sweep fails at once rather than waiting: a sweep can run for hours, a
waiting command would give no sign of life, and once the holder ends there is nothing left to
run anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Experiment
from mlflow.exceptions import MlflowException

from softmax_lab.errors import SweepLockedError, TrackingError
from softmax_lab.tracking.store import artifact_root_for, resolve_uri, retry_locked

__all__ = [
    "LOCK_PREFIX",
    "RELEASED_PREFIX",
    "Holder",
    "SweepLock",
    "acquire_sweep_lock",
    "lock_name",
    "process_start",
]

logger = logging.getLogger(__name__)

LOCK_PREFIX = "softmax-lab-lock/"
RELEASED_PREFIX = "softmax-lab-lock-released/"
ATTEMPTS = 5  # create, find it stale or broken, free it, create again; a few rounds of races
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def lock_name(experiment_id: str, signature: str) -> str:
    """The name of the lock experiment of the sweep ``signature`` in ``experiment_id``."""
    return f"{LOCK_PREFIX}{experiment_id}/{signature}"


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks after boot (``/proc/PID/stat`` field 22),
    with its state: ``""`` when unknown (no such process, no ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19]  # fields after the name start at field 3 (state)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    """The process holding a lock, as its tags record it."""

    host: str
    pid: int
    pid_start: str  # process_start(pid) when it took the lock; "" unknown
    boot_id: str  # the host's boot id then; "" unknown
    since_ms: int  # when it took the lock, ms since the epoch

    @classmethod
    def this_process(cls) -> Holder:
        pid = os.getpid()
        now_ms = int(time.time() * 1000)
        return cls(socket.gethostname(), pid, process_start(pid), _boot_id(), now_ms)

    def tags(self) -> dict[str, str]:
        return {
            "sl.lock.host": self.host,
            "sl.lock.pid": str(self.pid),
            "sl.lock.pid_start": self.pid_start,
            "sl.lock.boot_id": self.boot_id,
            "sl.lock.since_ms": str(self.since_ms),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Holder | None:
        """The holder recorded in a lock experiment's tags; None if they are not a holder's."""
        try:
            return cls(
                tags["sl.lock.host"],
                int(tags["sl.lock.pid"]),
                tags.get("sl.lock.pid_start", ""),
                tags.get("sl.lock.boot_id", ""),
                int(tags["sl.lock.since_ms"]),
            )
        except (KeyError, ValueError):
            return None

    def is_dead(self) -> bool:
        """Whether this holder has surely ended: only known on its own host (False elsewhere)."""
        if self.host != socket.gethostname():
            return False
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return True  # rebooted since: every process of then is gone
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # another user's process of that pid: its start time tells
        if _state(self.pid) in ("Z", "X"):
            return True  # killed, not reaped yet
        now_start = process_start(self.pid)
        return bool(self.pid_start and now_start and now_start != self.pid_start)

    def describe(self) -> str:
        """e.g. ``pid 1234 on host lab-2 since 2026-12-07 10:00:00 UTC (3 h 5 min ago)``."""
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since_ms / 1000))
        age = max(0, int(time.time() - self.since_ms / 1000))
        hours, rest = divmod(age, 3600)
        ago = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
        return f"pid {self.pid} on host {self.host} since {since} ({ago} ago)"


@dataclass
class SweepLock:
    """A lock this process holds; ``release`` it when the sweep ends, however it ends."""

    uri: str
    experiment_id: str  # the lock experiment's own id
    name: str
    holder: Holder
    took_over: Holder | None = None  # the dead holder whose stale lock this one replaced
    released: bool = False

    def release(self) -> None:
        """Free the lock's name (rename), then hide it (delete). A lock someone broke
        meanwhile (deleted, or renamed away) is left as it is. Idempotent."""
        if self.released:
            return
        self.released = True
        client = MlflowClient(self.uri)
        try:
            _discard(client, self.experiment_id)
        except (MlflowException, TrackingError) as err:  # e.g. StoreFullError: the store is full
            logger.warning(
                "sweep lock %s was not released cleanly (%s); the next sweep of this command on "
                "this host takes it over",
                self.name,
                err,
            )


def _discard(client: MlflowClient, experiment_id: str) -> None:
    """Rename an active lock experiment to a unique name (freeing its name at once), delete it.

    Raises ``MlflowException`` when it is no longer active (another process discarded it)."""
    new_name = f"{RELEASED_PREFIX}{uuid.uuid4().hex}"
    retry_locked(
        f"release sweep lock {experiment_id}",
        lambda: client.rename_experiment(experiment_id, new_name),
    )
    retry_locked(
        f"delete released sweep lock {experiment_id}",
        lambda: client.delete_experiment(experiment_id),
    )


def _free_broken(client: MlflowClient, found: Experiment) -> None:
    """A lock someone deleted (broke) still reserves its name: restore it (only one process
    can: restoring an active experiment fails), then discard it as a release does."""
    try:
        retry_locked(
            f"restore broken sweep lock {found.experiment_id}",
            lambda: client.restore_experiment(found.experiment_id),
        )
    except MlflowException:
        return  # another process is freeing it
    _discard(client, found.experiment_id)


def _locked_message(name: str, holder: Holder | None, found: Experiment, uri: str) -> str:
    who = holder.describe() if holder is not None else "a process that recorded no holder"
    here = holder is not None and holder.host == socket.gethostname()
    wait = f"stop it (kill {holder.pid}) or " if here and holder is not None else ""
    return (
        f"sweep lock {name!r} is held by {who}: another sweep of this command (or a resume of "
        f"it) is running; {wait}wait for it to end, then resume with resume=true; if its process "
        f"is dead, break the lock with `MLFLOW_TRACKING_URI={uri} mlflow experiments delete "
        f"--experiment-id {found.experiment_id}`"
    )


def acquire_sweep_lock(uri: str | None, experiment_id: str, signature: str) -> SweepLock:
    """Take the lock of sweep ``signature`` in experiment ``experiment_id`` of store ``uri``.

    A lock left by a dead holder on this host is taken over (``SweepLock.took_over`` says
    whose), and a lock someone broke (deleted) is freed first.

    Raises
    ------
    SweepLockedError
        A live holder, or one on another host (which cannot be checked), holds it; the message
        names the holder, when it took the lock and how to break it.
    """
    uri = resolve_uri(uri)
    client = MlflowClient(uri)
    name = lock_name(experiment_id, signature)
    took_over: Holder | None = None
    for _ in range(ATTEMPTS):
        me = Holder.this_process()

        def create(me: Holder = me) -> str:
            return client.create_experiment(
                name, artifact_location=artifact_root_for(uri), tags=me.tags()
            )

        try:
            lock_id = retry_locked(f"take sweep lock {name!r}", create)
            return SweepLock(uri, str(lock_id), name, me, took_over)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        found = client.get_experiment_by_name(name)
        if found is None:
            continue  # released meanwhile
        if found.lifecycle_stage != "active":
            _free_broken(client, found)
            continue
        holder = Holder.from_tags(found.tags)
        if holder is None or not holder.is_dead():
            raise SweepLockedError(_locked_message(name, holder, found, uri))
        logger.warning("taking over sweep lock %s of dead %s", name, holder.describe())
        # another process may take it over first: the next creation tells who holds it then
        with contextlib.suppress(MlflowException):
            _discard(client, found.experiment_id)
        took_over = holder
    raise SweepLockedError(
        f"sweep lock {name!r} could not be taken after {ATTEMPTS} attempts: other processes "
        "keep taking and releasing it; try again"
    )

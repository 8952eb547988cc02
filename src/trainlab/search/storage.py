"""Where a study lives, and how trials of dead workers are failed instead of staying RUNNING forever.

Default: an Optuna journal file (``study.journal``) inside the search directory — embedded like SQLite, no
server, and safe for several writer processes (appends under a file lock), which a plain SQLite file is not
(Optuna's FAQ: concurrent writers lock or crash it). Any SQLAlchemy URL (``postgresql://...``) shares one
study between machines; those get Optuna's heartbeat so a trial whose process vanished is failed by the
next trial any worker starts. On one machine, a trial whose worker process is gone is failed at once
(:func:`fail_orphaned_trials`): every trial records the host and pid that run it.
"""
from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from trainlab.errors import ConfigError
from trainlab.files import DamagedFileError

__all__ = ["JOURNAL_FILE", "fail_orphaned_trials", "live_trials", "load_study", "local_storage", "open_storage",
           "repair_journal", "resolve_storage", "tag_trial"]

JOURNAL_FILE = "study.journal"
# A heartbeat every 5 s; a trial silent for 30 s is stale. Long enough for a slow epoch on a busy machine
# (the beat comes from a thread, not from the training loop), short enough that a dead machine's trial is
# failed within a minute.
HEARTBEAT_S, GRACE_S = 5, 30


def resolve_storage(storage: str | None, search_dir: Path, workers: int) -> str:
    """The storage URL to record in search.json: ``journal:<file>`` by default, else the user's URL."""
    if storage is None or storage == "journal":
        return f"journal:{(search_dir / JOURNAL_FILE).resolve()}"
    if storage.startswith("journal:"):
        return storage
    if "://" not in storage:
        raise ConfigError(f"--storage must be a database URL such as postgresql://user@127.0.0.1/db. Got {storage!r}. "
                          "Leave it out to use a journal file in the search directory.")
    if storage.startswith("sqlite") and workers > 1:
        raise ConfigError(f"--storage must be safe for several writers with --workers {workers}. Got {storage!r} "
                          "(SQLite locks under concurrent writers). Leave --storage out (a journal file is used) "
                          "or use postgresql://...")
    return storage


def open_storage(url: str) -> BaseStorage:
    """An Optuna storage for a URL from :func:`resolve_storage`; one clear line if it cannot be reached."""
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    kwargs = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S} if not url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **kwargs)
    except ImportError:  # Optuna wraps the driver's ModuleNotFoundError
        raise ConfigError(f"--storage needs its database driver installed. Got {_safe(url)!r}. "
                          "Install it, e.g. pip install 'trainlab[postgres]' (psycopg) for PostgreSQL.") from None
    except Exception as exc:  # noqa: BLE001 — SQLAlchemy raises many kinds; the user needs one line
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage must be a reachable database. Got {_safe(url)!r} ({reason}). "
                          "Check the URL, that the server runs, and the user's rights.") from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


def tag_trial(trial: optuna.Trial, worker: int) -> None:
    """Record who runs ``trial``, so a trial whose process died can be recognised."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("worker", worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_orphaned_trials(study: optuna.Study, pids: set[int] | None = None) -> list[int]:
    """Mark FAIL the RUNNING trials of this host whose process is gone (or whose pid is in ``pids``).

    Returns the numbers of the trials it failed. Trials of other hosts are left to the heartbeat.
    """
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None:
            continue
        if (pids is not None and pid in pids) or not _alive(int(pid)):
            try:
                study.tell(t.number, state=TrialState.FAIL)
                failed.append(t.number)
            except (RuntimeError, ValueError):  # another process failed or finished it first
                pass
    return failed


def live_trials(study: optuna.Study) -> dict[int, int]:
    """The RUNNING trials of this host whose process is still alive and not this one: trial number → pid."""
    host, me = socket.gethostname(), os.getpid()
    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and pid is not None and int(pid) != me and _alive(int(pid)):
            out[t.number] = int(pid)
    return out


def local_storage(url: str, recorded_dir: str | Path, search_dir: str | Path) -> str:
    """The storage of a search found in ``search_dir``: its default journal is the one inside that folder, even when
    search.json recorded another path (the folder was moved or copied), so a copy never reads or appends to the
    original's study."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if path.name == JOURNAL_FILE and path.parent == Path(recorded_dir):
            return f"journal:{(Path(search_dir) / JOURNAL_FILE).resolve()}"
    return url


def load_study(name: str, url: str, fix: str) -> optuna.Study:
    """The study ``name`` in ``url`` with every trial read; one line when the journal is damaged or lacks it."""
    where = url.removeprefix("journal:") if url.startswith("journal:") else _safe(url)
    if url.startswith("journal:") and not Path(where).is_file():  # opening it would create an empty journal
        raise DamagedFileError(f"{where} must be the journal trainlab search wrote. Got no such file (deleted or "
                               f"moved). {fix}.")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        study.get_trials(deepcopy=False)
    except KeyError:
        raise DamagedFileError(f"{where} must hold the study {name!r}. Got no such study (an empty or another "
                               f"search's journal). {fix}.") from None
    except (ValueError, UnicodeDecodeError) as exc:  # a journal line that is not JSON (json's errors are ValueErrors)
        raise DamagedFileError(f"{where} must be the journal trainlab search wrote. Got a damaged line "
                               f"({type(exc).__name__}). {fix}.") from None
    return study


def repair_journal(url: str) -> bool:
    """Cut a journal's partial last line (a process killed mid-append), as the JSON-lines logs' readers drop theirs:
    Optuna skips such a line when reading, but appending after it would fuse two lines into a damaged one.
    Returns whether anything was cut."""
    if not url.startswith("journal:"):
        return False
    path = Path(url.removeprefix("journal:"))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    if not data or data.endswith(b"\n"):
        return False
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
        f.flush()
        os.fsync(f.fileno())
    return True

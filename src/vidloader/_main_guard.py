"""The ``if __name__ == "__main__":`` guard a script needs when its workers are spawned processes.

A spawned process (``worker_type="process"`` decode workers, a spawn DataLoader's workers) first imports
the parent's main script, as ``__mp_main__``. Without the guard the whole script runs again in each of
them: it indexes the dataset again and starts a loader of its own, whose workers multiprocessing refuses to
start, so the worker dies and the main process used to blame a video for it. Building a dataset or a
loader during that import is refused here instead: the spawned process prints one line and exits with
``MAIN_GUARD_EXIT``, and the main process's decode pool turns that exit into ``main_guard_error()``."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

from ._errors import ConfigError

__all__ = ["MAIN_GUARD_EXIT", "importing_main", "main_guard_error", "refuse_while_importing_main"]

# The exit status of a spawned process that refused to run the main script's work: what the main process
# recognises it by (no status of Python's own, and no signal).
MAIN_GUARD_EXIT = 87

GUARD_ADVICE = (
    'the script builds its dataset or loader outside `if __name__ == "__main__":`, and every spawned '
    "worker process imports the script again (as __mp_main__), which would index the data and start a "
    'loader again in each worker. Put that code under `if __name__ == "__main__":` (or in a function '
    "called from there); see 'Safe importing of main module' in the multiprocessing docs"
)


def importing_main() -> bool:
    """Whether this process is a spawned child still importing its parent's main script.

    multiprocessing marks a child as inheriting while it prepares (imports the parent's main module as
    ``__mp_main__``, which becomes ``__main__`` only once that import is done)."""
    mp_main = sys.modules.get("__mp_main__")
    preparing = bool(getattr(mp.current_process(), "_inheriting", False))
    return preparing and mp_main is not None and mp_main is not sys.modules.get("__main__")


def refuse_while_importing_main(what: str) -> None:
    """End this process at once (status ``MAIN_GUARD_EXIT``) if it is a spawned child importing the main
    script, which is building ``what``; nothing happens otherwise."""
    if not importing_main():
        return
    print(
        f"vidloader: spawned process {os.getpid()} stops instead of building {what}: {GUARD_ADVICE}.",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    # Not an exception: module-level code of the script could catch that and go on with the work.
    os._exit(MAIN_GUARD_EXIT)


def main_guard_error() -> ConfigError:
    """The error the main process raises when its spawned workers refused to run its script again."""
    return ConfigError(f"worker_type='process' needs a __main__ guard: {GUARD_ADVICE}.")

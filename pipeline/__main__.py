"""`pipeline` and `python -m pipeline`: SIGTERM and SIGHUP stop the command as Ctrl-C does
from the first line on, before the command line is even read; search, train and
reproduce then take over (`pipeline.stopping`)."""

from __future__ import annotations

import sys


def main() -> None:
    from pipeline import stopping

    stopping.interrupt_on_signals()
    try:
        from pipeline.cli import app

        app(prog_name="pipeline")
    except KeyboardInterrupt:  # while Python loaded the command line: nothing written yet
        sys.stderr.write("\ninterrupted before anything was written\n")
        sys.exit(stopping.exit_code())


if __name__ == "__main__":
    main()

"""`pipeline` and `python -m pipeline`: SIGTERM and SIGHUP stop the command as Ctrl-C does
while Python loads the command line (one line, nothing written); then each command
handles them: search, train and reproduce with `pipeline.stopping`, the others as Python
does."""

from __future__ import annotations

import sys


def main() -> None:
    from pipeline import stopping

    stopping.interrupt_on_signals()
    try:
        from pipeline.cli import app
    except KeyboardInterrupt:  # while Python loaded the command line: nothing written yet
        sys.stderr.write("\ninterrupted before anything was written\n")
        sys.exit(stopping.exit_code())
    stopping.default_signals()  # each command as it handles them (search: `interruptible`)
    app(prog_name="pipeline")


if __name__ == "__main__":
    main()

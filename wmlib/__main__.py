"""``python -m wmlib``: the command line (:mod:`wmlib.cli`)."""
import sys

from wmlib.cli import main

if __name__ == "__main__":
    sys.exit(main())

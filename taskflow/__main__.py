"""`python -m taskflow ...`: the same command line as the `taskflow` console script."""

import sys

from taskflow import _cli_main

if __name__ == "__main__":
    sys.exit(_cli_main())

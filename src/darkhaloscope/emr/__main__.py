"""``python -m darkhaloscope.emr plan|package|launch`` (same as ``darkhaloscope emr ...``)."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["emr", *sys.argv[1:]]))

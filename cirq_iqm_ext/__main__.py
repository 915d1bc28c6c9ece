"""``python -m cirq_iqm_ext``: the ``cirq-iqm-ext`` command line."""

from __future__ import annotations

import sys

from cirq_iqm_ext.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

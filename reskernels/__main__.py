"""``python -m reskernels`` is the ``reskernels`` command (claim checks, report, conformance)."""
import sys

from reskernels.proofs_check.cli import main

sys.exit(main())

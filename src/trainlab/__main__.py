"""``python -m trainlab …`` is the ``trainlab`` command (``torchrun -m trainlab train …`` starts it that way)."""
import sys

from trainlab.cli import main

sys.exit(main())

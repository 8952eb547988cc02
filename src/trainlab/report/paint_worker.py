"""Imported by the fork server of :class:`trainlab.report.painter.WorkerPainter` and nowhere else: it readies the
process the picture workers are forked from.

One BLAS thread: numpy's OpenBLAS starts a thread per core on import, and their spinning cost the training
process ~0.2 s of its own import time on the 2-core machine (measured: importing torch and trainlab 1.05 s alone,
1.27 s beside a server importing matplotlib, 1.07 s with one BLAS thread). Then the plots. (Drawing the report's
pictures here once on made-up numbers, so that workers start with glyphs and tick machinery loaded, left the
workers' drawing times where they were: measured and dropped.)
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from trainlab.report import plots  # noqa: E402,F401  (what the workers draw with)

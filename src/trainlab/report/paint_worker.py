"""Imported by the fork server of :class:`trainlab.report.painter.WorkerPainter` and nowhere else: it readies the
process the picture workers are forked from, and makes the server's own exit immediate (see the end).

One BLAS thread: numpy's OpenBLAS starts a thread per core on import, and their spinning cost the training
process ~0.2 s of its own import time on the 2-core machine (measured: importing torch and trainlab 1.05 s alone,
1.27 s beside a server importing matplotlib, 1.07 s with one BLAS thread). Then the plots. (Drawing the report's
pictures here once on made-up numbers, so that workers start with glyphs and tick machinery loaded, left the
workers' drawing times where they were: measured and dropped.)
"""
import atexit
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from trainlab.report import plots  # noqa: E402,F401  (what the workers draw with)

# The fork server ends when the training process does (its pipe from it reads EOF) by raising SystemExit: then the
# interpreter's teardown over everything matplotlib made took ~0.2 s, while the server still held the training
# process's stdout and stderr open. Whoever reads them through a pipe (`trainlab train | tee log`, a notebook's or a
# benchmark's subprocess) waited that long after `trainlab train` had ended (measured: its last line to EOF 0.30 s,
# 0.08 s with this; 2-core machine). The server has nothing to save or flush; its workers end with os._exit anyway.
# Registered last, so it runs first.
atexit.register(os._exit, 0)

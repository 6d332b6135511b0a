"""Running the suite: the command line, the runner, the warm worker servers and the worker.

``cli`` (and ``data_cli``, ``zoo_cli``) parse commands; ``runner`` plans and runs (task, backend, repeat)
rows, each in a process forked by a ``forkserver`` per backend; ``worker`` trains and
measures one row and runs the phases (``evaluate``: its test set, and a data-parallel row's rank 0's);
``environment`` records the machine; ``rssprobe`` and ``gpucheck`` are stand-alone tools
(``python -m bench.run.gpucheck``). Modules here may import everything in ``bench`` and the backend
registry (``backends``); a backend module itself is imported only through ``backends.load_backend``.
"""

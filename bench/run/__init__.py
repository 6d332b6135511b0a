"""Running the suite: the command line, the runner, the warm worker servers and the worker.

``cli`` (and ``data_cli``, ``zoo_cli``) parse commands. A run: ``plan`` holds its options and plans its
(task, backend, repeat) rows, ``task_data`` prepares each task's data once, ``runner`` runs the rows (each in a
process forked by a ``forkserver`` per backend) into the folder ``runfolder`` makes and writes, and ``resume``
finishes an interrupted one (imports go one way: resume -> runner -> task_data, plan -> runfolder).
``worker`` trains and measures one row and runs the phases (``evaluate``: its test set, and a data-parallel
row's rank 0's); ``environment`` records the machine; ``rssprobe`` and ``gpucheck`` are stand-alone tools
(``python -m bench.run.gpucheck``). Modules here may import everything in ``bench`` and the backend
registry (``backends``); a backend module itself is imported only through ``backends.load_backend``.
"""

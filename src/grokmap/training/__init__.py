"""Training: what a cell is and how it trains. Everything that decides a cell's numbers lives
in this folder, and the training fingerprint hashes this folder (:mod:`grokmap.jobs.fingerprint`).

* :mod:`.grid` the sweep's cells and their canonical spellings; :mod:`.spec` one cell's typed
  settings; :mod:`.tasks` and :mod:`.data` examples and splits; :mod:`.kinds` one record per
  model kind (build, settings rules, cost, engine) and :mod:`.models` the networks;
  :mod:`.optimizers`; :mod:`.losses` (and the softmax-collapse measure); :mod:`.precision`
  the dtypes of each ``training.precision``; :mod:`.schedule` budgets and evaluation steps;
* :mod:`.loop` the one training loop and :mod:`.curves` what each cell keeps;
  :mod:`.engines` the step and evaluation of each kind of cell;
* :mod:`.record` a cell's ``metrics.json``.

The settings-side modules (grid, spec, tasks, kinds, schedule, curves, record, the engines'
registry in ``engines/__init__``, and the loop, which loads an engine only to train) import no
torch, so planning a sweep never loads it; data, models, optimizers, losses, precision and the
engine modules do (``tests/unit/test_grid_data_model.py`` checks it).
"""

"""Training: what a cell is and how it trains. Everything that decides a cell's numbers lives
in this folder, and the training fingerprint hashes this folder (:mod:`grokmap.jobs.fingerprint`).

* :mod:`.grid` the sweep's cells and their canonical spellings; :mod:`.spec` one cell's typed
  settings; :mod:`.tasks` and :mod:`.data` examples and splits; :mod:`.models`;
  :mod:`.optimizers`; :mod:`.losses`; :mod:`.schedule` budgets and evaluation steps;
* :mod:`.loop` the one training loop and :mod:`.curves` what each cell keeps;
  :mod:`.engines` the step and evaluation of each kind of cell;
* :mod:`.record` a cell's ``metrics.json``.

Only the loop and the engines import torch.
"""

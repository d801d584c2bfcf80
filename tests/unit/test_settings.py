"""params.yaml / config.yaml validation: every bad input gets one message naming the key."""
from __future__ import annotations

import re
import shutil

import pytest
import yaml

from grokmap.settings import SettingsError, load_settings

from ..conftest import ROOT, SCHEMAS


def _write(tmp_path, params_edit=None, config_edit=None, raw_params=None):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    if params_edit:
        params_edit(params)
    if config_edit:
        config_edit(config)
    (tmp_path / "params.yaml").write_text(raw_params if raw_params is not None else yaml.safe_dump(params))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "params.yaml", tmp_path / "config.yaml"


def _load(tmp_path, **kw):
    overrides = kw.pop("overrides", None)
    p, c = _write(tmp_path, **kw)
    return load_settings(p, c, SCHEMAS, overrides)


def test_default_files_are_valid(default_settings):
    assert default_settings.params["task"]["modulus"] == 97
    assert default_settings.run["threads_per_job"] >= 1


def _set(path, value):
    def edit(d):
        if path.startswith("sweep.") and path.count(".") > 1:  # an extra axis: sweep.<dotted key>
            d["sweep"][path.split(".", 1)[1]] = value
            return
        *parents, last = path.split(".")
        for k in parents:
            d = d[k]
        d[last] = value
    return edit


def _delete(path):
    def edit(d):
        *parents, last = path.split(".")
        for k in parents:
            d = d[k]
        del d[last]
    return edit


BAD_PARAMS = [
    # (edit, words the message must contain)
    (_set("sweep.wieght_decay", [0.1]), ["unknown key 'wieght_decay'", "weight_decay"]),
    (_set("trainning", {}), ["unknown key 'trainning'", "training"]),
    (_set("training.max_epochs", "many"), ["training.max_epochs", "'many'", "integer"]),
    (_set("training.max_epochs", 2.5), ["training.max_epochs", "2.5", "integer"]),
    (_set("sweep.weight_decay", []), ["sweep.weight_decay", "at least 1"]),
    (_set("sweep.weight_decay", [0.1, 0.10]), ["sweep.weight_decay", "repeated", "0.1"]),
    (_set("sweep.width", [16, 16]), ["sweep.width", "repeated"]),
    (_set("sweep.train_fraction", [0.0]), ["sweep.train_fraction[0]", "> 0"]),
    (_set("sweep.train_fraction", [1.0]), ["sweep.train_fraction[0]", "< 1"]),
    (_set("sweep.train_fraction", [-0.5]), ["sweep.train_fraction[0]"]),
    (_set("task.modulus", 1), ["task.modulus", ">= 2"]),
    (_set("task.modulus", 9.5), ["task.modulus", "9.5", "integer"]),
    (_set("sweep.weight_decay", [-0.1]), ["sweep.weight_decay[0]", "-0.1", ">= 0"]),
    (_set("training.learning_rate", -1e-3), ["training.learning_rate", "> 0"]),
    (_set("training.learning_rate", 0), ["training.learning_rate", "> 0"]),
    (_set("sweep.width", [0]), ["sweep.width[0]", ">= 1"]),
    (_set("model.name", "resnet"), ["model.name", "'resnet'", "embed_concat_mlp"]),
    (_set("training.optimizer", "adamm"), ["training.optimizer", "'adamw'"]),
    (_set("training.loss", "hinge"), ["training.loss", "cross_entropy"]),
    (_set("task.name", "modular_addtion"), ["task.name", "modular_addition", "modular_division"]),
    (lambda q: (_set("task.name", "modular_division")(q), _set("task.modulus", 96)(q))[-1],
     ["task.modulus", "96", "modular_division", "prime"]),
    (_set("training.eval_every_epochs", 5000), ["training.eval_every_epochs", "max_epochs"]),
    (_set("phases.accuracy_threshold", 1.5), ["phases.accuracy_threshold", "<= 1"]),
    (_set("phases.accuracy_threshold", -0.1), ["phases.accuracy_threshold", ">= 0"]),
    (_set("training.early_stop_accuracy", 2), ["training.early_stop_accuracy", "<= 1"]),
    (_delete("phases.grokking_gap_epochs"), ["missing key 'phases.grokking_gap_epochs'"]),
    (_set("training.betas", [0.9]), ["training.betas", "at least 2"]),
    # settings of the other seeds (issue 7)
    (_set("training.batch_size", "half"), ["training.batch_size", "'half'", "'full'", "integer"]),
    (_set("training.batch_size", 0), ["training.batch_size", "'full'", ">= 1"]),
    (_set("training.max_steps", 0), ["training.max_steps", "null", ">= 1"]),
    (_set("model.activation", "sigmoid"), ["model.activation", "'relu'", "'gelu'", "'tanh'"]),
    (_set("model.dropout", 1.0), ["model.dropout", "< 1"]),
    (_set("training.embedding_noise", -1), ["training.embedding_noise", ">= 0"]),
    (_set("training.momentum", 1.0), ["training.momentum", "< 1"]),
    (_set("task.operands", 1), ["task.operands", ">= 2"]),
    (lambda q: (_set("task.name", "modular_subtraction")(q), _set("task.operands", 3)(q))[-1],
     ["task.operands", "3", "only modular_addition"]),
    (_set("task.operands", 6), ["task.operands", "10,000,000", "p=97 and K=6"]),
    (lambda q: (_set("model.name", "quadratic_mlp")(q), _set("model.depth", 2)(q))[-1],
     ["model.depth", "quadratic_mlp"]),
    (lambda q: (_set("model.name", "transformer")(q), _set("model.heads", 5)(q))[-1],
     ["sweep.width", "16", "multiple of model.heads (5)"]),
    (lambda q: (_set("training.optimizer", "gd")(q), _set("training.batch_size", 64)(q))[-1],
     ["training.batch_size", "64", "'full' with optimizer 'gd'"]),
    (_delete("phases.grokking_step_accuracy"), ["missing key 'phases.grokking_step_accuracy'"]),
    # extra sweep axes
    (_set("sweep.training.optimiser", ["adamw"]), ["sweep.training.optimiser", "training.optimizer"]),
    (_set("sweep.training.betas", [0.9, 0.95]), ["sweep.training.betas", "scalar setting", "training.optimizer"]),
    (_set("sweep.training.optimizer", ["adamw", "lion"]),
     ["'lion' of sweep axis 'sweep.training.optimizer'", "training.optimizer", "'sgd'"]),
    (_set("sweep.training.learning_rate", [0.001, 1e-3]), ["sweep.training.learning_rate", "repeated"]),
    (_set("sweep.model.name", []), ["sweep.model.name", "at least 1"]),
    (lambda q: (_set("task.name", "modular_division")(q), _set("sweep.task.modulus", [97, 91])(q))[-1],
     ["sweep task.modulus=91", "task.modulus", "prime"]),
    # S3 (issue 8)
    (_set("model.activation", "tanh"), ["model.activation", "'tanh'", "relu or gelu", "s3_mlp only"]),
    (_set("model.name", "s3_mlp"), ["task.name", "'modular_addition'", "toy_addition, digits"]),
    (_set("task.name", "toy_addition"), ["model.name", "'embed_concat_mlp'", "'s3_mlp'"]),
    (lambda q: (_set("task.name", "digits")(q), _set("model.name", "s3_mlp")(q),
                _set("training.optimizer", "sgd")(q))[-1], ["training.optimizer", "'sgd'", "adamw", "s3_mlp"]),
    (_set("training.encoder_learning_rate", 0.001), ["training.encoder_learning_rate", "null", "s3_mlp only"]),
    # the precision x loss atlas (issue 32)
    (lambda q: (_set("task.name", "digits")(q), _set("model.name", "s3_mlp")(q),
                _set("training.softmax_precision", "float64")(q))[-1],
     ["training.softmax_precision", "'float64'", "null with model 's3_mlp'"]),
    (_set("training.softmax_precision", "float16"), ["training.softmax_precision", "'float16'", "float64"]),
    (_set("training.loss", "stablemax"), ["training.loss", "'stablemax'", "stablemax_cross_entropy"]),
    (_delete("training.softmax_precision"), ["missing key 'training.softmax_precision'"]),
    (_set("training.accuracy_every_steps", 1), ["training.accuracy_every_steps", "null", "s3_mlp only"]),
    (_set("model.init_scale", 9.0), ["model.init_scale", "9", "s3_mlp only"]),
    (_set("task.data_seed", -1), ["task.data_seed", "null", ">= 0"]),
    (_set("phases.diagram_columns", "learning_rate"), ["phases.diagram_columns", "'learning_rate'",
                                                       "train_fraction, width, seed"]),
    (_set("phases.majority_over", ["weight_decay"]), ["phases.majority_over", "'weight_decay'", "seed"]),
    (lambda q: (_set("task.name", "toy_addition")(q), _set("sweep.model.name", ["s3_mlp", "embed_concat_mlp"])(q))[-1],
     ["sweep.model.name", "mixes s3_mlp"]),
    # adaptive refinement (issue 20)
    (_set("refine.rounds", -1), ["refine.rounds", ">= 0"]),
    (_set("refine.axes", {"weight_decay": "quadratic"}), ["refine.axes.weight_decay", "'quadratic'", "'log'"]),
    (_set("refine.rounds", 1), ["'refine.axes' = {}", "at least one swept numeric axis"]),
    (lambda q: (_set("refine.rounds", 1)(q), _set("refine.axes", {"seed": "linear"})(q))[-1],
     ["'refine.axes.seed'", "not in phases.majority_over", "weight_decay"]),
    (lambda q: (_set("refine.rounds", 1)(q), _set("refine.axes", {"learning_rate": "log"})(q))[-1],
     ["'refine.axes.learning_rate'", "a swept axis"]),
    (lambda q: (_set("refine.rounds", 1)(q), _set("refine.axes", {"weight_decay": "log"})(q))[-1],
     ["'refine.axes.weight_decay' = 'log'", "linear", "value <= 0"]),
    (lambda q: (_set("refine.rounds", 5)(q), _set("refine.axes", {"width": "linear"})(q))[-1],
     ["'refine.rounds' = 5", "sweep.width", "integers"]),
    (lambda q: (_set("refine.rounds", 1)(q), _set("sweep.training.optimizer", ["adamw", "sgd"])(q),
                _set("refine.axes", {"training.optimizer": "auto"})(q))[-1],
     ["'refine.axes.training.optimizer'", "a numeric axis"]),
    (_delete("refine.digits"), ["missing key 'refine.digits'"]),
    # refinement trains only what the grid would accept, within the cell cap (issue 28, classes 3-4)
    (lambda q: (_set("task.name", "modular_division")(q), _set("task.modulus", 23)(q),
                _set("sweep.task.modulus", [23, 31])(q), _set("refine.rounds", 1)(q),
                _set("refine.axes", {"task.modulus": "linear"})(q))[-1],
     ["'task.modulus' = 27 is not allowed", "a prime", "refinement can train on refine.axes task.modulus"]),
    (lambda q: (_set("model.name", "transformer")(q), _set("model.heads", 8)(q), _set("sweep.width", [32, 40])(q),
                _set("refine.rounds", 1)(q), _set("refine.axes", {"width": "linear"})(q))[-1],
     ["'sweep.width' = 36", "a multiple of model.heads (8)", "refinement can train on refine.axes width"]),
    (lambda q: (_set("sweep.weight_decay", [0.1, 1.0])(q), _set("sweep.width", [16, 80])(q),
                _set("refine.rounds", 6)(q),
                _set("refine.axes", {"weight_decay": "log", "train_fraction": "linear", "width": "linear"})(q))[-1],
     ["'refine.rounds' = 6 can train up to", "cells (the finest lattice", "max_sweep_cells"]),
    (lambda q: (_set("sweep.train_fraction", [0.9, 0.99])(q), _set("refine.rounds", 1)(q), _set("refine.digits", 1)(q),
                _set("refine.axes", {"train_fraction": "linear"})(q))[-1],
     ["'refine.digits' = 1 rounds two lattice values of train_fraction", "more digits"]),
]


@pytest.mark.parametrize("edit,words", BAD_PARAMS, ids=[w[0] for _, w in BAD_PARAMS])
def test_bad_params_are_refused_with_a_clear_message(tmp_path, edit, words):
    with pytest.raises(SettingsError) as err:
        _load(tmp_path, params_edit=edit)
    msg = str(err.value)
    assert "params.yaml" in msg
    for w in words:
        assert w in msg, msg
    assert "Traceback" not in msg and "\n" not in msg


@pytest.mark.slow
def test_fraction_leaving_no_train_example_is_refused(tmp_path):
    # p = 3: 9 pairs, int(9 * 0.05) = 0 train examples. (The floor in int(p*p*frac) with
    # frac < 1 always leaves at least one test example, so only "no train" can happen.)
    with pytest.raises(SettingsError, match=r"train_fraction.* 0 train and 9 test"):
        _load(tmp_path, params_edit=lambda d: (d["task"].update(modulus=3),
                                               d["sweep"].update(train_fraction=[0.05])))
    s = _load(tmp_path, params_edit=lambda d: (d["task"].update(modulus=3),
                                               d["sweep"].update(train_fraction=[0.12, 0.99])))
    assert s.params["sweep"]["train_fraction"] == [0.12, 0.99]


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(SettingsError, match=r"params.yaml: YAML syntax error at line 3"):
        _load(tmp_path, raw_params="task:\n  name: modular_addition\n modulus: 97\n")


def test_results_dir_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SettingsError, match=r"results_dir.*cannot be written"):
        _load(tmp_path, config_edit=lambda c: c.update(results_dir=str(blocker / "results")))


@pytest.mark.slow
def test_bad_config_values(tmp_path):
    with pytest.raises(SettingsError, match=r"config.yaml: 'log_level' = 'LOUD'.*DEBUG"):
        _load(tmp_path, config_edit=lambda c: c.update(log_level="LOUD"))
    with pytest.raises(SettingsError, match=r"unknown key 'thread'"):
        _load(tmp_path, config_edit=lambda c: c.update(thread=2))
    with pytest.raises(SettingsError, match=r"config.yaml: 'tile_cells' = 0 is not allowed; allowed: a number >= 1"):
        _load(tmp_path, config_edit=lambda c: c.update(tile_cells=0))
    with pytest.raises(SettingsError, match=r"config.yaml: 'device' = 'gpu' is not allowed; allowed: one of 'auto', "
                                            r"'cpu', 'cuda'"):
        _load(tmp_path, config_edit=lambda c: c.update(device="gpu"))


def test_equal_numbers_are_one_value(tmp_path):
    raw = (ROOT / "params.yaml").read_text().replace(
        "weight_decay: [0.0, 0.001, 0.01, 0.1, 1.0]", "weight_decay: [0, 1e-3, 0.010, 1e-1, 1]")
    s = _load(tmp_path, raw_params=raw)
    assert s.params["sweep"]["weight_decay"] == [0.0, 0.001, 0.01, 0.1, 1.0]
    assert all(type(v) is float for v in s.params["sweep"]["weight_decay"])


@pytest.mark.slow
def test_overrides_are_merged_and_validated(tmp_path):
    # snakemake --config passes every scalar as a string
    s = _load(tmp_path, overrides={"sweep": {"seed": ["1", "2", "3"]}, "log_level": "DEBUG"})
    assert s.params["sweep"]["seed"] == [1, 2, 3]
    assert s.params["sweep"]["width"] == [16, 32, 64]  # untouched keys keep their values
    assert s.run["log_level"] == "DEBUG"
    with pytest.raises(SettingsError, match=r"--config overrides.*sweep.width\[0\]"):
        _load(tmp_path, overrides={"sweep": {"width": ["0"]}})
    with pytest.raises(SettingsError, match=r"--config: unknown key 'sweeep'"):
        _load(tmp_path, overrides={"sweeep": {}})


@pytest.mark.slow
def test_extra_axes_are_coerced_and_typed(tmp_path):
    s = _load(tmp_path, params_edit=_set("sweep.training.learning_rate", ["1e-3", 0.01]))
    assert s.params["sweep"]["training.learning_rate"] == [0.001, 0.01]
    s = _load(tmp_path, params_edit=_set("sweep.training.batch_size", ["full", 256]))
    assert s.params["sweep"]["training.batch_size"] == ["full", 256]


@pytest.mark.slow
def test_nested_extra_axes_are_the_dotted_ones(tmp_path):
    # what `dvc exp run -S sweep.training.optimizer=[adamw,sgd]` writes into params.yaml
    s = _load(tmp_path, params_edit=lambda q: q["sweep"].update(training={"optimizer": ["adamw", "sgd"]}))
    assert s.params["sweep"]["training.optimizer"] == ["adamw", "sgd"] and "training" not in s.params["sweep"]
    with pytest.raises(SettingsError, match="'training.optimizer' is given twice"):
        _load(tmp_path, params_edit=lambda q: q["sweep"].update({"training": {"optimizer": ["sgd"]},
                                                                  "training.optimizer": ["adamw"]}))
    with pytest.raises(SettingsError, match="'sweep.training.optimiser' is not allowed"):
        _load(tmp_path, params_edit=lambda q: q["sweep"].update(training={"optimiser": ["sgd"]}))


def test_params_file_selects_a_study(tmp_path):
    p, c = _write(tmp_path)
    study = tmp_path / "studies" / "mine.yaml"
    study.parent.mkdir()
    text = p.read_text().replace("modulus: 97", "modulus: 31")
    study.write_text(text)
    s = load_settings(None, c, SCHEMAS, {"params_file": str(study)})
    assert s.params["task"]["modulus"] == 31
    with pytest.raises(SettingsError, match=r"'params_file' = 'nope.yaml' is not a file; allowed: .*mine.yaml"):
        load_settings(None, c, SCHEMAS, {"params_file": "nope.yaml"})


@pytest.mark.slow
def test_shipped_studies_are_valid():
    studies = sorted((ROOT / "studies").rglob("*.yaml"))
    assert len(studies) >= 6, studies  # three studies, each with a reduced version
    for path in studies:
        load_settings(path, ROOT / "config.yaml", SCHEMAS)


@pytest.mark.slow
def test_hostile_yaml_is_refused_in_one_line(tmp_path):
    from grokmap.settings import SettingsError, load_yaml

    cases = {
        "dup.yaml": ("a: 1\nb: 2\na: 3\n", "key 'a' is given twice in one mapping (lines 1 and 3)"),
        "bomb.yaml": ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
            f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcde", "bcdef")),
            "aliases expand to more than 100,000 values"),
        "deep.yaml": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        "big.yaml": ("a: [" + ", ".join(["1"] * 400_000) + "]\n", "bytes; allowed: a settings file of at most"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SettingsError, match=re.escape(message)):
            load_yaml(tmp_path / name)
    (tmp_path / "bin.yaml").write_bytes(b"a: \xff\xfe")
    with pytest.raises(SettingsError, match="not UTF-8 text"):
        load_yaml(tmp_path / "bin.yaml")
    (tmp_path / "nul.yaml").write_bytes(b"a: 1\x00\n")
    with pytest.raises(SettingsError, match="NUL bytes"):
        load_yaml(tmp_path / "nul.yaml")
    with pytest.raises(SettingsError, match="is a directory"):
        load_yaml(tmp_path)

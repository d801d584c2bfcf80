"""The fused float32 step's hand-written C softmax tail (grokmap.training.engines.ctail)."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from grokmap.jobs.fingerprint import training_code_files
from grokmap.training.engines import ctail
from grokmap.training.grid import Cell
from grokmap.training.loop import train_cell

from ..conftest import tiny_params
from ..reference import train_reference


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """ctail as if this process had never loaded it, its library built by the set-up step into an
    empty folder of its own (what ``scripts/setup_env.sh`` does into the environment)."""
    folder = tmp_path / "share" / "tail"
    monkeypatch.setattr(ctail, "FOLDER", folder)
    _reload(monkeypatch)
    assert ctail.main([]) == 0
    return folder


@pytest.mark.parametrize("m, p", [(7, 97), (960, 97), (33, 5), (4, 113)])
def test_kernel_is_softmax_minus_onehot_over_n(fresh_kernel, m, p):
    gen = torch.Generator().manual_seed(m * p)
    x = torch.randn(m, p, generator=gen) * 8
    y = torch.randint(0, p, (m,), generator=gen)
    g = x.clone()
    assert ctail.softmax_minus_onehot(g, y, 1 / 1000)
    want = (torch.softmax(x.double(), 1) - F.one_hot(y, p).double()) / 1000
    assert torch.allclose(g.double(), want, rtol=1e-6, atol=1e-6 / 1000)  # float32: ~1 ulp of 1/n where it cancels
    assert {f.suffix for f in fresh_kernel.glob("tail-*")} == {".so", ".json"}  # built by the set-up step


def test_loading_the_kernel_keeps_subnormals(fresh_kernel):
    # A -ffast-math shared object turns on flush-to-zero for its whole process when gcc < 13
    # links it: every float computation after the load would round differently.
    assert ctail.library() is not None
    assert (torch.tensor([1e-40]) * 1.0).item() > 0
    assert (torch.tensor([1e-40], dtype=torch.float64).float() * 1.0).item() > 0


def test_kernel_refuses_what_it_cannot_read(fresh_kernel):
    with pytest.raises(ValueError, match="contiguous float32"):
        ctail.softmax_minus_onehot(torch.zeros(4, 6).t(), torch.zeros(6, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="contiguous float32"):
        ctail.softmax_minus_onehot(torch.zeros(4, 6, dtype=torch.float64), torch.zeros(4, dtype=torch.int64), 1.0)


def test_float32_fused_step_uses_the_kernel_and_keeps_the_mathematics(default_params, fresh_kernel, monkeypatch):
    calls = []
    real = ctail.softmax_minus_onehot

    def spy(*a):
        calls.append(a[0].shape)
        return real(*a)

    import grokmap.training.engines.fused as fused

    monkeypatch.setattr(fused, "softmax_minus_onehot", spy)
    q = tiny_params(default_params, max_epochs=60, eval_every_epochs=20)
    cell = Cell(0.1, 0.5, 32, 1)
    fast, ref = train_cell(q, cell), train_reference(q, cell)
    assert len(calls) >= 60
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-3, abs=1e-3), key


def test_without_the_built_library_the_step_keeps_torchs_tail_says_so_and_builds_nothing(
        default_params, fresh_kernel, tmp_path, monkeypatch, caplog):
    q = tiny_params(default_params, max_epochs=40, eval_every_epochs=20)
    cell = Cell(0.1, 0.5, 32, 1)
    with_c = train_cell(q, cell)
    # a fresh environment whose set-up did not build it; a compiler that would leave a mark if run
    mark = tmp_path / "compiler-ran"
    cc = tmp_path / "cc"
    cc.write_text(f"#!/bin/sh\ntouch {mark}\nexec gcc \"$@\"\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setattr(ctail, "FOLDER", tmp_path / "unbuilt")
    _reload(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.ctail"):
        without = train_cell(q, cell)
    assert ctail.library() is None and not mark.exists()  # training never compiles
    # the two records share one fingerprint and differ in their numbers: each names its kernel
    assert (with_c["kernel"], without["kernel"]) == ("fused/c_tail", "fused/torch_tail")
    assert any("keeps torch's kernels" in r.message and "setup_env.sh" in r.message for r in caplog.records)
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):  # float rounding apart, no more
        assert without["curves"][key] == pytest.approx(with_c["curves"][key], rel=1e-4, abs=1e-5), key


def test_the_set_up_step_without_a_compiler_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert ctail.main(["--folder", str(tmp_path / "tail")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-such-compiler-here" in err and "torch's kernels" in err


def test_a_library_built_for_another_source_or_cpu_kind_is_not_loaded(fresh_kernel, monkeypatch):
    assert ctail.library() is not None
    built = ctail.library_path()
    monkeypatch.setattr(ctail, "_cpu", lambda: b"flags : another cpu kind")
    assert ctail.library_path() != built  # a node of another kind looks for its own library
    _reload(monkeypatch)
    assert ctail.library() is None


def test_the_c_source_is_part_of_the_training_fingerprint():
    assert "tail.c" in [f.name for f in training_code_files()]


# ---- the built library: private, verified, and a compiler that misbehaves (issues 28 and 33) ----

HOSTILE = "void softmax_minus_onehot(float *g, const long *y, long m, long p, float s) {" \
          " for (long i = 0; i < m * p; i++) g[i] = 0.0f; }\n"


def _tile_is_right() -> bool:
    x = torch.randn(8, 11, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 11
    g = x.clone()
    assert ctail.softmax_minus_onehot(g, y, 0.5)
    return torch.allclose(g, (torch.softmax(x, 1) - F.one_hot(y, 11)) * 0.5, atol=1e-6)


def _reload(monkeypatch):
    monkeypatch.setattr(ctail, "_LIB", None)
    monkeypatch.setattr(ctail, "_TRIED", False)


def _plant(folder, tmp_path) -> list:
    """Replace every built library by one that zeroes the gradient (and fix its stamp to match)."""
    import hashlib
    import json
    import subprocess

    src = tmp_path / "hostile.c"
    src.write_text(HOSTILE)
    planted = []
    for lib in folder.glob("tail-*.so"):
        # a new file renamed over the old (this process may have the old one mapped)
        subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(tmp_path / "h.so")], check=True)
        (tmp_path / "h.so").replace(lib)
        data = lib.read_bytes()
        lib.with_suffix(".json").write_text(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
        planted.append(lib)
    return planted


@pytest.mark.parametrize("how", ["world-writable", "another owner", "a link"])
def test_a_library_folder_others_can_write_is_refused_and_its_library_never_loaded(fresh_kernel, tmp_path,
                                                                                  monkeypatch, caplog, how):
    import os

    assert ctail.library() is not None and _tile_is_right()
    assert _plant(fresh_kernel, tmp_path)
    if how == "world-writable":
        fresh_kernel.chmod(0o777)
    elif how == "another owner":
        if os.geteuid() != 0:
            pytest.skip("chown needs root (CI runs as root)")
        os.chown(fresh_kernel, 12345, 12345)
    else:
        fresh_kernel.rename(tmp_path / "elsewhere")
        fresh_kernel.symlink_to(tmp_path / "elsewhere")
    _reload(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.ctail"):
        assert ctail.library() is None  # the planted library is never loaded
    assert any("keeps torch's kernels" in r.message for r in caplog.records)
    with pytest.raises(OSError):  # and the set-up step refuses to build into it
        ctail.build()


def test_an_empty_or_altered_library_is_never_loaded_and_the_set_up_builds_it_again(fresh_kernel, tmp_path,
                                                                                    monkeypatch, caplog):
    def put(data: bytes) -> None:  # a new file renamed over the built one (it is mapped in this process)
        (tmp_path / "new.so").write_bytes(data)
        (tmp_path / "new.so").replace(lib)

    assert ctail.library() is not None
    lib = next(fresh_kernel.glob("tail-*.so"))
    good = lib.read_bytes()
    for bad in (b"", good[:-64] + b"x" * 64):  # 0 bytes (a full disk, a copy killed half-way); altered bytes
        put(bad)
        _reload(monkeypatch)
        with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.ctail"):
            assert ctail.library() is None
        assert "does not match its stamp" in caplog.text
        assert ctail.main([]) == 0 and lib.read_bytes() == good  # the set-up step builds it again
        _reload(monkeypatch)
        assert ctail.library() is not None and _tile_is_right()


def test_the_library_folder_is_made_private(fresh_kernel):
    import stat

    assert stat.S_IMODE(fresh_kernel.stat().st_mode) == 0o700


@pytest.mark.parametrize("compiler, words", [
    ("#!/bin/sh\nsleep 30\n", "timed out"),  # hangs
    ("#!/bin/sh\nexit 0\n", "empty library"),  # succeeds and writes nothing
])
def test_a_compiler_that_hangs_or_writes_nothing_builds_nothing(tmp_path, monkeypatch, capsys, compiler, words):
    cc = tmp_path / "cc"
    cc.write_text(compiler)
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setattr(ctail, "COMPILE_SECONDS", 2)
    assert ctail.main(["--folder", str(tmp_path / "tail")]) == 1
    assert words in capsys.readouterr().err
    assert not list((tmp_path / "tail").glob("tail-*"))  # nothing left behind


def test_torch_compile_gets_a_private_cache_not_the_predictable_default(tmp_path, monkeypatch, caplog):
    import os
    import stat

    from grokmap.training.engines import compiled

    monkeypatch.setenv("GROKMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    compiled._private_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")
    assert stat.S_IMODE((tmp_path / "cache" / "inductor").stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(shared))  # named by the user, but not private
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.compiled"):
        compiled._private_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] != str(shared) and "private temporary folder" in caplog.text


def test_a_relative_cache_path_is_refused_not_resolved_against_wherever_a_job_runs(monkeypatch, tmp_path, caplog):
    import os

    from grokmap.training.engines import compiled

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROKMAP_CACHE", "cache")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.compiled"):
        compiled._private_inductor_cache()
    assert "GROKMAP_CACHE = 'cache' is not an absolute path" in caplog.text and not (tmp_path / "cache").exists()
    assert os.path.isabs(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def test_without_home_torch_compile_gets_a_private_temporary_folder(monkeypatch, caplog):
    import os
    import stat
    from pathlib import Path

    from grokmap.training.engines import compiled

    for name in ("GROKMAP_CACHE", "XDG_CACHE_HOME", "HOME", "TORCHINDUCTOR_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.compiled"):
        compiled._private_inductor_cache()
    assert "HOME is unset" in caplog.text
    assert stat.S_IMODE(os.stat(os.environ["TORCHINDUCTOR_CACHE_DIR"]).st_mode) == 0o700

"""S1 section 5.2's sparsity, three ways, along the training of `s1_noise` cells (issue 31 item 4).

    .venv/bin/python docs/reproductions/s1_sparsity_control.py docs/reproductions/s1_sparsity_control \\
        --noise 0.3 0.0 --fractions 0.5 0.7 --seeds 10 11 12

Trains each cell of `studies/s1_noise.yaml` (with `training.early_stop_rule: none`, as the
`s1_noise_no_early_stop` record) with the project's engine, step for step as the workflow's
loop does for one cell of the generic engine (the same steps, learning-rate factors and
evaluation steps; nothing else draws from the cell's generator), and at every evaluation
measures the last hidden layer (grokmap.analysis.subnetworks):

* `subnetwork_fraction`: the record's measure (neurons ranked by mean contribution to the
  logits; the smallest top-k reproducing every training prediction), as the record has it;
* `subnetwork_fraction_norm`: the same search with neurons ranked by weight norm (Merrill et
  al. 2023, S1's reference [1]);
* `norm_participation` and `norm_mass_share_90`: margin-free controls read from the neuron
  norms alone (the effective share of neurons holding the squared norm; the share of neurons,
  largest first, holding 90 % of it).

Writes `<out>.csv` (one row per cell and evaluation) and `<out>.png` (the four measures against
the step minus the cell's grokking step, one line per cell, with test accuracy), and prints the
per-cell summary the record quotes; `--summarise A.csv [B.csv ...]` prints it again from
written tables, without training.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

MEASURES = ["subnetwork_fraction", "subnetwork_fraction_norm", "norm_participation", "norm_mass_share_90"]


def run_cell(spec):
    import torch

    from grokmap.analysis.subnetworks import (neuron_norms, norm_mass_share, norm_participation,
                                              ranked_subnetwork_fraction)
    from grokmap.training.curves import CellLog
    from grokmap.training.engines.generic import GenericEngine
    from grokmap.training.schedule import lr_factor

    engine = GenericEngine([spec])
    log = CellLog(spec, engine.n_train, engine.n_test)
    model = engine.model
    last = model.deeper[-1] if len(model.deeper) else model.hidden
    rows = []
    for step in range(1, spec.total_steps + 1):
        engine.step(step, lr_factor(step, spec.steps_per_epoch, spec.training.lr_decay), False)
        if not log.wants_eval(step):
            continue
        (train, test, measures), = engine.evaluate([0])
        log.evaluate(step, train, test, measures)
        with torch.no_grad():
            h = model.features(engine.x)[1]
            norms = neuron_norms(last.weight, last.bias, model.output.weight)
            rows.append({"step": step, "train_acc": train[1] / engine.n_train, "test_acc": test[1] / engine.n_test,
                         "test_loss": test[0], "param_norm": measures["param_norm"],
                         "subnetwork_fraction": measures["subnetwork_fraction"],
                         "subnetwork_fraction_norm": ranked_subnetwork_fraction(
                             h, model.output.weight, model.output.bias, torch.argsort(norms, descending=True,
                                                                                     stable=True)),
                         "norm_participation": norm_participation(norms),
                         "norm_mass_share_90": norm_mass_share(norms, 0.9)})
        if log.done:
            break
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", help="output path without suffix (.csv and .png are written)")
    p.add_argument("--summarise", type=Path, nargs="+", help="tables written before: print their summary only")
    p.add_argument("--noise", type=float, nargs="+", default=[0.3])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.7])
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    p.add_argument("--max-epochs", type=int, default=None, help="a shorter budget (a quick check); default the study's")
    args = p.parse_args()

    import pandas as pd

    if args.summarise:
        summary(pd.concat([pd.read_csv(t) for t in args.summarise]))
        return
    if args.out is None:
        p.error("give an output path, or --summarise tables")
    import torch

    from grokmap.settings import load_settings
    from grokmap.training.grid import cells
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    sweep = {"training.embedding_noise": args.noise, "train_fraction": args.fractions, "seed": args.seeds}
    params = load_settings(ROOT / "studies" / "s1_noise.yaml", ROOT / "config.yaml", ROOT / "workflow" / "schemas",
                           overrides={"sweep": sweep, "training": {"early_stop_rule": "none", **(
                               {"max_epochs": args.max_epochs} if args.max_epochs else {})}}).params
    settings = cell_settings(params)
    table = []
    for cell in cells(params["sweep"]):
        spec = CellSpec.of(settings, cell)
        started = time.perf_counter()
        rows = run_cell(spec)
        noise = spec.training.embedding_noise
        grok = next((r["step"] for r in rows if r["test_acc"] >= 0.99), None)
        for r in rows:
            table.append({"embedding_noise": noise, "train_fraction": cell.train_fraction, "seed": cell.seed,
                          "grokking_step": grok, **r})
        print(f"noise {noise}, fraction {cell.train_fraction}, seed {cell.seed}: {len(rows)} evaluations, "
              f"grokking step {grok}, final test {rows[-1]['test_acc']:.3f}, {time.perf_counter() - started:.0f} s",
              flush=True)
    df = pd.DataFrame(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    figure(df, args.out.with_suffix(".png"))
    summary(df)


def summary(df) -> None:
    """Per cell: each measure at the first evaluation, at its extreme before the grokking step
    (the lowest; over the whole run when the cell never reaches 0.99), at the grokking step, 500
    steps after it, and at the end."""
    keys = ["subnetwork_fraction", "subnetwork_fraction_norm", "norm_participation", "norm_mass_share_90"]
    print("cell (noise, fraction, seed) | grokking step | measure: first / lowest before grokking / at grokking / "
          "+500 steps / end")
    for (noise, frac, seed), c in df.groupby(["embedding_noise", "train_fraction", "seed"]):
        c = c.sort_values("step")
        g = c.grokking_step.iloc[0]
        grokked = g == g  # not NaN
        before = c[c.step < g] if grokked else c
        print(f"{noise}, {frac}, {seed} | {int(g) if grokked else 'none'}")

        def at(step, key):
            return float(c[c.step <= step][key].iloc[-1])

        for key in keys:
            cols = [c[key].iloc[0], before[key].min()]
            cols += [at(g, key), at(g + 500, key)] if grokked else [float("nan")] * 2
            cols.append(c[key].iloc[-1])
            print(f"    {key}: " + " / ".join("-" if x != x else f"{x:.2f}" for x in cols))


def figure(df, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"test_acc": "test accuracy", "subnetwork_fraction": "sub-network share\n(ranked by contribution)",
              "subnetwork_fraction_norm": "sub-network share\n(ranked by norm, Merrill)",
              "norm_participation": "norm participation\n(margin-free)", "norm_mass_share_90": "neurons with 90 % of\nthe squared norm (margin-free)"}
    fig, axes = plt.subplots(1, len(titles), figsize=(3.2 * len(titles), 3.0), sharex=True)
    groks = df[df.grokking_step.notna()]
    for (noise, frac, seed), cell in groks.groupby(["embedding_noise", "train_fraction", "seed"]):
        x = cell.step - cell.grokking_step
        for ax, key in zip(axes, titles):
            ax.plot(x, cell[key], lw=0.9, label=f"noise {noise}, frac {frac}, seed {seed}")
    for ax, (key, title) in zip(axes, titles.items()):
        ax.set_title(title, fontsize=9)
        ax.axvline(0, color="grey", lw=0.6, ls="--")
        ax.set_xlabel("steps from the grokking step")
    axes[0].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()

# Figures from phases.json (and, for the curves, the representative cells' records).
# The diagrams are weight decay x phases.diagram_columns, one panel per combination of the
# other axes that do not vote (phases.majority_over); seed_diagrams.png draws each voter alone.


rule plot_phase_diagrams:
    input:
        script=f"{SCRIPTS}/plot_phase_diagrams.py",
        phases=OUT["phases"],
    output:
        discrete=report(OUT["phase_diagram"], caption="../report/phase_diagram.rst",
                        category="Figures"),
        smooth=report(OUT["smooth_diagram"], caption="../report/smooth_diagram.rst",
                      category="Figures"),
        grokking_step=report(OUT["grokking_step"], caption="../report/grokking_step.rst",
                             category="Figures"),
        # the cells that grokked and their step (dvc plots: a cell that never did has no row)
        grokking_steps=OUT["grokking_steps_csv"],
        **({"seed_diagrams": report(OUT["seed_diagrams"], caption="../report/seed_diagrams.rst",
                                    category="Figures")} if SEED_DIAGRAMS else {}),
        other_formats=figure_files("phase_diagram", "smooth_diagram", "grokking_step",
                                   *(["seed_diagrams"] if SEED_DIAGRAMS else [])),
    log:
        R + "/logs/plot_phase_diagrams.log",
    params:
        max_epochs=max(P["sweep"].get("training.max_epochs", [P["training"]["max_epochs"]])),
        figures=FIG_ARGS,
        seed_diagrams=["--seed-diagrams", OUT["seed_diagrams"]] if SEED_DIAGRAMS else [],
    shell:
        "{PY:q} {input.script:q} --phases-json {input.phases:q} --max-epochs {params.max_epochs:q}"
        " --phase-diagram {output.discrete:q} --smooth-diagram {output.smooth:q}"
        " --grokking-step {output.grokking_step:q} --grokking-steps-csv {output.grokking_steps:q}"
        " {params.seed_diagrams:q} {params.figures:q} --log-level {LOG_LEVEL:q} 2> {log:q}"


rule plot_curves:
    input:
        script=f"{SCRIPTS}/plot_curves.py",
        phases=OUT["phases"],
        cells=ALL_CELLS,
    output:
        curves=report(OUT["curves"], caption="../report/curves.rst", category="Figures"),
        other_formats=figure_files("curves"),
    log:
        R + "/logs/plot_curves.log",
    params:
        params=PARAMS_JSON,
        figures=FIG_ARGS,
    shell:
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {input.phases:q} --out {output.curves:q} {params.figures:q} --log-level {LOG_LEVEL:q} 2> {log:q}"


rule write_explorer:
    # One self-contained HTML page: every panel's phase diagram, hover for a point's settings
    # and steps, click for its curves; it draws with no network (the renderer is inlined).
    input:
        script=f"{SCRIPTS}/write_explorer.py",
        phases=OUT["phases"],
        cells=ALL_CELLS,
        renderer=RENDERER,
    output:
        report(OUT["explorer"], caption="../report/explorer.rst", category="Explorer"),
    log:
        R + "/logs/write_explorer.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {input.phases:q} --renderer {input.renderer:q} --out {output:q}"
        " --log-level {LOG_LEVEL:q} 2> {log:q}"

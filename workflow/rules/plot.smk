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
        seed_diagrams=report(OUT["seed_diagrams"], caption="../report/seed_diagrams.rst",
                             category="Figures"),
    log:
        R + "/logs/plot_phase_diagrams.log",
    params:
        max_epochs=max(P["sweep"].get("training.max_epochs", [P["training"]["max_epochs"]])),
    shell:
        "{PY:q} {input.script:q} --phases-json {input.phases:q} --max-epochs {params.max_epochs:q}"
        " --phase-diagram {output.discrete:q} --smooth-diagram {output.smooth:q}"
        " --grokking-step {output.grokking_step:q} --seed-diagrams {output.seed_diagrams:q}"
        " --log-level {LOG_LEVEL:q} 2> {log:q}"


rule plot_curves:
    input:
        script=f"{SCRIPTS}/plot_curves.py",
        phases=OUT["phases"],
        cells=ALL_CELLS,
    output:
        report(OUT["curves"], caption="../report/curves.rst", category="Figures"),
    log:
        R + "/logs/plot_curves.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {input.phases:q} --out {output:q} --log-level {LOG_LEVEL:q} 2> {log:q}"


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

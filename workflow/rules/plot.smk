# Figures from phases.json (and, for the curves, the representative cells' records).
# The diagrams are weight decay x phases.diagram_columns, one panel per combination of the
# other axes that do not vote (phases.majority_over); seed_diagrams.png draws each voter alone.
# Each rule hands its inputs, outputs and params to one function of grokmap.jobs.steps.


rule plot_phase_diagrams:
    input:
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
                                    category="Figures")} if PLAN.seed_diagrams else {}),
        other_formats=PLAN.figure_files("phase_diagram", "smooth_diagram", "grokking_step",
                                        *(["seed_diagrams"] if PLAN.seed_diagrams else [])),
    log:
        R + "/logs/plot_phase_diagrams.log",
    params:
        max_epochs=max(P["sweep"].get("training.max_epochs", [P["training"]["max_epochs"]])),
        formats=PLAN.fig_formats,
        dpi=RUN["plots"]["dpi"],
        log_level=LOG_LEVEL,
    script:
        "../../scripts/plot_phase_diagrams.py"


rule plot_curves:
    input:
        phases=OUT["phases"],
        cells=PLAN.all_cells,
    output:
        curves=report(OUT["curves"], caption="../report/curves.rst", category="Figures"),
        other_formats=PLAN.figure_files("curves"),
    log:
        R + "/logs/plot_curves.log",
    params:
        params=P,
        results_dir=R,
        formats=PLAN.fig_formats,
        dpi=RUN["plots"]["dpi"],
        log_level=LOG_LEVEL,
    script:
        "../../scripts/plot_curves.py"


rule write_explorer:
    # One self-contained HTML page: every panel's phase diagram, hover for a point's settings
    # and steps, click for its curves; it draws with no network (the renderer is inlined).
    input:
        phases=OUT["phases"],
        cells=PLAN.all_cells,
        renderer=RENDERER,
    output:
        report(OUT["explorer"], caption="../report/explorer.rst", category="Explorer"),
    log:
        R + "/logs/write_explorer.log",
    params:
        params=P,
        results_dir=R,
        log_level=LOG_LEVEL,
    script:
        "../../scripts/write_explorer.py"

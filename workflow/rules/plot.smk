# Figures from phases.json (and, for the curves, the representative cells' records).


rule plot_phase_diagrams:
    input:
        script=f"{SCRIPTS}/plot_phase_diagrams.py",
        phases=rules.classify_phases.output.phases,
    output:
        discrete=report(R + "/figures/phase_diagram.png", caption="../report/phase_diagram.rst",
                        category="Figures"),
        smooth=report(R + "/figures/smooth_diagram.png", caption="../report/smooth_diagram.rst",
                      category="Figures"),
    log:
        R + "/logs/plot_phase_diagrams.log",
    params:
        max_epochs=P["training"]["max_epochs"],
    shell:
        "{PY} {input.script} --phases-json {input.phases} --max-epochs {params.max_epochs}"
        " --phase-diagram {output.discrete} --smooth-diagram {output.smooth}"
        " --log-level {LOG_LEVEL} 2> {log}"


rule plot_curves:
    input:
        script=f"{SCRIPTS}/plot_curves.py",
        phases=rules.classify_phases.output.phases,
        cells=CELL_OUTPUTS,
    output:
        report(R + "/figures/curves.png", caption="../report/curves.rst", category="Figures"),
    log:
        R + "/logs/plot_curves.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {input.phases} --out {output} --log-level {LOG_LEVEL} 2> {log}"

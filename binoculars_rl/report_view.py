"""Rich rendering of a degeneracy report."""

from __future__ import annotations

from rich.table import Table

from binoculars_rl.degeneracy import DegeneracyReport


def report_table(report: DegeneracyReport, title: str = "degeneracy report") -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("samples", str(report.num_samples)),
        ("unique-sample fraction", f"{report.unique_fraction:.3f}"),
        ("mean pairwise Jaccard", f"{report.mean_pairwise_jaccard:.3f}"),
        ("distinct-1", f"{report.distinct_1:.3f}"),
        ("distinct-2", f"{report.distinct_2:.3f}"),
        ("mean length (words)", f"{report.mean_words:.1f}"),
    ]
    if report.mean_tokens is not None:
        rows.append(("mean length (tokens)", f"{report.mean_tokens:.1f}"))
    scores = report.scores
    if scores is not None:
        rows.append(("scored / unscored", f"{scores.count} / {scores.unscored}"))
        if scores.count:
            rows += [
                ("Binoculars score mean ± std", f"{scores.mean:.3f} ± {scores.std:.3f}"),
                (
                    "score min / p10 / p50 / p90 / max",
                    " / ".join(
                        f"{v:.3f}" for v in (scores.min, scores.p10, scores.p50, scores.p90, scores.max)
                    ),
                ),
                (f"flagged as AI (score < {scores.threshold:.4g})", f"{scores.flagged_as_ai_rate:.1%}"),
            ]
    verdict = "YES: " + "; ".join(report.collapse_reasons) if report.likely_template_collapse else "no"
    rows.append(
        (
            "likely template collapse",
            f"[bold red]{verdict}[/]" if report.likely_template_collapse else verdict,
        )
    )
    for name, value in rows:
        table.add_row(name, value)
    return table

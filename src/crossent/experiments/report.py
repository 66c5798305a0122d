"""The report: one standalone HTML page and a Markdown file of the experiments.

Sections: the verdict on each of seed 004's claims (what the seed claimed, what
we measured, whether it holds), the results tables, the learning curves, the
seeds' worked examples (from :mod:`crossent.explain.examples`, when installed),
and the method (data, settings, verdict rules, environment). The HTML page needs
no network: its CSS is inline and the plots are embedded as base64 PNGs.
"""

from __future__ import annotations

import base64
import html
import re
import time
from pathlib import Path
from typing import Any

from . import verdicts as _verdicts
from .plots import plot_all
from .results import ExperimentResults, SummaryRow
from .runner import PRIMARY_METRIC, ProgressCallback, run_experiments

__all__ = ["write_report", "worked_examples", "results_table"]

_TITLES = {
    "binary": "(a) Binary task, one output unit",
    "multiclass": "(b) Single-label multi-class",
    "multilabel": "(c) Multi-label",
}
_CLAIM_OF = {"binary": "a", "multiclass": "b", "multilabel": "c"}
_METRIC_NAMES = {
    "binary_accuracy": "binary acc.",
    "categorical_accuracy": "categorical acc.",
    "exact_match": "exact match",
    "top_k_match": "top-k match",
}


def worked_examples() -> list[dict[str, Any]]:
    """The seeds' worked examples as rows (example, quantity, seed, crossent, agrees)."""
    from crossent.explain import examples
    from crossent.explain.render import format_value

    rows = []
    for trace in examples.all_traces():
        for check in trace.checks:
            rows.append({
                "example": trace.name or trace.title,
                "title": trace.title,
                "source": trace.source or "",
                "quantity": check.label,
                "seed": str(check.seed),
                "crossent": format_value(check.crossent, precision=8, width=200).replace("\n", " "),
                "agrees": bool(check.matches),
                "erratum": check.erratum or "",
            })
    return rows


def method_markdown() -> str:
    """The method (the verdict rules of :mod:`.verdicts`, written once in its docstring) as
    Markdown: its reStructuredText roles and literals become Markdown code.

    >>> print(method_markdown().splitlines()[0])
    Verdicts on seed 004's three claims, worded from the measured numbers by fixed rules.
    >>> "``" in method_markdown() or ":func:" in method_markdown()
    False
    """
    text = (_verdicts.__doc__ or "").strip()
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # :func:`compare` -> `compare`
    return text.replace("``", "`")


def _markdown_to_html(text: str) -> str:
    r"""The little Markdown of :func:`method_markdown` as HTML: paragraphs, "- " lists,
    ``**bold**``, ``*emphasis*`` and ```code```.

    >>> _markdown_to_html("A **rule**:\n\n- `d` is *small*;\n  very small")
    '<p>A <b>rule</b>:</p>\n<ul><li><code>d</code> is <em>small</em>; very small</li></ul>'
    """
    def inline(line: str) -> str:
        line = html.escape(line, quote=False)
        line = re.sub(r"`([^`]+)`", r"<code>\1</code>", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", line)
        return re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", line)

    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:].strip())
                else:
                    items[-1] += " " + line.strip()
            blocks.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items)
                          + "</ul>")
        else:
            blocks.append(f"<p>{inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(blocks)


def _metrics_of(results: ExperimentResults, scenario: str) -> list[str]:
    for row in results.summary:
        if row.scenario == scenario:
            return [m for m in row.test if m != "loss"]
    return []


def _state(results: ExperimentResults, row: SummaryRow) -> str:
    baseline = float(results.datasets[row.scenario]["test_majority_rate"])
    return _verdicts.learning(row, PRIMARY_METRIC[row.scenario], baseline)


def results_table(results: ExperimentResults, scenario: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one scenario's results table (strings, mean ± std over seeds)."""
    metrics = _metrics_of(results, scenario)
    header = ["model", "setup", *[f"test {_METRIC_NAMES.get(m, m)}" for m in metrics],
              "train loss", "largest gradient norm", "learning"]
    rows = []
    for row in results.summary:
        if row.scenario != scenario:
            continue
        rows.append([
            row.model, row.setup_label, *[row.test[m].format() for m in metrics],
            f"{row.train_loss.mean:.3g} ± {row.train_loss.std:.2g}",
            f"{row.max_grad_norm:.3g}", _state(results, row),
        ])
    return header, rows


def _settings_line(results: ExperimentResults, scenario: str) -> str:
    setting = results.config["settings"][scenario]
    info = results.datasets[scenario]
    return (
        f"{info['name']}: {info['num_train']} train / {info['num_test']} test samples, "
        f"{info['num_features']} features; {len(results.config['seeds'])} seeds; "
        f"{setting['epochs']} epochs, batch size {setting['batch_size']}, Adam lr {setting['lr']}; "
        f"majority baseline {info['test_majority_rate']:.3f}"
    )


def _setup_calls(results: ExperimentResults, scenario: str) -> list[tuple[str, str, str]]:
    seen: dict[str, tuple[str, str, str]] = {}
    for run in results.runs:
        if run.scenario == scenario and run.setup not in seen:
            seen[run.setup] = (run.setup_label, run.output, run.loss_code)
    return list(seen.values())


# --------------------------------------------------------------------------------- Markdown


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _markdown(results: ExperimentResults, plots: dict[str, Path],
              examples: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Seed 004's CE-vs-BCE experiments, reproduced by crossent", "",
        f"Produced by `{command}` in {results.wall_s:.0f} s "
        f"(torch {results.environment['torch']}, {results.environment['torch_threads']} thread).",
        "", "## Verdicts", "",
    ]
    for verdict in results.verdicts:
        lines += [f"- **({verdict.claim}) {verdict.status}.** {verdict.headline}"]
    lines.append("")
    for scenario in results.config["scenarios"]:
        verdict = next(v for v in results.verdicts if v.claim == _CLAIM_OF[scenario])
        header, rows = results_table(results, scenario)
        lines += [
            f"## {_TITLES[scenario]}", "",
            f"**Seed 004 claimed:** {verdict.seed_claim}", "",
            f"**Verdict: {verdict.status}.** {verdict.headline}", "",
        ]
        lines += [f"- {d}" for d in verdict.details]
        lines += ["", f"Setting: {_settings_line(results, scenario)}.", ""]
        lines += _md_table(header, rows)
        lines += ["", "Losses under test (z: the model's logits, y: the target):", ""]
        lines += [f"- {label} ({output} output): `{code}`"
                  for label, output, code in _setup_calls(results, scenario)]
        if scenario in plots:
            lines += ["", f"![learning curves, {scenario}]({plots[scenario].name})", ""]
    lines += ["## The seeds' worked examples", ""]
    if examples:
        agree = sum(e["agrees"] for e in examples)
        lines += [f"{agree} of {len(examples)} numbers printed in the seeds agree with crossent.",
                  ""]
        lines += _md_table(
            ["example", "quantity", "seed printed", "crossent", "agrees"],
            [[e["example"], e["quantity"], e["seed"], e["crossent"],
              "yes" if e["agrees"] else f"no — {e['erratum']}"] for e in examples],
        )
        lines.append("")
    lines += ["## Method", "", method_markdown(), "", "### Environment", ""]
    lines += [f"- {key}: {value}" for key, value in results.environment.items()]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 72rem;
       margin: 2rem auto; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d7dbe2; }
.dim { color: #667; } code { font-family: ui-monospace, "DejaVu Sans Mono", monospace;
       font-size: .86rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { border: 1px solid #d7dbe2; padding: .35rem .55rem; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
.status { font-weight: 700; padding: .1rem .45rem; border-radius: 4px; }
.holds { background: #dff3e4; color: #17753a; } .partly { background: #fff3d6; color: #8a5a00; }
.not { background: #fbe0e0; color: #9b1c1c; } .notrun { background: #eee; color: #555; }
.claim { background: #f5f6f8; border-left: 4px solid #8895aa; padding: .5rem .8rem; }
img.plot { max-width: 100%; border: 1px solid #d7dbe2; }
pre { white-space: pre-wrap; background: #f5f6f8; padding: .6rem; border-radius: 6px; }
.yes { color: #17753a; } .no { color: #9b1c1c; }
"""

# Logs an error for any plot that failed to decode (checked by the screenshot test).
_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img.plot"), ok = 0;
  images.forEach(function (image) {
    if (image.complete && image.naturalWidth > 0) { ok += 1; }
    else { console.error("plot not rendered: " + image.alt); }
  });
  document.body.setAttribute("data-plots-rendered", ok + "/" + images.length);
});
"""


def _status_class(status: str) -> str:
    return {"holds": "holds", "partly holds": "partly", "does not hold": "not"}.get(
        status, "notrun")


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    escape = html.escape
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(results: ExperimentResults, plots: dict[str, Path],
          examples: list[dict[str, Any]], command: str) -> str:
    escape = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>crossent: seed 004's CE-vs-BCE experiments</title>",
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>",
        "<h1>Seed 004's CE-vs-BCE experiments, reproduced by crossent</h1>",
        f'<p class="dim">Produced by <code>{escape(command)}</code> in '
        f"{results.wall_s:.0f} s; torch {escape(str(results.environment['torch']))}. "
        "Figures are final-epoch test metrics, mean ± std over seeds.</p>",
        "<h2>Verdicts</h2><table><tr><th>claim</th><th>status</th><th>measured</th></tr>",
    ]
    for verdict in results.verdicts:
        parts.append(
            f"<tr><td>({verdict.claim})</td><td><span class=\"status "
            f"{_status_class(verdict.status)}\">{escape(verdict.status)}</span></td>"
            f"<td>{escape(verdict.headline)}</td></tr>"
        )
    parts.append("</table>")
    for scenario in results.config["scenarios"]:
        verdict = next(v for v in results.verdicts if v.claim == _CLAIM_OF[scenario])
        header, rows = results_table(results, scenario)
        parts += [
            f"<h2>{escape(_TITLES[scenario])}</h2>",
            f'<p class="claim"><b>Seed 004 claimed:</b> {escape(verdict.seed_claim)}</p>',
            f'<p><span class="status {_status_class(verdict.status)}">'
            f"{escape(verdict.status)}</span> {escape(verdict.headline)}</p>",
            "<ul>" + "".join(f"<li>{escape(d)}</li>" for d in verdict.details) + "</ul>",
            f'<p class="dim">{escape(_settings_line(results, scenario))}</p>',
            _html_table(header, rows),
            "<p>Losses under test (z: the model's logits, y: the target):</p><ul>",
        ]
        parts += [f"<li>{escape(label)} ({escape(output)} output): <code>{escape(code)}</code></li>"
                  for label, output, code in _setup_calls(results, scenario)]
        parts.append("</ul>")
        if scenario in plots:
            data = base64.b64encode(plots[scenario].read_bytes()).decode()
            parts.append(f'<img class="plot" alt="learning curves, {escape(scenario)}" '
                         f'src="data:image/png;base64,{data}">')
    parts.append("<h2>The seeds' worked examples</h2>")
    if examples:
        agree = sum(e["agrees"] for e in examples)
        parts.append(f"<p>{agree} of {len(examples)} numbers printed in the seeds agree with "
                     "crossent.</p><table><tr><th>example</th><th>quantity</th>"
                     "<th>seed printed</th><th>crossent</th><th>agrees</th></tr>")
        for e in examples:
            mark = ('<span class="yes">yes</span>' if e["agrees"]
                    else f'<span class="no">no</span> {escape(e["erratum"])}')
            parts.append(
                f"<tr><td>{escape(e['example'])}</td><td>{escape(e['quantity'])}</td>"
                f"<td><code>{escape(e['seed'])}</code></td>"
                f"<td><code>{escape(e['crossent'])}</code></td><td>{mark}</td></tr>"
            )
        parts.append("</table>")
    parts += [
        "<h2>Method and verdict rules</h2>",
        _markdown_to_html(method_markdown()),
        "<h3>Environment</h3><ul>",
        *[f"<li>{escape(str(k))}: {escape(str(v))}</li>" for k, v in results.environment.items()],
        "</ul></body></html>",
    ]
    return "\n".join(parts)


def write_report(
    out: str | Path,
    *,
    results: ExperimentResults | None = None,
    epochs: int | None = None,
    seeds: int = 3,
    data: str | Path | None = None,
    progress: ProgressCallback | None = None,
    command: str = "crossent report",
) -> dict[str, Path]:
    """Run the experiments (unless ``results`` is given) and write the report into ``out``.

    Writes ``report.html`` (standalone), ``report.md``, ``results.json`` and
    ``learning_curves_<scenario>.png``; returns their paths by name.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if results is None:
        started = time.perf_counter()
        results = run_experiments(epochs=epochs, seeds=seeds, data=data, progress=progress)
        results.wall_s = time.perf_counter() - started
    plots = plot_all(results, out)
    examples = worked_examples()
    paths = {"results": results.save(out / "results.json")}
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(_markdown(results, plots, examples, command), encoding="utf-8")
    paths["html"] = out / "report.html"
    paths["html"].write_text(_html(results, plots, examples, command), encoding="utf-8")
    paths.update({f"plot_{k}": v for k, v in plots.items()})
    return paths

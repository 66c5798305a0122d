"""Renderers of a :class:`~crossent.explain.Trace`: terminal (rich), JSON, Markdown, HTML.

The HTML is standalone: every formula is pre-rendered to SVG with matplotlib's
mathtext (glyphs as paths, embedded as data URIs), so the page needs no network,
no web font and no JavaScript math library to show its formulas.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import re
from typing import Any

import numpy as np

from ._i18n import text as _translated
from ._trace import Check, Trace, to_numpy

__all__ = ["to_text", "to_json", "to_markdown", "to_html", "latex_to_svg", "render", "FORMATS"]

FORMATS = ("text", "json", "markdown", "html")


def format_value(value: Any, *, precision: int = 6, width: int = 56) -> str:
    """A number or array as text with ``precision`` decimals (``nan``: a position not counted)."""
    value = to_numpy(value)
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value[()]
        else:
            if value.dtype.kind == "f":
                return np.array2string(
                    value, precision=precision, max_line_width=width, floatmode="maxprec",
                    suppress_small=False, separator=", ",
                )
            return np.array2string(value, max_line_width=width, separator=", ")
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if number != 0 and np.isfinite(number) and not 1e-4 <= abs(number) < 1e6:
            return f"{number:.{precision}e}"
        return f"{number:.8g}"
    return str(value)


def _values_text(values: dict[str, Any], width: int = 56) -> str:
    lines = []
    for label, value in values.items():
        text = format_value(value, width=width - len(label) - 3)
        indent = " " * (len(label) + 3)
        lines.append(f"{label} = " + text.replace("\n", "\n" + indent))
    return "\n".join(lines)


def _check_value(check: Check, width: int) -> str:
    """crossent's value with a digit or two more than the seed printed (scalars)."""
    value = to_numpy(check.crossent)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (float, np.floating)):
        digits = max((len(d.lstrip("0")) for d in re.findall(r"[\d.]+", check.seed.split("e")[0])
                      if d.replace(".", "")), default=6)
        return f"{float(value):.{min(max(digits + 1, 6), 17)}g}"
    return format_value(value, precision=8, width=width)


def _check_mark(check: Check, lang: str = "en") -> str:
    if check.matches:
        return _translated("matches", lang)
    return _translated("differs (see note)" if check.erratum else "DIFFERS", lang)


# --- terminal -------------------------------------------------------------------------------


def to_text(trace: Trace, *, width: int = 80, color: bool = False) -> str:
    """The trace as rich tables for a terminal ``width`` columns wide (80 by default).

    >>> from crossent import explain
    >>> text = explain.to_text(explain.cross_entropy([[1.4, 3.2, 5.0]], [2], weight=[1, 2, 1.0]))
    >>> print(text.splitlines()[1].rstrip())
    crossent.cross_entropy(logits, target, axis=-1, weight=weight,
    >>> [line.split() for line in text.splitlines() if line.strip().startswith("weight")]
    [['weight', '[1.,', '2.,', '1.]']]
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    lang = trace.lang

    def words(message: str) -> str:
        return _translated(message, lang)

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system=(
        "truecolor" if color else None), highlight=False, soft_wrap=False)
    heading = trace.title if trace.name is None else f"{trace.name}: {trace.title}"
    console.print(Text(heading, style="bold cyan"))
    if trace.source:
        console.print(Text(f"{words('source')}: {trace.source}", style="dim"))
    console.print(Text(f"{trace.function}({_call_args(trace)})", style="dim"), overflow="fold")

    inputs = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    inputs.add_column("input", style="bold")
    inputs.add_column("value", overflow="fold")
    for label, value in _inputs(trace).items():
        inputs.add_row(Text(label), Text(format_value(value, width=width - 20)))
    console.print(inputs)

    # two columns, the step's name atop its formula: the room goes to formulas and values
    steps = Table(box=box.ROUNDED, show_lines=True, expand=False, width=width)
    steps.add_column(f"{words('step')}: {words('formula and meaning')}", ratio=1, overflow="fold")
    steps.add_column(words("values"), ratio=1, overflow="fold")
    values_width = (width - 7) // 2
    for number, step in enumerate(trace.steps, 1):
        steps.add_row(
            Text.assemble((f"{number}. {step.name}", "bold"), "\n", (step.text, "green"), "\n",
                          (step.meaning, "italic dim")),
            Text(_values_text(step.values, width=values_width)),
        )
    console.print(steps)
    console.print(Text.assemble((f"{words('result')}: ", "bold"),
                                (format_value(trace.value, width=80), "bold yellow")))
    if trace.checks:
        checks = Table(title=words("the seed's numbers next to crossent's"), box=box.SIMPLE_HEAVY,
                       width=width)
        checks.add_column(words("quantity"), ratio=3, overflow="fold")
        checks.add_column(words("seed printed"), ratio=3, overflow="fold")
        checks.add_column("crossent", ratio=3, overflow="fold")
        checks.add_column("", ratio=2)
        for check in trace.checks:
            style = "green" if check.matches else "yellow"
            checks.add_row(Text(check.label), Text(check.seed),
                           Text(_check_value(check, width=28)),
                           Text(_check_mark(check, lang), style=style))
        console.print(checks)
    for note in _all_notes(trace):
        console.print(Text.assemble((f"{words('note')}: ", "bold yellow"), note))
    if trace.advice is not None:
        if not trace.advice:
            console.print(Text.assemble((f"{words('advice')}: ", "bold green"), words(NO_ADVICE)))
        for item in trace.advice:
            console.print(Text.assemble((f"{words('advice')} [{item.code}]: ", "bold red"),
                                        item.message, f"\n  {words('why')}: ", item.reason,
                                        f"\n  {words('fix')}: ", (item.fix, "bold")))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


NO_ADVICE = "nothing looks wrong with these inputs."
_HTML_LANG = {"zh": "zh-CN"}
_CHECKS_HEADING = "The seed's numbers next to crossent's"


def _all_notes(trace: Trace) -> list[str]:
    notes = [f"{check.label}: {check.erratum}" for check in trace.checks if check.erratum]
    return notes + list(trace.notes)


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0


def _inputs(trace: Trace) -> dict[str, Any]:
    """The arrays of the call: the inputs and every array option (weight, pos_weight, ...)."""
    arrays = {key: value for key, value in trace.options.items() if _is_array(value)}
    return {**trace.inputs, **arrays}


def _call_args(trace: Trace) -> str:
    """``logits, target, weight=weight, reduction='mean'``: array options by name."""
    options = ", ".join(f"{key}={key}" if _is_array(value) else f"{key}={value!r}"
                        for key, value in trace.options.items())
    return ", ".join(trace.inputs) + (", " + options if options else "")


# --- JSON and Markdown ----------------------------------------------------------------------


def to_json(trace: Trace, *, indent: int = 2) -> str:
    """The trace as JSON (arrays as nested lists; NaN and inf as strings).

    >>> import json
    >>> from crossent import explain
    >>> json.loads(explain.to_json(explain.entropy([0.5, 0.5], base=2)))["value"]  # one bit
    1.0
    >>> trace = explain.nll_loss([[0.0], [-1.0]], [-100, 0], reduction="none")
    >>> json.loads(explain.to_json(trace))["steps"][1]["values"]["x[y]"]  # NaN: not counted
    ['nan', -1.0]
    """
    return json.dumps(trace.to_dict(), indent=indent, ensure_ascii=False)


def to_markdown(trace: Trace) -> str:
    r"""The trace as Markdown: a section per step with its formula (``$$…$$``) and values.

    >>> from crossent import explain
    >>> [line for line in explain.to_markdown(explain.entropy([0.5, 0.5])).splitlines()
    ...  if line.startswith("$$")][0]
    '$$I(x) = -\\log_b p(x)$$'
    """
    lang = trace.lang

    def words(message: str) -> str:
        return _translated(message, lang)

    heading = trace.title if trace.name is None else f"{trace.name}: {trace.title}"
    lines = [f"# {heading}", ""]
    if trace.source:
        lines += [f"{words('source').capitalize()}: {trace.source}", ""]
    lines += [f"`{trace.function}({_call_args(trace)})`", "", f"## {words('Inputs')}", "",
              "```text"]
    lines += [_values_text(_inputs(trace), width=90), "```", "", f"## {words('Steps')}", ""]
    for number, step in enumerate(trace.steps, 1):
        lines += [
            f"### {number}. {step.name}", "", step.meaning, "", f"$${step.latex}$$", "",
            f"`{step.text}`", "", "```text", _values_text(step.values, width=90), "```", "",
        ]
    lines += [f"## {words('Result')}", "", "```text", format_value(trace.value, width=90), "```",
              ""]
    if trace.checks:
        lines += [f"## {words(_CHECKS_HEADING)}",
                  "", f"| {words('quantity')} | {words('seed printed')} | crossent | |",
                  "|---|---|---|---|"]
        for check in trace.checks:
            crossent = _check_value(check, width=200).replace("\n", " ")
            lines.append(f"| {check.label} | `{check.seed}` | `{crossent}` | "
                         f"{_check_mark(check, lang)} |")
        lines.append("")
    for note in _all_notes(trace):
        lines += [f"> **{words('Note.')}** {note}", ""]
    if trace.advice is not None:
        lines += [f"## {words('Advice')}", ""]
        if not trace.advice:
            lines += [words(NO_ADVICE), ""]
        for item in trace.advice:
            lines += [f"- **{item.code}**: {item.message} {item.reason} *{words('Fix:')}* {item.fix}"]
        lines.append("")
    return "\n".join(lines)


# --- HTML -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def latex_to_svg(latex: str, *, fontsize: float = 15.0) -> str:
    """``latex`` (matplotlib mathtext) rendered offline to an SVG document (glyphs as paths).

    >>> svg = latex_to_svg(r"\\frac{e^{z_j}}{\\sum_k e^{z_k}}")
    >>> "<path" in svg and "<text" not in svg  # glyphs drawn as paths: no font needed
    True
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "path", "mathtext.fontset": "cm",
                                "svg.hashsalt": "crossent"}):
        figure = Figure(figsize=(0.01, 0.01))
        FigureCanvasSVG(figure)
        figure.text(0, 0, f"${latex}$", fontsize=fontsize)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.03,
                       transparent=True)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _formula_img(latex: str) -> str:
    # display-style fractions (\dfrac): inline \frac is too small to read on a page
    data = base64.b64encode(latex_to_svg(latex.replace(r"\frac", r"\dfrac")).encode()).decode()
    return (f'<img class="formula" alt="{html.escape(latex)}" '
            f'src="data:image/svg+xml;base64,{data}">')


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } .dim { color: #667; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88rem; }
pre { background: #f5f6f8; padding: .5rem .7rem; border-radius: 6px; overflow-x: auto;
      margin: .3rem 0; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; table-layout: fixed; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
section.step { border: 1px solid #d7dbe2; border-radius: 8px; padding: .6rem 1rem;
               margin: .8rem 0; }
section.step h3 { margin: .1rem 0 .2rem; font-size: 1.08rem; } .n { color: #889; }
.formula-row { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1.5rem; }
code.plain { color: #445; }
th, td { border: 1px solid #d7dbe2; padding: .45rem .6rem; vertical-align: top; text-align: left; }
th { background: #eef1f6; } td.n { color: #889; width: 1.5rem; }
.meaning { color: #556; font-style: italic; font-size: .95rem; margin: 0 0 .3rem; }
img.formula { display: block; margin: .3rem 0; max-width: 100%; }
.ok { color: #17753a; font-weight: 600; } .flag { color: #a05a00; font-weight: 600; }
.note { background: #fff7e6; border-left: 4px solid #f0a020; padding: .5rem .8rem;
        margin: .5rem 0; }
.result { font-size: 1.1rem; }
.advice { background: #fdecea; border-left: 4px solid #d9534f; padding: .5rem .8rem;
          margin: .5rem 0; }
"""

# Verifies, in the browser, that every formula image decoded; used by the screenshot test.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img.formula"), ok = 0;
  images.forEach(function (image) {
    if (image.complete && image.naturalWidth > 0) { ok += 1; }
    else { console.error("formula not rendered: " + image.alt); }
  });
  document.body.setAttribute("data-formulas-rendered", ok + "/" + images.length);
});
"""


def to_html(trace: Trace) -> str:
    """A standalone HTML page of the trace: formulas pre-rendered to SVG, no network needed.

    >>> from crossent import explain
    >>> page = explain.to_html(explain.entropy([0.5, 0.5]))  # three steps, three formulas
    >>> 'src="http' not in page, page.count('src="data:image/svg+xml;base64,')
    (True, 3)
    """
    escape = html.escape
    lang = trace.lang

    def words(message: str) -> str:
        return escape(_translated(message, lang))

    heading = trace.title if trace.name is None else f"{trace.name}: {trace.title}"
    parts = [
        "<!DOCTYPE html>", f'<html lang="{_HTML_LANG.get(lang, lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(heading)}</title><style>{_CSS}</style>",
        f"<script>{_SCRIPT}</script></head><body>",
        f"<h1>{escape(heading)}</h1>",
    ]
    if trace.source:
        parts.append(f'<p class="dim">{words("source")}: {escape(trace.source)}</p>')
    parts.append(f"<p><code>{escape(trace.function)}({escape(_call_args(trace))})</code></p>")
    parts.append(f'<h2>{words("Inputs")}</h2><table><col style="width: 9rem"><col>')
    for label, value in _inputs(trace).items():
        parts.append(f"<tr><th>{escape(label)}</th><td><pre>{escape(format_value(value, width=90))}"
                     "</pre></td></tr>")
    parts.append(f"</table><h2>{words('Steps')}</h2>")
    for number, step in enumerate(trace.steps, 1):
        parts.append(
            f'<section class="step"><h3><span class="n">{number}.</span> {escape(step.name)}</h3>'
            f'<p class="meaning">{escape(step.meaning)}</p>'
            f'<div class="formula-row">{_formula_img(step.latex)}'
            f'<code class="plain">{escape(step.text)}</code></div>'
            f"<pre>{escape(_values_text(step.values, width=100))}</pre></section>"
        )
    result = escape(format_value(trace.value, width=90))
    parts.append(f'<p class="result"><b>{words("result")}:</b> <code>{result}</code></p>')
    if trace.checks:
        parts.append(f"<h2>{words(_CHECKS_HEADING)}"
                     '</h2><table><col style="width: 28%"><col style="width: 31%">'
                     f'<col style="width: 28%"><col><tr><th>{words("quantity")}</th>'
                     f"<th>{words('seed printed')}</th><th>crossent</th><th></th></tr>")
        for check in trace.checks:
            css = "ok" if check.matches else "flag"
            parts.append(
                f"<tr><td>{escape(check.label)}</td><td><pre>{escape(check.seed)}</pre></td>"
                f"<td><pre>{escape(_check_value(check, width=48))}</pre></td>"
                f'<td class="{css}">{escape(_check_mark(check, lang))}</td></tr>'
            )
        parts.append("</table>")
    for note in _all_notes(trace):
        parts.append(f'<div class="note"><b>{words("Note.")}</b> {escape(note)}</div>')
    if trace.advice is not None:
        parts.append(f"<h2>{words('Advice')}</h2>")
        if not trace.advice:
            parts.append(f"<p>{words(NO_ADVICE)}</p>")
        for item in trace.advice:
            parts.append(
                f'<div class="advice"><b>{escape(item.code)}</b>: {escape(item.message)} '
                f"{escape(item.reason)} <b>{words('Fix:')}</b> {escape(item.fix)}</div>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def render(trace: Trace, format: str = "text", *, color: bool = False, width: int = 80) -> str:
    """The trace in ``format``: 'text', 'json', 'markdown' or 'html'."""
    if format == "text":
        return to_text(trace, color=color, width=width)
    if format == "json":
        return to_json(trace)
    if format == "markdown":
        return to_markdown(trace)
    if format == "html":
        return to_html(trace)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")

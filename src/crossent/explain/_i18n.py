"""Traces in English and Simplified Chinese: one message catalogue, applied to finished traces.

Traces are built in English; :func:`translate` returns a copy whose words (title, step
names and meanings, checks, notes, the seed's name) come from the catalogue of
``lang``. Formulas, numbers and the labels of values stay as they are (a program
reading ``values["loss"]`` finds it in every language). The catalogue, ``zh.json``
next to this module, holds exact messages and templates for messages with a number
or a unit in them (``"entropy in {unit}"``); a captured part is translated in turn.

A message the catalogue lacks stays in English (:func:`missing` lists them; the
tests require none for the traces crossent builds).

>>> from crossent import explain
>>> trace = explain.translate(explain.entropy([0.5, 0.5], base=2), "zh")
>>> trace.title, trace.steps[0].name, trace.lang
('熵（单位：比特）', '信息量', 'zh')
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

from ._trace import Trace

__all__ = ["LANGS", "check_lang", "text", "reasons", "translate", "missing"]

LANGS = ("en", "zh")  # English (the language traces are built in), Simplified Chinese


def check_lang(lang: str) -> str:
    """``lang`` if crossent speaks it, else a ValueError listing the languages.

    >>> check_lang("zh")
    'zh'
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


@functools.cache
def _catalogue(lang: str) -> tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...]]:
    data = json.loads((Path(__file__).with_name(f"{lang}.json")).read_text(encoding="utf-8"))
    templates = []
    for english, translated in data["templates"].items():
        # "entropy in {unit}" -> ^entropy\ in\ (?P<unit>.+?)$
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(english))
        templates.append((re.compile(f"^{pattern}$", re.DOTALL), translated))
    return data["messages"], tuple(templates)


def _lookup(message: str, lang: str) -> str | None:
    messages, templates = _catalogue(lang)
    if message in messages:
        return messages[message]
    for pattern, translated in templates:
        match = pattern.match(message)
        if match:
            parts = {name: text(value, lang) for name, value in match.groupdict().items()}
            return translated.format(**parts)
    return None


def text(message: str, lang: str) -> str:
    """``message`` in ``lang`` (the message itself when the catalogue lacks it, or lang='en').


    >>> text("KL divergence in nats", "zh")
    'KL 散度（单位：奈特）'
    """
    if lang == "en" or not message:
        return message
    found = _lookup(message, lang)
    return message if found is None else found


def reasons(message: str, lang: str) -> str:
    """Reasons joined by ``"; "`` (as :func:`crossent.compare` joins them), each in ``lang``.

    >>> reasons("TensorFlow has no label smoothing; optax has no label smoothing", "zh")
    'TensorFlow 没有标签平滑；optax 没有标签平滑'
    """
    if lang == "en":
        return message
    return "；".join(text(part, lang) for part in message.split("; "))


# Two words in a row (not part of an identifier): prose, which needs a translation; plain-text
# formulas and code ("p = sigmoid(x)", "F.log_softmax") need none.
_PROSE = re.compile(r"(?<![\w.])[A-Za-z]{2,} [A-Za-z]{2,}(?![\w(])")


def _strings(trace: Trace) -> list[str]:
    """The words of ``trace`` that must be translated: every title, name, meaning, note and
    erratum, and the check labels and plain formulas that hold prose."""
    required = [trace.title, trace.source or ""] + list(trace.notes)
    optional = []
    for step in trace.steps:
        required += [step.name, step.meaning]
        optional.append(step.text)
    for check in trace.checks:
        required.append(check.erratum or "")
        optional.append(check.label)
    return [s for s in required if s] + [s for s in optional if _PROSE.search(s)]


def missing(trace: Trace, lang: str) -> list[str]:
    """The words of ``trace`` that the catalogue of ``lang`` lacks (none, for crossent's own
    traces and examples: the tests check)."""
    if lang == "en":
        return []
    return [s for s in _strings(trace) if _lookup(s, lang) is None]


def translate(trace: Trace, lang: str) -> Trace:
    """A copy of ``trace`` in ``lang`` ('en' or 'zh'); the numbers are shared, not copied.

    Plain-text formulas are translated only where they hold words ("L = sum of the
    losses"); the LaTeX formulas and the labels of values never change.
    """
    check_lang(lang)
    if lang == trace.lang:
        return trace
    if trace.lang != "en":
        raise ValueError(f"translate from English only; this trace is in {trace.lang!r}")
    result = copy.copy(trace)
    result.lang = lang
    result.title = text(trace.title, lang)
    result.source = None if trace.source is None else text(trace.source, lang)
    result.steps = [_step(step, lang) for step in trace.steps]
    result.checks = [copy.copy(check) for check in trace.checks]
    for check in result.checks:
        check.label = text(check.label, lang)
        check.erratum = None if check.erratum is None else text(check.erratum, lang)
    result.notes = [text(note, lang) for note in trace.notes]
    return result


def _step(step: Any, lang: str) -> Any:
    translated = copy.copy(step)
    translated.name = text(step.name, lang)
    translated.meaning = text(step.meaning, lang)
    translated.text = text(step.text, lang)
    return translated

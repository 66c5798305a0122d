"""crossent.plots: every figure is written, non-empty, with the expected curves and labels."""

from __future__ import annotations

import numpy as np
import pytest

from crossent import information as info
from crossent import plots

# curves each plot must draw (labelled lines), as the seeds draw them
EXPECTED_LINES = {
    "information": 2,
    "entropy-terms": 3,
    "binary-entropy": 1,
    "cross-entropy": 11,  # p in {0, 0.1, ..., 1}
    "softmax-temperature": 3,
    "sigmoid": 2,
    "bce-logit": 2,  # y = 0 and y = 1
}


def _curves(figure):
    return [line for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]


def test_every_plot_is_listed() -> None:
    assert set(plots.names()) == set(EXPECTED_LINES)


@pytest.mark.parametrize("name", list(EXPECTED_LINES))
def test_plot_has_curves_labels_title_and_legend(name: str) -> None:
    figure = plots.figure(name)
    axes = figure.axes[0]
    assert len(_curves(figure)) == EXPECTED_LINES[name] == plots.PLOTS[name].lines
    assert axes.get_title() and axes.get_xlabel() and axes.get_ylabel()
    legend = axes.get_legend()
    assert legend is not None and len(legend.get_texts()) == EXPECTED_LINES[name]
    for line in _curves(figure):
        assert np.all(np.isfinite(line.get_ydata()))


@pytest.mark.parametrize("suffix", [".png", ".svg"])
@pytest.mark.parametrize("name", list(EXPECTED_LINES))
def test_plot_file_is_written(tmp_path, name: str, suffix: str) -> None:
    path = plots.plot(name, tmp_path / f"{name}{suffix}")
    data = path.read_bytes()
    assert len(data) > 5_000
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert b"<svg" in data[:2000]


def test_cross_entropy_curves_are_minus_p_log_q() -> None:
    """The p = 0.5 curve is -0.5 log q, by hand; p = 0 is flat zero."""
    lines = {line.get_label(): line for line in _curves(plots.figure("cross-entropy"))}
    q, values = lines["p=0.5"].get_xdata(), lines["p=0.5"].get_ydata()
    np.testing.assert_allclose(values, -0.5 * np.log(q), rtol=1e-12)
    np.testing.assert_array_equal(lines["p=0"].get_ydata(), 0.0)


def test_binary_entropy_peaks_at_one_bit() -> None:
    (line,) = _curves(plots.figure("binary-entropy"))
    p, bits = line.get_xdata(), line.get_ydata()
    assert bits.max() == pytest.approx(1.0) and p[np.argmax(bits)] == pytest.approx(0.5)
    assert float(info.binary_entropy(0.5, base=2)) == pytest.approx(1.0)


def test_bce_curves_cross_at_log_2() -> None:
    y0, y1 = _curves(plots.figure("bce-logit"))
    x = y0.get_xdata()
    zero = np.argmin(np.abs(x))
    assert y0.get_ydata()[zero] == pytest.approx(np.log(2)) == y1.get_ydata()[zero]


def test_bad_name_and_suffix(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown plot 'entropie'"):
        plots.figure("entropie")
    with pytest.raises(ValueError, match=r"out must end in \.png or \.svg"):
        plots.plot("sigmoid", tmp_path / "sigmoid.jpg")

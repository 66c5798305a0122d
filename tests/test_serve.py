"""crossent.serve: the playground's API (in-process), its limits and errors, its languages.

Expected numbers come from NumPy in float64 written here (softmax, log-sum-exp,
sigmoid) or from the seeds, never from the API's own helpers; the one comparison
with crossent's output is the API against ``crossent explain --format json``, which
is what the API promises to return.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from crossent.cli import app as cli  # noqa: E402
from crossent.serve import _compute, create_app, is_loopback, serve  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LOGITS = [[1.4, 3.2, 5.0], [0.4, 0.3, 0.7]]


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _cross_entropy(z, target):  # float64 reference: log-sum-exp minus the target's logit
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=-1))
    return lse - z[np.arange(len(target)), target]


# --- /api/explain is crossent explain --format json -------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("loss, first, second, options, flags", [
    ("cross_entropy", LOGITS, [2, 1], {"label_smoothing": 0.1}, ["--label-smoothing", "0.1"]),
    ("nll_loss", [[-0.5, -1.0, -2.0]], [1], {"reduction": "sum"}, ["--reduction", "sum"]),
    ("binary_cross_entropy_with_logits", [[0.7, -1.2]], [[1.0, 0.0]], {"pos_weight": [2.0, 1.0]},
     ["--pos-weight", "[2.0, 1.0]"]),
    ("kl_divergence", [[0.5, 0.5]], [[0.9, 0.1]], {"base": 2}, ["--base", "2"]),
])
def test_explain_answers_what_the_command_line_prints(client, lang, loss, first, second, options,
                                                      flags):
    response = client.post("/api/explain", json={"loss": loss, "logits": first, "target": second,
                                                 "options": options, "lang": lang})
    assert response.status_code == 200
    printed = CliRunner().invoke(cli, ["explain", loss, "--logits", json.dumps(first), "--target",
                                       json.dumps(second), *flags, "--format", "json",
                                       "--lang", lang])
    assert printed.exit_code == 0, printed.output
    assert response.json() == json.loads(printed.output)
    assert response.json()["lang"] == lang


def test_explain_value_is_the_float64_cross_entropy(client):
    answer = client.post("/api/explain", json={"logits": LOGITS, "target": [2, 1]}).json()
    assert answer["value"] == pytest.approx(_cross_entropy(LOGITS, [2, 1]).mean(), rel=1e-14)
    assert [s["name"] for s in answer["steps"]][:2] == ["softmax", "log-softmax"]


def test_temperature_divides_the_logits_and_is_shown_as_a_step(client):
    answer = client.post("/api/explain", json={"logits": LOGITS, "target": [2, 1],
                                               "options": {"temperature": 2.0}}).json()
    assert answer["steps"][0]["name"] == "temperature"
    assert answer["options"]["temperature"] == 2.0
    expected = _cross_entropy(np.asarray(LOGITS) / 2.0, [2, 1]).mean()
    assert answer["value"] == pytest.approx(expected, rel=1e-14)
    zh = client.post("/api/explain", json={"logits": LOGITS, "target": [2, 1], "lang": "zh",
                                           "options": {"temperature": 2.0}}).json()
    assert zh["steps"][0]["name"] == "温度"


def test_kl_temperature_softens_both_distributions(client):
    answer = client.post("/api/explain", json={"loss": "kl_divergence", "logits": [[0.5, 0.5]],
                                               "target": [[0.9, 0.1]],
                                               "options": {"temperature": 2.0}}).json()
    q = np.sqrt([0.9, 0.1]) / np.sqrt([0.9, 0.1]).sum()  # softmax(log q / 2)
    assert answer["value"][0] == pytest.approx(float(np.sum(0.5 * np.log(0.5 / q))), rel=1e-12)


# --- the playground's numbers against float64 references ----------------------------------------


def test_gradient_is_softmax_minus_one_hot(client):
    answer = client.post("/api/gradient", json={"logits": LOGITS, "target": [2, 1]}).json()
    expected = _softmax(LOGITS) - np.eye(3)[[2, 1]]
    np.testing.assert_allclose(answer["grad_each"], expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(answer["grad"], expected / 2, rtol=1e-13, atol=1e-15)  # mean of 2
    np.testing.assert_allclose(answer["probs"], _softmax(LOGITS), rtol=1e-13)
    np.testing.assert_allclose(answer["each"], _cross_entropy(LOGITS, [2, 1]), rtol=1e-13)


def test_gradient_of_binary_cross_entropy_with_logits_is_sigmoid_minus_target(client):
    x, t = np.array([[0.7, -1.2, 3.0]]), np.array([[1.0, 0.0, 1.0]])
    answer = client.post("/api/gradient", json={"loss": "bce_with_logits", "logits": x.tolist(),
                                                "target": t.tolist(),
                                                "options": {"reduction": "sum"}}).json()
    np.testing.assert_allclose(answer["grad"], 1 / (1 + np.exp(-x)) - t, rtol=1e-13)


def test_the_loss_curve_moves_one_logit(client):
    answer = client.post("/api/plot", json={"logits": LOGITS, "target": [2, 1], "row": 0,
                                            "column": 1, "points": 9, "span": 4.0}).json()
    assert answer["position"] == [0, 1] and answer["current"] == 3.2
    np.testing.assert_allclose(answer["x"], np.linspace(-0.8, 7.2, 9), rtol=1e-13)
    for x, y in zip(answer["x"], answer["y"], strict=True):
        moved = np.array(LOGITS)
        moved[0, 1] = x
        assert y == pytest.approx(_cross_entropy(moved, [2, 1]).mean(), rel=1e-12)
    assert answer["slope"] == pytest.approx((_softmax(LOGITS)[0, 1]) / 2, rel=1e-12)


def test_numerics_show_float16_overflow_next_to_the_stable_form(client):
    logits = [[12.0, 1.0, 3.0], [90.0, 89.0, 0.0]]
    answer = client.post("/api/numerics", json={"logits": logits, "target": [0, 1]}).json()
    float16, float32 = answer["dtypes"]
    assert float16["overflow_at"] == pytest.approx(math.log(65504.0))
    assert float32["overflow_at"] == pytest.approx(math.log(float(np.finfo(np.float32).max)))
    # exp(12) > 65504: the naive float16 softmax is inf / inf = NaN; float32 holds until 88.7
    assert float16["exp"][0][0] == "inf" and float16["naive"][0][0] == "nan"
    assert float32["naive"][0] == pytest.approx(_softmax(logits[0]), rel=1e-6)
    assert float32["exp"][1][0] == "inf" and float32["naive"][1][0] == "nan"
    assert float16["overflowed"] and float32["overflowed"]
    for dtype, tolerance in ((float16, 1e-6), (float32, 1e-6)):
        np.testing.assert_allclose(dtype["stable"], _softmax(np.asarray(logits, np.float32)),
                                   rtol=tolerance, atol=1e-7)
        # computed in float32: the log-sum-exp near 12 carries an absolute error of about 1e-6
        np.testing.assert_allclose(dtype["stable_loss"], _cross_entropy(logits, [0, 1]), rtol=1e-6,
                                   atol=2e-6)
    assert float32["naive_loss"][1] == "nan"


def test_compare_gives_reasons_in_both_languages(client):
    body = {"logits": LOGITS, "target": [2, 1], "options": {"label_smoothing": 0.1,
                                                            "reduction": "sum"}}
    english = client.post("/api/compare", json=body).json()
    chinese = client.post("/api/compare", json={**body, "lang": "zh"}).json()
    assert english["rows"][0]["value"] == pytest.approx(
        client.post("/api/explain", json={**body, "options": {"label_smoothing": 0.1}}).json()[
            "value"], rel=1e-14)
    assert english["ignored_options"] == ["reduction"]
    reasons = {row["convention"]: row["reason"] for row in english["rows"]}
    assert reasons["Keras SparseCategoricalCrossentropy (jax)"] == (
        "Keras's sparse loss has no label smoothing")
    translated = {row["convention"]: row["reason"] for row in chinese["rows"]}
    assert translated["Keras SparseCategoricalCrossentropy (jax)"] == "Keras 的稀疏（sparse）损失没有标签平滑"


# --- examples, curves, formulas ------------------------------------------------------------------


def test_every_example_is_served_with_the_seed_numbers(client):
    listed = client.get("/api/examples").json()
    from crossent.explain import examples

    assert [e["name"] for e in listed] == examples.names()
    for entry in listed:
        answer = client.get(f"/api/examples/{entry['name']}?lang=zh").json()
        assert answer["lang"] == "zh" and answer["checks"], entry["name"]
        assert all(re.search(r"[\u4e00-\u9fff]", answer["title"]) or answer["title"].isascii()
                   for _ in [0])
    seed001 = client.get("/api/examples/seed001-network").json()
    assert [c["seed"] for c in seed001["checks"]] == ["[1.4, 3.2, 5.0]", "[0.02, 0.14, 0.84]", "0.17"]
    assert seed001["playground"]["loss"] == "cross_entropy"


def test_every_curve_is_served_as_data(client):
    from crossent import plots

    for entry in client.get("/api/plot?lang=zh").json():
        answer = client.get(f"/api/plot/{entry['name']}?lang=zh").json()
        assert len(answer["series"]) == plots.PLOTS[entry["name"]].lines
        assert answer["title"] != "" and not answer["title"].isascii(), answer["title"]
    sigmoid = client.get("/api/plot/sigmoid").json()
    x = np.asarray(sigmoid["series"][0]["x"])
    np.testing.assert_allclose(sigmoid["series"][0]["y"], 1 / (1 + np.exp(-x)), rtol=1e-13)
    assert [s["label"] for s in sigmoid["series"]] == ["σ(x)", "log σ(x)"]


def test_formula_is_svg_and_bad_latex_is_a_400(client):
    response = client.get("/api/formula", params={"latex": r"\frac{e^{z}}{\sum_k e^{z_k}}"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg") and "http://" not in response.text.split("xmlns")[0]
    bad = client.get("/api/formula", params={"latex": r"\frac{"})
    assert bad.status_code == 400 and "is not a formula matplotlib can draw" in bad.json()["error"]


def test_every_formula_of_every_trace_renders():
    from crossent.explain import examples

    formulas = {step.latex for trace in examples.all_traces() for step in trace.steps}
    for latex in sorted(formulas):
        assert _compute.formula(latex).startswith("<svg")


# --- bad input: 400 with crossent's message, never a 500 ----------------------------------------


@pytest.mark.parametrize("body, message", [
    ({"logits": [[1.0, 2.0]], "target": [5]},
     r"target contains class index 5, but logits have 2 classes"),
    ({"logits": [[1.0, 2.0], [3.0]], "target": [0, 0]},
     r"logits must be a rectangular array \(every row as long as the first\), got rows of "
     r"lengths \[2, 1\]"),
    ({"logits": [[0.0] * 65], "target": [0]},
     r"logits has 65 entries along an axis; the playground takes at most 64 \(64 x 64 values\)"),
    ({"logits": [[0.0]] * 65, "target": [0] * 65}, r"logits has 65 entries along an axis"),
    ({"logits": [["x", 1.0]], "target": [0]},
     r"logits must hold numbers \(or 'inf', '-inf', 'nan'\), got 'x'"),
    ({"logits": [[[1.0]]], "target": [0]}, r"logits must have at most 2 dimensions"),
    ({"logits": [[1.0, 2.0]], "target": [0], "options": {"gamma": 2.0}},
     r"cross_entropy takes no option options.gamma; its options are"),
    ({"logits": [[1.0, 2.0]], "target": [0], "options": {"reduction": "avg"}},
     r"reduction must be one of 'none', 'mean', 'sum', got 'avg'"),
    ({"logits": [[1.0, 2.0]], "target": [0], "options": {"temperature": 0}},
     r"options.temperature must be a positive number, got 0"),
    ({"logits": [[1.0, 2.0]], "target": [0], "lang": "fr"},
     r"lang must be one of en, zh, got 'fr'"),
    ({"loss": "hinge", "logits": [[1.0, 2.0]], "target": [0]}, r"unknown computation 'hinge'"),
    ({"logits": [[1.0, 2.0]]}, r"cross_entropy needs target \(the request's 'target'\)"),
    ({"target": [0]}, r"^logits is required$"),
    ({"logits": [[1.0, 2.0]], "target": [0], "options": [1]}, r"options must be an object"),
    ({"logits": [[1, True]], "target": [0]}, r"logits must hold numbers, got the boolean True"),
])
def test_bad_input_answers_400_with_crossents_message(client, body, message):
    response = client.post("/api/explain", json=body)
    assert response.status_code == 400
    assert re.search(message, response.json()["error"]), response.json()


def test_malformed_requests_answer_400_404_413(client):
    response = client.post("/api/explain", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request body is not valid JSON")
    missing = client.get("/api/examples/seed999")
    assert missing.status_code == 404 and "unknown example 'seed999'" in missing.json()["error"]
    assert client.get("/api/plot/nope").status_code == 404
    huge = client.post("/api/explain", content=b"[" + b"0," * (1 << 20) + b"0]",
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert client.post("/api/compare", json={"loss": "kl_divergence", "logits": [[0.5, 0.5]],
                                             "target": [[0.5, 0.5]]}).status_code == 400
    assert client.get("/api/plot", params={"lang": "fr"}).status_code == 400
    options = client.options("/api/plot")
    assert options.status_code == 405 and options.headers["allow"] == "GET, POST"


def test_infinite_logits_travel_as_strings(client):
    answer = client.post("/api/explain", json={"logits": [["-inf", 0.0, 1.0]], "target": [2]})
    assert answer.status_code == 200
    assert answer.json()["inputs"]["logits"] == [["-inf", 0.0, 1.0]]
    assert answer.json()["value"] == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-14)


# --- safety: loopback, other hosts, the page offline ------------------------------------------------


def test_only_loopback_host_headers_are_answered():
    app = create_app()
    local = TestClient(app, base_url="http://127.0.0.1:8000")
    assert local.get("/api/examples").status_code == 200
    rebound = TestClient(app, base_url="http://evil.example:8000")
    assert rebound.get("/api/examples").status_code == 400
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_serve_rejects_a_bad_port_and_the_cli_has_the_command():
    with pytest.raises(ValueError, match=r"port must be an integer from 0 to 65535, got 70000"):
        serve(port=70000)
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output and "--open" in result.output
    failed = CliRunner().invoke(cli, ["serve", "--port", "70000"])
    assert failed.exit_code == 2 and "port must be an integer" in failed.output


def test_the_page_and_its_files_need_no_network(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    static = resources.files("crossent.serve") / "static"
    for name in ("index.html", "app.js", "style.css", "strings.json"):
        text = (static / name).read_text(encoding="utf-8")
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert "cdn" not in text.lower(), name
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/api/explain"]["post"]["responses"]["400"]
    assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN


def test_importing_crossent_does_not_import_the_web_stack():
    code = "import crossent, sys; print(any(m in sys.modules for m in ('fastapi', 'uvicorn', 'starlette')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


# --- both languages, complete ----------------------------------------------------------------------


def test_the_page_strings_exist_in_both_languages():
    strings = json.loads((resources.files("crossent.serve") / "static" / "strings.json").read_text(
        encoding="utf-8"))
    assert set(strings["en"]) == set(strings["zh"])
    for key, text in strings["zh"].items():
        assert text.strip(), key
        placeholders = set(re.findall(r"\{\w+\}", strings["en"][key]))
        assert placeholders == set(re.findall(r"\{\w+\}", text)), key
    app_js = (resources.files("crossent.serve") / "static" / "app.js").read_text(encoding="utf-8")
    html = (resources.files("crossent.serve") / "static" / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r"""\btr\(\s*["'`]([\w.]+)["'`]""", app_js))
    used |= set(re.findall(r'data-i18n(?:-aria)?="([\w.]+)"', html))
    assert used - set(strings["en"]) == set()


def test_compare_reasons_and_statuses_are_all_translated():
    from crossent import compare
    from crossent.explain import _i18n

    inputs = [
        ("cross_entropy", [[0.0, 1.0, 2.0]], [2], "logits", {"label_smoothing": 0.1}),
        ("cross_entropy", [[0.0, 1.0, 2.0]], [-100], "logits", {}),
        ("cross_entropy", [[-np.inf, 1.0, 2.0]], [[0.0, 0.5, 0.5]], "logits", {}),
        ("cross_entropy", [[-np.inf, 1.0, 2.0]], [2], "logits", {}),
        ("cross_entropy", [[0.0, 0.3, 0.6]], [2], "probs", {}),
        ("cross_entropy", [[0.0, 0.3, 0.7]], [[0.0, 0.0, 1.0]], "probs", {"label_smoothing": 0.1}),
        ("binary_cross_entropy", [[0.0, 1.0]], [[1.0, 0.0]], "probs", {"label_smoothing": 0.1}),
        ("binary_cross_entropy", [[np.inf, -np.inf]], [[1.0, 0.0]], "logits",
         {"label_smoothing": 0.1}),
    ]
    seen = set()
    for loss, x, t, kind, options in inputs:
        for row in compare(loss, x, t, inputs=kind, real=False, **options).rows:
            for reason in filter(None, row.reason.split("; ")):
                seen.add(reason)
                assert _i18n.text(reason, "zh") != reason, reason
            assert _i18n.text(row.real_status, "zh") != row.real_status or not row.real_status
    assert len(seen) >= 12


def test_every_trace_is_fully_translated():
    from crossent import explain
    from crossent.explain import _i18n, examples

    traces = examples.all_traces()
    z, y, p = np.array([[1.0, 2.0, 0.5]]), np.array([2]), np.array([[0.2, 0.3, 0.5]])
    for reduction in ("mean", "sum", "none"):
        for weight in (None, np.array([1.0, 2.0, 0.5])):
            for target in (y, p, np.array([-100])):
                traces.append(explain.cross_entropy(z, target, weight=weight, reduction=reduction,
                                                    label_smoothing=0.1))
                traces.append(explain.cross_entropy_grad(z, target, weight=weight,
                                                         reduction=reduction))
                traces.append(explain.nll_loss(np.log(p), target, weight=weight,
                                               reduction=reduction))
            traces.append(explain.binary_cross_entropy_with_logits(z, p, weight=weight,
                                                                   label_smoothing=0.1,
                                                                   reduction=reduction))
            traces.append(explain.binary_cross_entropy(p, (p > 0.25) * 1.0, weight=weight,
                                                       reduction=reduction))
        traces.append(explain.sigmoid_focal_loss(z, p, reduction=reduction))
        traces.append(explain.softmax_focal_loss(z, y, reduction=reduction,
                                                 where=np.array([True])))
    for base in (2, math.e, 10):
        traces += [explain.entropy(p, base=base), explain.kl_divergence(p, p[:, ::-1], base=base)]
    traces.append(explain.softmax_inverse(p))
    for trace in traces:
        assert _i18n.missing(trace, "zh") == [], trace.title
        chinese = explain.translate(trace, "zh")
        assert re.search(r"[\u4e00-\u9fff]", chinese.steps[-1].meaning), chinese.steps[-1].meaning
    assert explain.translate(traces[0], "en") is traces[0]
    with pytest.raises(ValueError, match=r"lang must be one of en, zh, got 'de'"):
        explain.translate(traces[0], "de")


def test_explain_cli_speaks_chinese():
    result = CliRunner().invoke(cli, ["explain", "--example", "seed001-network", "--lang", "zh",
                                      "--format", "markdown"])
    assert result.exit_code == 0
    assert "## 步骤" in result.output and "最后一个全连接层把输入变成三个 logits。" in result.output
    assert "种子中的数值与 crossent 的对照" in result.output
    html = CliRunner().invoke(cli, ["explain", "ce", "-x", "[[1.4, 3.2, 5.0]]", "-t", "[2]",
                                    "--lang", "zh", "--format", "html"])
    assert '<html lang="zh-CN">' in html.output and "逐位置损失" in html.output
    listed = CliRunner().invoke(cli, ["explain", "--list-examples", "--lang", "zh"])
    assert listed.exit_code == 0 and "硬币的极大似然估计：抛 10 次，6 次正面" in listed.output
    bad = CliRunner().invoke(cli, ["explain", "ce", "-x", "[[1.0]]", "-t", "[0]", "--lang", "fr"])
    assert bad.exit_code == 2 and "'fr' is not one of 'en', 'zh'" in bad.output

"""The ASGI app: the page (package data) and the JSON API over :mod:`._compute`.

Bad input answers 400 with crossent's own message (``{"error": ...}``), a missing
example or plot 404, a body over 1 MB 413; nothing a request sends makes a 500.
The request bodies are typed loosely (any JSON) so that crossent, not the web
framework, checks them and words the error; the OpenAPI schema still says what
each field holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..explain import examples as _examples
from . import _compute

__all__ = ["create_app", "LOOPBACK_HOSTS"]

MAX_BODY = 1 << 20  # bytes: 64 x 64 numbers need far less
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

# --- the schema of the requests (documentation; crossent checks the values) -------------------

_NUMBER = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["inf", "-inf", "nan"]}]}
_ROW = {"type": "array", "items": _NUMBER, "maxItems": _compute.MAX_SIZE}
_ARRAY = {"anyOf": [_NUMBER, _ROW, {"type": "array", "items": _ROW,
                                     "maxItems": _compute.MAX_SIZE}]}
Array = Annotated[Any, WithJsonSchema(_ARRAY)]
OptionalArray = Annotated[Any, WithJsonSchema({"anyOf": [_ARRAY, {"type": "null"}]})]
LOSS_NAMES = ["cross_entropy", "cross_entropy_grad", "nll_loss", "binary_cross_entropy",
              "binary_cross_entropy_with_logits", "sigmoid_focal_loss", "softmax_focal_loss",
              "entropy", "kl_divergence", "softmax_inverse"]
Lang = Annotated[Any, WithJsonSchema({"type": "string", "enum": ["en", "zh"], "default": "en"})]


class Options(BaseModel):
    """The loss's keyword options (those of the crossent function; null or absent: its default)."""

    model_config = ConfigDict(extra="allow")
    weight: OptionalArray = Field(None, description="class weights (cross_entropy, nll_loss) or "
                                  "element weights (binary losses)")
    pos_weight: OptionalArray = Field(None, description="weight of the positives, per class")
    ignore_index: Annotated[Any, WithJsonSchema({"anyOf": [{"type": "integer"},
                                                           {"type": "null"}]})] = None
    label_smoothing: Annotated[Any, WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]})] = None
    reduction: Annotated[Any, WithJsonSchema({"anyOf": [
        {"type": "string", "enum": ["none", "mean", "sum"]}, {"type": "null"}]})] = None
    alpha: Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number"}, _ROW,
                                                    {"type": "null"}]})] = None
    gamma: Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                                                    {"type": "null"}]})] = None
    base: Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                                                   {"type": "null"}]})] = None
    temperature: Annotated[Any, WithJsonSchema({"anyOf": [
        {"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]})] = Field(
        None, description="the playground's: logits / T before the loss (kl_divergence: "
        "softmax(log p / T) of both distributions)")


class Problem(BaseModel):
    """A loss, its two arrays and its options: the input of ``crossent explain``."""

    loss: Annotated[Any, WithJsonSchema({"type": "string", "enum": LOSS_NAMES,
                                         "default": "cross_entropy"})] = "cross_entropy"
    logits: Array = Field(..., description="the first array: logits (probabilities for "
                          "binary_cross_entropy, entropy, kl_divergence's p, softmax_inverse; "
                          "log-probabilities for nll_loss), at most 64 x 64")
    target: OptionalArray = Field(None, description="class indices, a soft distribution or "
                                  "multi-hot labels (kl_divergence: q)")
    options: Annotated[Any, WithJsonSchema({"anyOf": [Options.model_json_schema(),
                                                      {"type": "null"}]})] = None
    lang: Lang = "en"


class CompareProblem(Problem):
    real: Annotated[Any, WithJsonSchema({"type": "boolean", "default": False})] = Field(
        False, description="also run the installed frameworks (seconds on the first call)")


class CurveProblem(Problem):
    row: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 0, "default": 0})] = 0
    column: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 0, "default": 0})] = 0
    points: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 2, "maximum": 201,
                                           "default": 61})] = 61
    span: Annotated[Any, WithJsonSchema({"type": "number", "exclusiveMinimum": 0,
                                         "maximum": 1000, "default": 8})] = 8.0


class NumericsProblem(BaseModel):
    logits: Array = Field(..., description="a matrix of logits, at most 64 x 64")
    target: OptionalArray = Field(None, description="class indices (for the loss column)")


class Error(BaseModel):
    error: str = Field(..., description="crossent's message: what was wrong and how to fix it")


_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": Error, "description": "bad input"}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 404: {"model": Error, "description": "no such example or plot"}}
_OPEN: dict[str, Any] = {"type": "object", "additionalProperties": True}


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump()


def _static() -> Any:
    return resources.files("crossent.serve") / "static"


def create_app(*, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The playground as an ASGI app (run it with uvicorn, or :func:`crossent.serve.serve`).

    ``allowed_hosts``: the Host headers answered (default: the loopback names, which keeps
    other web pages from reaching the server through DNS rebinding); ``["*"]`` for any.
    """
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = FastAPI(
        title="crossent playground",
        description="Cross-entropy, explained: the traces of `crossent explain`, every "
        "framework's number, gradients, curves and the numerics of softmax.",
        version="1",
        docs_url=None, redoc_url=None,  # their pages load scripts from a CDN: the app is offline
    )
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=list(allowed_hosts or [*LOOPBACK_HOSTS, "testserver"]))

    @app.middleware("http")
    async def limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"error": f"the request body must be at most {MAX_BODY} bytes"},
                                status_code=413)
        response = await call_next(request)
        # everything the page needs comes from this server: no CDN, no network
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(error)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if message == "There was an error parsing the body":
            message = "the request body is not valid JSON (UTF-8 text such as {\"logits\": [[1, 2]]})"
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:  # every method of the path (GET and POST /api/plot)
            methods: set[str] = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    methods |= set(getattr(route, "methods", None) or ())
            headers["Allow"] = ", ".join(sorted(methods))
            message = f"{request.method} is not allowed here; use {headers['Allow']}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=headers)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(TypeError)
    async def bad_type(request: Request, error: TypeError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(_static() / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(_static())), name="static")

    @app.post("/api/explain", responses={**_ERRORS, 200: {
        "description": "the trace, as `crossent explain --format json` prints it",
        "content": {"application/json": {"schema": _OPEN}}}})
    def explain(problem: Problem) -> JSONResponse:
        """The step-by-step trace of the loss on the arrays: what `crossent explain --format
        json` prints for the same input (`options.temperature` adds a first step)."""
        return JSONResponse(_compute.explain(_body(problem)))

    @app.post("/api/gradient", responses={**_ERRORS, 200: {
        "description": "probabilities, losses and gradients",
        "content": {"application/json": {"schema": _OPEN}}}})
    def gradient(problem: Problem) -> JSONResponse:
        """The probabilities, each position's loss, the loss and its gradient p - y."""
        return JSONResponse(_compute.gradient(_body(problem)))

    @app.post("/api/compare", responses={**_ERRORS, 200: {
        "description": "crossent.compare's table",
        "content": {"application/json": {"schema": _OPEN}}}})
    def compare(problem: CompareProblem) -> JSONResponse:
        """Every framework's value for the input, and why each differs from crossent's."""
        return JSONResponse(_compute.compare(_body(problem)))

    @app.post("/api/numerics", responses={**_ERRORS, 200: {
        "description": "naive and stable softmax in float16 and float32",
        "content": {"application/json": {"schema": _OPEN}}}})
    def numerics(problem: NumericsProblem) -> JSONResponse:
        """Softmax without the max shift (overflowing) next to the stable form, per dtype."""
        return JSONResponse(_compute.numerics(_body(problem)))

    @app.get("/api/examples", responses={200: {
        "description": "the seeds' worked examples",
        "content": {"application/json": {"schema": {"type": "array", "items": _OPEN}}}}})
    def examples(lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en") -> JSONResponse:
        """The seeds' worked examples: name, seed and title."""
        return JSONResponse(_compute.examples(lang))

    @app.get("/api/examples/{name}", responses={**_NOT_FOUND, 200: {
        "description": "the example's trace, with the seed's numbers next to crossent's",
        "content": {"application/json": {"schema": _OPEN}}}})
    def example(name: str, lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en"
                ) -> JSONResponse:
        """A seed's worked example: `crossent explain --example NAME --format json`."""
        if name not in _examples.EXAMPLES:
            return _not_found(f"unknown example {name!r}; expected one of "
                              f"{', '.join(_examples.EXAMPLES)}")
        return JSONResponse(_compute.example(name, lang))

    @app.get("/api/plot", responses={200: {
        "description": "the seeds' curves",
        "content": {"application/json": {"schema": {"type": "array", "items": _OPEN}}}}})
    def plots(lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en") -> JSONResponse:
        """The seeds' curves (`crossent plot --list`)."""
        return JSONResponse(_compute.plots(lang))

    @app.get("/api/plot/{name}", responses={**_NOT_FOUND, 200: {
        "description": "the curves as data", "content": {"application/json": {"schema": _OPEN}}}})
    def plot(name: str, lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en") -> JSONResponse:
        """One of the seeds' curves as data (title, axes, series of x and y)."""
        from .. import plots as _plots

        if name not in _plots.PLOTS:
            return _not_found(f"unknown plot {name!r}; expected one of {', '.join(_plots.PLOTS)}")
        return JSONResponse(_compute.plot(name, lang))

    @app.post("/api/plot", responses={**_ERRORS, 200: {
        "description": "the loss as one entry moves",
        "content": {"application/json": {"schema": _OPEN}}}})
    def curve(problem: CurveProblem) -> JSONResponse:
        """The loss as the entry (row, column) of the edited array moves, the others held."""
        return JSONResponse(_compute.loss_curve(_body(problem)))

    @app.get("/api/formula", response_class=Response, responses={**_ERRORS, 200: {
        "description": "the formula as SVG", "content": {"image/svg+xml": {}}}})
    def formula(latex: Annotated[str, Query(min_length=1, max_length=400)]) -> Response:
        """A trace's LaTeX formula drawn as SVG, offline (matplotlib's mathtext)."""
        return Response(_compute.formula(latex), media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

    def schema() -> dict[str, Any]:
        # bad input answers 400 with {"error": ...} (not FastAPI's 422): say so in the schema
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version,
                                   description=app.description, routes=app.routes)
            for path in document["paths"].values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None or "400" not in responses:
                        responses["400"] = {"description": "bad input", "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for name in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
    return app


def _not_found(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=404)


def _validation_message(error: RequestValidationError) -> str:
    """The first problem FastAPI found, in crossent's style: where, what, what was expected."""
    problems = error.errors()
    if not problems:
        return "the request is not valid"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({first.get('msg', '')})"
    if first.get("type") == "missing":
        return f"{where} is required"
    return f"{where or 'the request'}: {first.get('msg', 'is not valid')}"

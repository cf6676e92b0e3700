"""A local GitHub REST API that validates requests against GitHub's OpenAPI spec.

Stoplight Prism (``@stoplight/prism-cli``, pinned in ``.ci/prism/package.json``)
serves ``api.github.com.json`` from the npm package ``@octokit/openapi`` (GitHub's
official description, also pinned there).  Install once per clone with::

    npm ci --prefix .ci/prism

Usage::

    with prism_server() as url:          # e.g. "http://127.0.0.1:40123"
        # retry=None: PyGithub's default retries 5xx/403 with long back-off
        gh = github.Github(base_url=url, auth=github.Auth.Token("ghs_x"), retry=None)
        pr = gh.get_repo("octocat/Hello-World").create_pull(
            title="t", body="b", head="octocat:branch", base="main", draft=True)

What works (PyGithub 2.10): get_repo, create_pull(draft=True), add_to_labels /
set_labels (after the spec fix below), as_issue/get_issue, create_comment,
remove_from_labels, get_pulls(state=, head=) (one page), get_workflow_run(id).jobs(),
WorkflowJob.logs_url() (302, Location = the spec's example
``https://pipelines.actions.githubusercontent.com/...``).  Responses are the
spec's static examples, so they do not echo the request (create_pull returns
PR #1347 "Amazing new feature", get_workflow_run is octo-org/octo-repo's
run) and no state is kept between calls.

Spec variant and start-up
    The package ships ``api.github.com.json`` (13 MB, uses ``$ref``) and
    ``api.github.com.deref.json`` (73 MB, everything inlined).  Prism
    dereferences the spec itself; measured on the 2-core machine, raw files:
    ``$ref`` variant 10.7-12.2 s to first answer and ~290 MB RSS, deref variant
    12.8-14 s and ~520 MB.  We use the ``$ref`` variant; the patched copy (no
    ``x-webhooks``, compact JSON, 6.4 MB, written in ~1 s) starts in 7-10 s.
    Most of it is Prism preparing all ~1200 operations, so
    ``prism_server(paths=[...])`` - only those path templates plus the
    components they reference - starts in ~2 s.  The first request to each
    operation takes ~0.3 s (schema compilation), later ones ~20 ms.

Spec patching (``write_patched_spec``)
    * ``servers[0].url`` becomes the local base URL; ``x-webhooks`` is dropped.
    * Every ``Link`` response header (inline, ``$ref``'d, and the
      ``components.headers.link`` definition) is removed, so PyGithub's
      ``PaginatedList`` never follows the example ``rel="next"`` links.
    * Known gaps where the description forbids what GitHub and PyGithub do
      are widened (``_fix_known_spec_gaps``: a bare JSON array of label names
      for add/set labels, sent by ``add_to_labels``/``set_labels``; without
      this Prism answers 422 to them).
    * ``https://api.github.com`` inside example values (``example`` /
      ``examples``) is replaced by the local base URL.  PyGithub itself does not
      need this (its ``Requester`` strips scheme and host from absolute URLs and
      re-sends them to its own ``base_url``), but any code that follows a
      payload URL with plain ``requests``/``urllib`` would otherwise try to
      leave the machine; it is cheap, so we do it.  Other hosts are left alone:
      e.g. the job-logs 302 ``Location`` stays
      ``https://pipelines.actions.githubusercontent.com/...`` - Prism cannot
      serve the log text, fake that download separately (pytest-httpserver).

Choosing the response (``Prefer`` request header, or ``__code=``-style query params)
    * ``Prefer: code=404`` - answer with that status code's response from the
      spec (a code the operation does not define -> Prism 404 NOT_FOUND).
    * ``Prefer: example=<name>`` - pick a named example from the response's
      ``examples`` map (GitHub's are mostly named ``default``; an unknown name
      -> Prism 404).
    * ``Prefer: dynamic=true`` - generate a random body from the schema with
      json-schema-faker instead of returning the static example (or start the
      server with ``dynamic=True`` / ``--dynamic``).
    * They combine: ``Prefer: code=422, example=default``.  Query form:
      ``?__code=304``, ``?__example=default``, ``?__dynamic=true``.
    * With PyGithub: ``gh.requester.requestJson("GET", "/repos/o/r",
      headers={"Prefer": "code=404"})``.
    * Without a Prefer header Prism returns the lowest 2xx response and its
      first example (static mode).

Validation
    Prism always validates each request (path/query params, headers, JSON
    body) against the operation; no flag is needed.  An invalid request gets
    the operation's own 422 response (GitHub's "Validation Failed" example,
    i.e. ``{"message": "string", ...}``) or 400, or Prism's generic 422 problem
    JSON when the spec defines neither.  The exact violations are in the
    ``sl-violations`` response header (JSON list; see ``violations()``) and in
    Prism's log (``url.log_path``).  Unknown paths -> 404
    ``NO_PATH_MATCHED_ERROR``.

    ``--errors`` (``prism_server(errors=True)``) does *not* concern requests in
    Prism 5.14: it turns *response* violations into HTTP 500.  GitHub's own
    examples often violate its schemas (e.g. ``GET /repos/{o}/{r}`` example
    lacks ``source.language``, pull-request examples lack
    ``requested_teams[].type``), so with ``--errors`` even ``get_repo`` fails;
    it is off by default.  Those response violations show up (severity
    Error, location ``response...``) in ``sl-violations`` of normal answers
    too - ignore them, look at ``violations(headers, "request")``.
    The GitHub spec declares no security schemes, so any ``Authorization``
    header is accepted.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PRISM_DIR = REPO_ROOT / ".ci" / "prism"
NODE_MODULES = PRISM_DIR / "node_modules"
PRISM_BIN = NODE_MODULES / ".bin" / "prism"
SPEC_DIR = NODE_MODULES / "@octokit" / "openapi" / "generated"
SPEC_SOURCE = SPEC_DIR / "api.github.com.json"
INSTALL_COMMAND = "npm ci --prefix .ci/prism"
GITHUB_API = "https://api.github.com"

_EXAMPLE_KEYS = ("example", "examples")
_COMPONENT_REF_PREFIX = "#/components/"


class PrismNotInstalled(RuntimeError):
    """node_modules for Prism / the GitHub spec are missing."""


class PrismStartError(RuntimeError):
    """Prism exited or did not answer in time."""


class PrismURL(str):
    """The base URL (a plain str) plus where Prism logs and how long it took."""

    log_path: Path
    startup_seconds: float


def prism_missing_reason() -> str | None:
    """Why Prism cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (Prism needs Node >= 18.20)"
    for needed in (PRISM_BIN, SPEC_SOURCE):
        if not needed.exists():
            return (
                f"{needed.relative_to(REPO_ROOT)} is missing: "
                f"run `{INSTALL_COMMAND}` in {REPO_ROOT}"
            )
    return None


def _require_installed() -> None:
    reason = prism_missing_reason()
    if reason is not None:
        raise PrismNotInstalled(reason)


# --------------------------------------------------------------------------
# spec patching

_LABELS_PATH = "/repos/{owner}/{repo}/issues/{issue_number}/labels"


def _fix_known_spec_gaps(spec: dict[str, Any]) -> None:
    """Allow request forms real GitHub accepts but the description forbids.

    Add/set labels: the operations' descriptions say "you can also pass an
    array of labels directly", and PyGithub's ``Issue.add_to_labels`` /
    ``set_labels`` (and ``PullRequest``'s) send exactly that (``["bug"]``), but
    the schema's ``oneOf`` only lists the ``{"labels": [...]}`` object, so Prism
    would answer 422.
    """
    ops = spec["paths"].get(_LABELS_PATH, {})
    for verb, min_items in (("post", 1), ("put", 0)):
        try:
            schema = ops[verb]["requestBody"]["content"]["application/json"]["schema"]
        except KeyError:
            continue
        branches = schema.get("oneOf")
        if not isinstance(branches, list):
            continue
        if not any(isinstance(b, dict) and b.get("type") == "array" for b in branches):
            branches.append({"type": "array", "minItems": min_items, "items": {"type": "string"}})


def _replace_in_strings(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return node.replace(old, new) if old in node else node
    if isinstance(node, dict):
        return {k: _replace_in_strings(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_in_strings(v, old, new) for v in node]
    return node


def _patch_tree(node: Any, base_url: str) -> None:
    """In place: drop Link headers, rewrite api.github.com in examples."""
    if isinstance(node, dict):
        headers = node.get("headers")
        if isinstance(headers, dict):
            for name in [h for h in headers if h.lower() == "link"]:
                del headers[name]
        for key, value in node.items():
            if key in _EXAMPLE_KEYS:
                node[key] = _replace_in_strings(value, GITHUB_API, base_url)
            else:
                _patch_tree(value, base_url)
    elif isinstance(node, list):
        for item in node:
            _patch_tree(item, base_url)


def _collect_refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT_REF_PREFIX):
            out.add(ref)
        for value in node.values():
            _collect_refs(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_refs(item, out)


def _prune_to_paths(spec: dict[str, Any], paths: Iterable[str]) -> None:
    """Keep only the given path templates and the components they reference."""
    wanted = list(paths)
    unknown = [p for p in wanted if p not in spec["paths"]]
    if unknown:
        raise KeyError(f"path templates not in the GitHub spec: {unknown}")
    spec["paths"] = {p: spec["paths"][p] for p in wanted}
    spec.pop("tags", None)
    components = spec.get("components", {})
    seen: set[str] = set()
    todo: set[str] = set()
    _collect_refs(spec["paths"], todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        section, _, name = ref[len(_COMPONENT_REF_PREFIX) :].partition("/")
        target = components.get(section, {}).get(name)
        if target is not None:
            _collect_refs(target, todo)
    kept: dict[str, dict[str, Any]] = {}
    for ref in seen:
        section, _, name = ref[len(_COMPONENT_REF_PREFIX) :].partition("/")
        if name in components.get(section, {}):
            kept.setdefault(section, {})[name] = components[section][name]
    spec["components"] = kept


_SPEC_CACHE: dict[Path, dict[str, Any]] = {}


def _load_spec(source: Path) -> dict[str, Any]:
    if source not in _SPEC_CACHE:
        with open(source, encoding="utf-8") as fh:
            _SPEC_CACHE[source] = json.load(fh)
    return _SPEC_CACHE[source]


def write_patched_spec(
    dest_dir: str | os.PathLike[str],
    base_url: str,
    *,
    source: Path | None = None,
    paths: Iterable[str] | None = None,
) -> Path:
    """Write a patched copy of GitHub's spec into dest_dir; return its path.

    base_url is the local address Prism will listen on, e.g.
    ``http://127.0.0.1:4010`` (no trailing slash).  ``paths``, if given, is a
    list of path templates exactly as in the spec (e.g.
    ``"/repos/{owner}/{repo}/pulls"``) to keep; everything else is dropped.
    """
    if source is None:
        _require_installed()
        source = SPEC_SOURCE
    base_url = base_url.rstrip("/")
    spec = copy.deepcopy(_load_spec(Path(source)))
    spec.pop("x-webhooks", None)
    if paths is not None:
        _prune_to_paths(spec, paths)
    spec["servers"] = [{"url": base_url}]
    _fix_known_spec_gaps(spec)
    _patch_tree(spec, base_url)
    # The $ref'd Link header definition itself (its refs are gone already).
    headers = spec.get("components", {}).get("headers", {})
    for name in [h for h in headers if h.lower() == "link"]:
        del headers[name]
    out = Path(dest_dir) / "github-api.json"
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, separators=(",", ":"))
    return out


# --------------------------------------------------------------------------
# server


def violations(headers: Any, where: str = "request") -> list[dict[str, Any]]:
    """Prism's ``sl-violations`` entries whose location starts with ``where``.

    headers: any mapping with ``.get`` (requests' case-insensitive headers, or
    a dict with lower-case keys as PyGithub returns them).  where: "request",
    "response" or "" for all.
    """
    raw = headers.get("sl-violations") or headers.get("Sl-Violations")
    if not raw:
        return []
    found = json.loads(raw)
    return [v for v in found if not where or (v.get("location") or [""])[0] == where]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            resp.read()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is up
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def prism_server(
    port: int | None = None,
    *,
    paths: Iterable[str] | None = None,
    dynamic: bool = False,
    errors: bool = False,
    timeout: float = 120.0,
) -> Iterator[str]:
    """Run Prism on 127.0.0.1 with the patched GitHub spec; yield its base URL.

    port: None picks a free one.  paths: serve only these path templates
    (much faster start-up).  dynamic: start in ``--dynamic`` mode (random
    bodies from the schemas instead of the spec's examples).  errors: add
    ``--errors`` (response violations -> 500; breaks most GitHub examples, see
    the module docstring).  timeout: seconds
    to wait for Prism to answer.  The yielded value is a ``PrismURL`` (a str)
    whose ``.log_path`` is Prism's combined stdout/stderr (it logs every
    request and its validation result) and ``.startup_seconds`` the time from
    spawning Prism to its first answer.
    """
    _require_installed()
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="acr-prism-") as tmp:
        spec = write_patched_spec(tmp, base_url, paths=paths)
        log_path = Path(tmp) / "prism.log"
        cmd = [
            "node",
            str(PRISM_BIN),
            "mock",
            str(spec),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ]
        if errors:
            cmd.append("--errors")
        if dynamic:
            cmd.append("--dynamic")
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, killed on exit
            )
        try:
            deadline = started + timeout
            while True:
                if proc.poll() is not None:
                    raise PrismStartError(
                        f"Prism exited with code {proc.returncode} before answering "
                        f"on {base_url}; log tail:\n{_tail(log_path)}"
                    )
                if _answers(base_url + "/"):
                    break
                if time.monotonic() > deadline:
                    raise PrismStartError(
                        f"Prism did not answer on {base_url} within {timeout:.0f} s; "
                        f"log tail:\n{_tail(log_path)}"
                    )
                time.sleep(0.2)
            url = PrismURL(base_url)
            url.log_path = log_path
            url.startup_seconds = time.monotonic() - started
            yield url
        finally:
            _stop(proc)

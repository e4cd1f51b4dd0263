"""Command line: ``learnability list``, ``learnability run NAME``, ``learnability jacobians``,
``learnability chapter NAME``; ``learnability --cells FILE.py ...`` first imports a reader's Python file that
registers cells (:func:`learnability.cells.register`), so the command sees them by their kind names."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import __version__


def _book_root() -> Path:
    """The repository root (where _toc.yml is), found from the current directory upwards."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_toc.yml").is_file() and (folder / "book").is_dir():
            return folder
    raise SystemExit("learnability: no _toc.yml found here or above; run this inside the book's repository")


def chapters(root: Path) -> list[str]:
    """Chapter names (file stems under book/) listed in _toc.yml, in order."""
    names = []
    for line in (root / "_toc.yml").read_text().splitlines():
        line = line.strip()
        for key in ("file:", "root:"):
            if key in line:
                names.append(Path(line.split(key, 1)[1].strip(" {}'\",")).name)
    return names


def _cmd_list(args: argparse.Namespace) -> int:
    root = _book_root()
    print("chapters (learnability chapter NAME):")
    for name in chapters(root):
        print(f"  {name}")
    from .experiments import EXPERIMENTS
    from .support.provenance import NO_PRESET, SCALES, experiment_run_times

    print(
        "experiments (learnability run NAME [--scale book|full] (window_pipeline also medium)); "
        "run times last measured on this machine:"
    )
    for row in experiment_run_times():
        description = EXPERIMENTS[row["experiment"]][1]
        times = ", ".join(f"{scale}: {row[scale]}" for scale in SCALES if row[scale] != NO_PRESET)
        print(f"  {row['experiment']}: {description} (chapter {row['chapter']}; {times})")
    return 0


def _with_option(config, field: str, value, flag: str, name: str):
    """``config`` with ``field`` set to ``value`` (None: unchanged); a clear error when the experiment has no such
    option."""
    if value is None:
        return config
    if field not in {f.name for f in dataclasses.fields(config)}:
        raise SystemExit(
            f"learnability: experiment {name!r} has no {flag} option (it runs on the CPU in one "
            f"process); experiments with one: see `learnability run --help`"
        )
    return dataclasses.replace(config, **{field: value})


def _with_seeds(config, text: str | None, name: str):
    """``config`` with its seeds replaced by the comma-separated integers in ``text`` (a ``seeds`` tuple field, or a
    single ``seed`` field given one value)."""
    if text is None:
        return config
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise SystemExit(f"learnability: --seeds takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    fields = {f.name for f in dataclasses.fields(config)}
    if "seeds" in fields:
        return dataclasses.replace(config, seeds=seeds)
    if "seed" in fields and len(seeds) == 1:
        return dataclasses.replace(config, seed=seeds[0])
    if "seed" in fields:
        raise SystemExit(f"learnability: experiment {name!r} takes one seed (--seeds N); got {len(seeds)}")
    raise SystemExit(f"learnability: experiment {name!r} has no seeds to set")


def _parse_value(text: str, current):
    """A ``--set`` value as a Python literal (numbers, tuples, strings, True/False/None; a bare word is a string),
    coerced to the type of the field's current value where that is unambiguous (a list to a tuple, an int to a
    float)."""
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(current, tuple) and not isinstance(value, tuple):
        return (value,)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _with_settings(config, settings: list[str] | None, name: str):
    """``config`` with each ``FIELD=VALUE`` of ``settings`` applied (``--set``); a clear error for an unknown field,
    a malformed setting or a value the experiment's config rejects."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    changes = {}
    for setting in settings or ():
        field, sep, text = setting.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not field:
            raise SystemExit(f"learnability: --set takes FIELD=VALUE, e.g. --set T=128; got {setting!r}")
        if field not in fields:
            raise SystemExit(
                f"learnability: experiment {name!r} has no field {field!r}; its fields: "
                f"{', '.join(fields)} (see --show-config)"
            )
        changes[field] = _parse_value(text.strip(), fields[field])
    try:
        return dataclasses.replace(config, **changes) if changes else config
    except (ValueError, TypeError) as err:
        raise SystemExit(f"learnability: {name} rejects --set {' '.join(settings or ())}: {err}") from None


def _cmd_run(args: argparse.Namespace) -> int:
    """Run (or load from the cache) one experiment at book, medium or full scale; optionally copy the result to
    --out."""
    import time

    from .experiments import load
    from .experiments.cache import cache_dir, cache_key

    try:
        module = load(args.name)
    except ValueError as err:
        raise SystemExit(f"learnability: {err}") from None
    if not hasattr(module.Config, args.scale):
        raise SystemExit(
            f"learnability: experiment {args.name!r} has no {args.scale} scale; it has book and full "
            "(medium: window_pipeline only)"
        )
    config = _with_seeds(getattr(module.Config, args.scale)(), args.seeds, args.name)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("learnability: --device cuda asked for, but torch sees no CUDA device here")
    config = _with_option(config, "device", args.device, "--device", args.name)
    config = _with_option(config, "n_jobs", args.n_jobs, "--n-jobs", args.name)
    config = _with_settings(config, args.set, args.name)
    if args.show_config:
        print(f"{args.name} ({args.scale} scale, with the options given):")
        for field in dataclasses.fields(config):
            print(f"  {field.name} = {getattr(config, field.name)!r}")
        return 0
    start = time.perf_counter()
    module.run(config, force=args.force)
    key = cache_key(args.name, config)
    path = cache_dir() / args.name / f"{key}.pkl"
    print(f"{args.name} ({args.scale} scale): {time.perf_counter() - start:.1f} s; result cached at {path}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / f"{args.name}-{args.scale}-{key[:12]}.pkl"  # the cache key: one file per config
        shutil.copyfile(path, target)
        print(f"copied to {target} (a pickled Result; load it with pickle.load)")
    return 0


def _cmd_jacobians(args: argparse.Namespace) -> int:
    """Print the Jacobian checks: the built-in cells (SymPy vs analytic vs autograd, gaps below 1e-10), then every
    registered cell of a reader (autograd vs finite differences, its own jacobian vs autograd, gaps below
    ``extension.TOL``) and what was skipped, with the reason; exit status 1 when a gap is too large."""
    from .extension import TOL, registered_jacobian_checks
    from .support.tables import markdown
    from .symbolic import jacobian_errors

    rows = jacobian_errors(layer_norm=args.layer_norm, seed=args.seed)
    print(markdown(rows, formats={k: ".1e" for k in rows[0] if k != "kind"}))
    ok = max(v for r in rows for k, v in r.items() if k != "kind") < 1e-10
    registered, skipped = registered_jacobian_checks(layer_norm=args.layer_norm, seed=args.seed)
    if registered:
        print("\nregistered cells:\n")
        print(
            markdown(
                [
                    {
                        "kind": r["kind"],
                        "autograd_vs_fd": f"{r['fd']:.1e}",
                        "cell_vs_autograd": "skipped" if r["analytic"] is None else f"{r['analytic']:.1e}",
                    }
                    for r in registered
                ]
            )
        )
        ok = ok and all(r["fd"] < TOL and (r["analytic"] is None or r["analytic"] < TOL) for r in registered)
    for kind, reason in skipped.items():
        print(f"skipped {kind}: {reason}")
    return 0 if ok else 1


def _run_logged(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd`` in ``cwd``, its output (stdout and stderr) shown as it comes; its exit status and that output."""
    print(" ".join(cmd), flush=True)
    with subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
    sys.stdout.flush()
    return process.returncode, "".join(lines)


def _judge_build(code: int, log: str, sources: dict[str, str], root: Path, elsewhere: set[str]) -> int:
    """0 when the build succeeded and its log reports no problem but unresolved references to ``elsewhere``
    (targets outside the build); otherwise 1 (or the build's own non-zero status), after a summary on stderr."""
    from .support.build_log import excusable, problems, summary

    found = problems(log, sources)
    left = [problem for problem in found if not excusable(problem, elsewhere)]
    if len(found) > len(left):
        print(
            f"learnability: excused {len(found) - len(left)} warning(s) about references into chapters this build "
            "left out (`make book` resolves them)"
        )
    if code == 0 and not left:
        return 0
    print(
        "\nlearnability: the chapter failed, as `make book` (-W: warnings are errors) would fail on it\n"
        + (summary(left, root) if left else f"jupyter-book exited with status {code}; see its log above"),
        file=sys.stderr,
    )
    return code or 1


def _cmd_chapter(args: argparse.Namespace) -> int:
    """Re-execute one chapter, as strictly as ``make book`` (a warning fails it). Into the built book when there is
    one (``make book`` ran): the chapter's source is touched and Jupyter Book rebuilds incrementally, so Sphinx
    re-reads and myst-nb re-executes only that chapter (and any other whose source changed since the last build);
    its page and executed notebook in _build/html are replaced; every warning counts. Otherwise, or with ``--alone``:
    a one-page build into _build/chapters/NAME, where warnings about references to other chapters (and to the
    bibliography, a page of its own) are expected and excused. A failure ends with a summary: file, line, what."""
    from .support.build_log import book_sources, defined_targets

    root = _book_root()
    names = chapters(root)
    if args.name not in names:
        raise SystemExit(f"learnability: unknown chapter {args.name!r}; chapters: {', '.join(names)}")
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    source = (root / "book" / f"{args.name}.md").absolute()
    sources = book_sources(root)
    built = (root / "_build" / ".doctrees").is_dir() and (root / "_build" / "html" / "index.html").is_file()
    if built and not args.alone:
        source.touch()
        code, log = _run_logged([jb, "build", str(root), "-n", "--keep-going"], root)
        code = _judge_build(code, log, sources, root, elsewhere=set())
        executed = root / "_build" / "jupyter_execute" / "book" / f"{args.name}.ipynb"
        if code == 0 and executed.is_file():
            shutil.copy(executed, root / "_build" / "html" / "book")
            print(f"updated {root / '_build' / 'html' / 'book' / (args.name + '.html')}")
        return code
    out = root / "_build" / "chapters" / args.name
    out.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    bibfiles = [root / p for p in config.get("bibtex_bibfiles", [])]
    config["bibtex_bibfiles"] = [str(p) for p in bibfiles]  # paths from the root
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(
        ("no built book in _build (run `make book` once to rerun chapters into it); " if not built else "")
        + "building this chapter alone (references to other chapters stay unresolved):"
    )
    code, log = _run_logged(
        [jb, "build", str(source), "--path-output", str(out), "--config", str(out / "_config.yml"), "--all", "-n"], root
    )
    elsewhere = defined_targets(
        [text for path, text in sources.items() if path != str(source)],
        [p.read_text() for p in bibfiles],
        [n for n in names if n != args.name],
    )
    return _judge_build(code, log, sources, root, elsewhere)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="learnability", description="Rerun and check the gated-learnability book.")
    parser.add_argument("--version", action="version", version=f"learnability {__version__}")
    parser.add_argument(
        "--cells",
        action="append",
        type=Path,
        metavar="FILE.py",
        help="import this Python file (which registers cells with learnability.cells.register) "
        "before the command, so its cell kinds can be named; repeatable",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the chapters and experiments")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("run", help="run one experiment (cached by config and package source)")
    p.add_argument("name", help="experiment name, as `learnability list` prints it")
    p.add_argument(
        "--scale",
        choices=("book", "medium", "full"),
        default="book",
        help="book (CPU, minutes), medium (window_pipeline only: what its chapters execute) or full (paper size)",
    )
    p.add_argument("--force", action="store_true", help="recompute even if a cached result exists")
    p.add_argument("--seeds", help="comma-separated seeds replacing the preset's, e.g. 0,1,2")
    p.add_argument("--out", type=Path, help="also copy the result (a pickle) into this folder")
    p.add_argument("--device", choices=("cpu", "cuda"), help="where torch runs (experiments with a device option)")
    p.add_argument(
        "--n-jobs",
        type=_positive_int,
        help="parallel workers for sweeps over seeds/architectures (joblib; experiments with an n_jobs option)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="override one field of the preset, e.g. "
        "--set T=128 --set 'architectures=(\"ConstGate\",)' (repeatable; fields: --show-config)",
    )
    p.add_argument("--show-config", action="store_true", help="print the configuration that would run, and exit")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("jacobians", help="check every cell's Jacobian: SymPy vs analytic vs autograd")
    p.add_argument("--layer-norm", action="store_true", help="cells with LayerNorm on the candidate")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_jacobians)
    p = sub.add_parser("chapter", help="re-execute one chapter into the built book (or alone, into _build/chapters)")
    p.add_argument("name", help="chapter file name without .md, as `learnability list` prints it")
    p.add_argument(
        "--alone",
        action="store_true",
        help="build the chapter as a page of its own in _build/chapters/NAME, even when a built book exists",
    )
    p.set_defaults(func=_cmd_chapter)
    return parser


def load_cells(path: Path) -> None:
    """Import the Python file ``path`` as a module of its own (its ``register`` calls run); a clear error when the file
    is missing or fails to import."""
    if not path.is_file():
        raise SystemExit(f"learnability: --cells {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"learnability_user_cells_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"learnability: --cells {path}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001  (any error of the reader's code: report it, with its type)
        del sys.modules[spec.name]
        raise SystemExit(f"learnability: --cells {path} failed to import: {type(err).__name__}: {err}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for path in args.cells or ():
        load_cells(path)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

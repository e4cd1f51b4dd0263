"""The command line, driven as a user would (subprocess)."""

import subprocess
import sys
from pathlib import Path

from myst_notebook import MYST_HEADER

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnability.cli", *args], cwd=ROOT, capture_output=True, text=True)


def test_list_names_the_chapters():
    out = run("list")
    assert out.returncode == 0, out.stderr
    assert "p1_jacobians" in out.stdout and "intro" in out.stdout
    assert "stable_means:" in out.stdout


def test_run_experiment_and_unknown_name(tmp_path):
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    cmd = [sys.executable, "-m", "learnability.cli", "run", "nope"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "unknown experiment 'nope'; available: [" in out.stderr
    assert "'stable_means'" in out.stderr and "'lag_profiles'" in out.stderr
    out = run("run", "stable_means", "--scale", "huge")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = run("run", "stable_means", "--scale", "medium")
    assert out.returncode != 0 and "has no medium scale" in out.stderr


def test_jacobians_prints_a_passing_table():
    out = run("jacobians")
    assert out.returncode == 0, out.stderr
    assert "| lstm |" in out.stdout


def test_unknown_command_and_chapter_fail_clearly():
    out = run("frobnicate")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = run("chapter", "no_such_chapter")
    assert out.returncode != 0 and "unknown chapter 'no_such_chapter'" in out.stderr


def test_run_caches_and_reuses_a_result(tmp_path):
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    cmd = [sys.executable, "-m", "learnability.cli", "run", "stable_means"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert "stable_means (book scale)" in first.stdout and str(tmp_path) in first.stdout
    assert len(list((tmp_path / "stable_means").glob("*.pkl"))) == 1
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and len(list((tmp_path / "stable_means").glob("*.pkl"))) == 1


def test_run_with_seeds_and_out(tmp_path):
    import os
    import pickle

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "learnability.cli", "run", "stable_means"]
    out = subprocess.run(
        base + ["--seeds", "3", "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        base + ["--seeds", "4", "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    copies = sorted((tmp_path / "out").glob("stable_means-book-*.pkl"))
    assert len(copies) == 2  # another config: another file, no overwrite
    seeds = set()
    for path in copies:
        with path.open("rb") as fh:
            seeds.add(pickle.load(fh).config.seed)
    assert seeds == {3, 4}
    bad = subprocess.run(base + ["--seeds", "1,x"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "comma-separated integers" in bad.stderr
    two = subprocess.run(base + ["--seeds", "1,2"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert two.returncode != 0 and "takes one seed" in two.stderr


def test_show_config_and_set():
    shown = run(
        "run", "stable_means", "--set", "reps=200", "--set", "alphas=(1.5, 2)", "--set", "est_reps=3", "--show-config"
    )
    assert shown.returncode == 0, shown.stderr
    assert "  reps = 200" in shown.stdout and "  alphas = (1.5, 2)" in shown.stdout and "  seed = 0" in shown.stdout
    single = run("run", "stable_means", "--set", "methods=ecf", "--show-config")
    assert "  methods = ('ecf',)" in single.stdout  # one value for a tuple field: a 1-tuple
    medium = run("run", "window_pipeline", "--scale", "medium", "--set", "T=300", "--show-config")
    assert medium.returncode == 0 and "  T = 300" in medium.stdout and "  n_diag = 4096" in medium.stdout
    unknown = run("run", "stable_means", "--set", "repz=7")
    assert unknown.returncode != 0 and "no field 'repz'" in unknown.stderr and "reps" in unknown.stderr
    malformed = run("run", "stable_means", "--set", "reps")
    assert malformed.returncode != 0 and "FIELD=VALUE" in malformed.stderr
    rejected = run("run", "window_pipeline", "--set", "lag_grid=(1, 500)", "--show-config")
    assert rejected.returncode != 0 and "rejects" in rejected.stderr and "lag grid" in rejected.stderr


def test_device_and_n_jobs_flags_fail_clearly_where_they_do_not_apply(tmp_path):
    import os

    import torch

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    base = [sys.executable, "-m", "learnability.cli", "run", "stable_means"]
    out = subprocess.run(base + ["--n-jobs", "2"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "has no --n-jobs option" in out.stderr
    out = subprocess.run(base + ["--n-jobs", "0"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "must be a positive integer" in out.stderr
    if not torch.cuda.is_available():
        out = subprocess.run(base + ["--device", "cuda"], cwd=ROOT, capture_output=True, text=True, env=env)
        assert out.returncode != 0 and "no CUDA device" in out.stderr


def test_list_shows_the_run_time_a_run_recorded(tmp_path):
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    cli = [sys.executable, "-m", "learnability.cli"]
    before = subprocess.run(cli + ["list"], cwd=ROOT, capture_output=True, text=True, env=env)
    line = next(x for x in before.stdout.splitlines() if x.strip().startswith("stable_means:"))
    assert "book: not run here" in line
    assert subprocess.run(cli + ["run", "stable_means"], cwd=ROOT, capture_output=True, env=env).returncode == 0
    after = subprocess.run(cli + ["list"], cwd=ROOT, capture_output=True, text=True, env=env)
    line = next(x for x in after.stdout.splitlines() if x.strip().startswith("stable_means:"))
    assert "book: not run here" not in line and "full: not run here" in line


def test_device_and_n_jobs_reach_a_config_that_has_them():
    from learnability.cli import _with_option
    from learnability.experiments import window_pipeline

    config = _with_option(window_pipeline.Config.book(), "n_jobs", 4, "--n-jobs", "window_pipeline")
    config = _with_option(config, "device", "cpu", "--device", "window_pipeline")
    assert config.n_jobs == 4 and config.device == "cpu"
    assert _with_option(config, "n_jobs", None, "--n-jobs", "window_pipeline") is config


def test_chapter_alone_builds_one_page_with_the_bibliography(tmp_path):
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "learnability.cli", "chapter", "p1_euler_gates", "--alone"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "could not open bibtex file" not in out.stdout + out.stderr
    assert list((ROOT / "_build" / "chapters" / "p1_euler_gates").rglob("index.html"))


TINY = (
    MYST_HEADER
    + """
# Tiny

```{code-cell} ipython3
from myst_nb import glue
glue("known", 3, display=False)
```

Glued: {glue:text}`known`.
"""
)


def _tiny_book(folder: Path, chapter: str) -> Path:
    """A one-chapter book in ``folder`` with the repository's _config.yml and bibliography; its chapter source."""
    import shutil

    (folder / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", folder)
    shutil.copy(ROOT / "book" / "references.bib", folder / "book")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: book/tiny\n")
    (folder / "book" / "tiny.md").write_text(chapter)
    return folder / "book" / "tiny.md"


def test_chapter_fails_like_make_book_and_says_where(tmp_path):
    cmd = [sys.executable, "-m", "learnability.cli", "chapter", "tiny", "--alone"]
    _tiny_book(tmp_path / "clean", TINY)
    clean = subprocess.run(cmd, cwd=tmp_path / "clean", capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr[-2000:]
    _tiny_book(tmp_path / "glue", TINY + "\nA typo: {glue:text}`nonexistent-name`.\n")
    typo = subprocess.run(cmd, cwd=tmp_path / "glue", capture_output=True, text=True)
    assert typo.returncode == 1 and "build succeeded, 1 warning" in typo.stdout  # Jupyter Book alone: success
    assert "book/tiny.md:16: WARNING: No key 'nonexistent-name' found in glue data" in typo.stderr.splitlines()[-1], (
        typo.stderr
    )
    raising = TINY + "\n```{code-cell} ipython3\n:tags: [hide-input]\nx = 1\n1 / (x - 1)\n```\n"
    _tiny_book(tmp_path / "cell", raising)
    cell = subprocess.run(cmd, cwd=tmp_path / "cell", capture_output=True, text=True)
    assert cell.returncode != 0
    assert cell.stderr.splitlines()[-1] == (
        "  book/tiny.md:16: code cell failed (its line 2): ZeroDivisionError: division by zero"
    ), cell.stderr


CELLS = str(ROOT / "tests" / "user_cells.py")
TINY_PIPELINE = [
    "--set",
    "T=12",
    "--set",
    "D=2",
    "--set",
    "H=4",
    "--set",
    "task_lags=(1,2)",
    "--set",
    "coefficients=(0.6,0.5)",
    "--set",
    "n_train=16",
    "--set",
    "n_diag=128",
    "--set",
    "epochs=1",
    "--set",
    "batch=8",
    "--set",
    "lag_grid=(1,2,3,4)",
    "--set",
    "exact_sequences=4",
    "--set",
    "pair_sequences=64",
    "--set",
    "diag_batch=64",
    "--set",
    "sweep_optimizers=()",
    "--set",
    "sweep_lrs=()",
    "--set",
    "retrain_N=()",
    "--set",
    "retrain_architectures=()",
]


def test_cells_file_makes_a_readers_cell_an_architecture(tmp_path):
    """`learnability --cells FILE.py run window_pipeline` with the reader's kind, in the book preset's two parallel
    jobs (which must see the cells the file registered); without the file the kind is unknown."""
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    mine = ["--set", "architectures=('ConstGate','test_mgu')"]
    cmd = [sys.executable, "-m", "learnability.cli", "--cells", CELLS, "run", "window_pipeline", *mine, *TINY_PIPELINE]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "window_pipeline (book scale)" in out.stdout
    out = run("--cells", CELLS, "run", "window_pipeline", *mine, "--show-config")
    assert out.returncode == 0 and "architectures = ('ConstGate', 'test_mgu')" in out.stdout
    out = run("run", "window_pipeline", *mine, "--show-config")
    assert out.returncode != 0 and "unknown architectures ['test_mgu']; available: ['ConstGate'," in out.stderr


def test_cells_file_makes_a_readers_cell_a_lag_profiles_kind(tmp_path):
    """`learnability --cells FILE.py run lag_profiles` with the reader's kinds; what they lack is skipped, said."""
    import os

    env = {**os.environ, "LEARNABILITY_CACHE": str(tmp_path)}
    tiny = [
        "--set",
        "kinds=('leaky','test_mgu','test_blend')",
        "--set",
        "steps=10",
        "--set",
        "checkpoints=(0,10)",
        "--set",
        "seeds=(1,)",
        "--set",
        "T=12",
        "--set",
        "hidden=6",
        "--set",
        "batch=8",
        "--set",
        "probe=3",
        "--set",
        "max_lag=4",
    ]
    cmd = [sys.executable, "-m", "learnability.cli", "--cells", CELLS, "run", "lag_profiles", *tiny]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "lag_profiles (book scale)" in out.stdout
    assert "cell kind 'test_blend': retention and update-gate predictors skipped" in out.stderr


def test_cells_file_missing_or_failing_to_import_is_named(tmp_path):
    out = run("--cells", str(tmp_path / "nope.py"), "jacobians")
    assert out.returncode != 0 and f"--cells {tmp_path / 'nope.py'}: no such file" in out.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("from learnability import cells\ncells.register('bad kind')\n")
    out = run("--cells", str(broken), "jacobians")
    assert out.returncode != 0 and "failed to import: ValueError: a cell kind must be a Python identifier" in out.stderr


def test_jacobians_checks_the_readers_cells_and_says_what_it_skips(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import torch\nfrom learnability import cells\n\n\n@cells.register('test_wrong_jacobian')\n"
        "class Wrong(cells.Cell):\n"
        "    def __init__(self, input_size, hidden_size, **options):\n"
        "        super().__init__(input_size, hidden_size, **options)\n"
        "        self.W, self.U = self.uniform_parameter(hidden_size, hidden_size), "
        "self.uniform_parameter(hidden_size, input_size)\n\n"
        "    def step(self, x, h):\n        return torch.tanh(self.affine(self.W, self.U, None, h, x))\n\n"
        "    def jacobian(self, x, h):\n        return self.W.expand(x.shape[0], -1, -1)\n"
    )
    out = run("--cells", CELLS, "jacobians")
    assert out.returncode == 0, out.stderr
    assert "| lstm |" in out.stdout and "| test_mgu | " in out.stdout and "| test_blend | " in out.stdout
    assert "skipped test_mgu: no analytic check: the class defines no jacobian" in out.stdout
    out = run("--cells", CELLS, "--cells", str(wrong), "jacobians")
    assert out.returncode == 1 and "| test_wrong_jacobian | " in out.stdout and "| test_mgu | " in out.stdout

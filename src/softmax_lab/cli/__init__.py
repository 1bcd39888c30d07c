"""The ``softmax-lab`` command: ``train`` (Hydra), ``compare``, ``rerun``, ``ui``, ``server``,
``predict``, ``register``, ``push``.

Each subcommand imports only what it needs, so ``softmax-lab --help`` and argument errors
answer at once; Hydra, MLflow and Pillow load only for the subcommands that use them. What the
user gave that cannot be used (any ``softmax_lab.errors.InputError``) is one line on stderr and
exit code 2 (``console.report_input_error``). Its modules:

- ``hydra_app``: ``softmax-lab train``: the Hydra app, the task that runs one job, where the
  config and the user's experiments are found;
- ``run_check``: a single run's config and store checked before Hydra makes its directory;
- ``sweeper``: ``hydra/sweeper=softmax_lab``: every job composed and validated first, the
  store and the sweep's parent run, resume;
- ``optuna_sweeper``: ``hydra/sweeper=optuna``: an Optuna study (TPE, pruning) whose trials are
  tracked, fused jobs, judged after every epoch; its database beside the store, resume, several
  processes on one study, the study recorded on its parent run;
- ``search_space``: the search space of ``hydra/sweeper=optuna``: ``hydra.sweeper.params`` and
  the command line's sweep overrides as Optuna distributions, and each trial back as overrides;
- ``compose``: composing a sweep's jobs once per family instead of once per job;
- ``convert``: the boundary: a ``DictConfig`` in, a ``config.schema.Config`` out;
- ``launcher``: ``hydra/launcher=fused``: fused groups side by side, the rest one by one;
- ``ray_launcher``: ``hydra/launcher=ray``: the same groups and lone jobs, each a Ray task on a
  cluster, their epochs streamed back and recorded here;
- ``hydra_job``: Hydra's job directory for fused jobs, without ``run_job``'s deep copies; every
  job's Hydra files written atomically;
- ``job_log``: the job's log file, which a full disk cuts short instead of flooding stderr;
- ``state``: what the sweeper shares with the jobs it runs in the same process;
- ``summary``: a finished sweep's table and pictures, on the terminal and its parent run;
- ``console``: the terminal: per-epoch table, sweep progress bar, the one-line input error;
- ``compare``, ``rerun``, ``ui``, ``predict``, ``register``, ``server``, ``push``: those
  subcommands (``server``: a team store; ``push``: runs copied into one).

May import: every layer below it, Hydra and OmegaConf (the only layer that does), argparse,
and Ray (``ray_launcher``, when a sweep uses it), Optuna (``optuna_sweeper``, ``search_space``).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from softmax_lab.cli.server import add_server_parser
from softmax_lab.errors import InputError

__all__ = ["EXPERIMENTS_ENV", "EXPERIMENTS_OPTION", "main", "run", "split_experiments_dir"]

# where `train`'s +experiment=NAME looks first (softmax_lab.cli.hydra_app.experiments_dir)
EXPERIMENTS_OPTION = "--experiments-dir"
EXPERIMENTS_ENV = "SOFTMAX_LAB_EXPERIMENTS"

EPILOG = """\
examples:
  softmax-lab train                                   one run, default config (mnist_5k)
  softmax-lab train optim.lr=0.1 dataset=fashion_mnist
  softmax-lab train -m optim.lr=0.05,0.1,0.2 optim.batch_size=50,100
  softmax-lab train -m +experiment=demo               the offline demo sweep
  softmax-lab train -m +experiment=mine               ./experiments/mine.yaml (yours first)
  softmax-lab train --experiments-dir DIR -m +experiment=mine
  softmax-lab train --help                            Hydra's help: config groups and keys
  softmax-lab compare --experiment demo --format markdown
  softmax-lab compare --where "optim.lr>0.1" --top 5 --plot
  softmax-lab compare --diff RUN_A RUN_B
  softmax-lab rerun RUN_ID                            verify a run reproduces exactly
  softmax-lab predict RUN_ID digit.png more/*.jpg     classify images with a run's model
  softmax-lab register RUN_ID mnist --alias champion  a model version in the registry
  softmax-lab predict models:/mnist@champion t10k-images-idx3-ubyte.gz --format csv
  softmax-lab ui
  softmax-lab server start --dir DIR                  a team store: MLflow server on PostgreSQL
  softmax-lab push --to http://HOST:PORT --experiment demo   your runs into the team store
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="softmax-lab",
        description="Softmax regression and a two-layer net on MNIST-format data: "
        "config-driven sweeps tracked in MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "train",
        help="run one job, or a sweep with -m; --experiments-dir DIR (or $"
        + EXPERIMENTS_ENV
        + ", else ./experiments) is where +experiment=NAME looks before the packaged "
        "experiments; all other arguments go to Hydra",
        add_help=False,
    )
    c = sub.add_parser("compare", help="print runs side by side, best first")
    c.add_argument("--experiment", help="experiment name (default: the one run most recently)")
    c.add_argument("--sweep", help="only the jobs of this sweep id")
    c.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help='keep runs matching e.g. "optim.lr>0.1", "model.name=mlp", "test/error<0.1", '
        '"dataset.digest=e065f99e" (runs on that data) (repeatable; all must hold)',
    )
    c.add_argument("--filter", metavar="MLFLOW_FILTER", help="an MLflow search filter string")
    c.add_argument("--format", choices=("table", "csv", "markdown"), default="table")
    c.add_argument("--sort", default="test/error", help="metric to sort by, ascending")
    c.add_argument("--top", type=int, help="show only the best N runs")
    c.add_argument(
        "--diff",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="params that differ, metrics side by side",
    )
    c.add_argument(
        "--plot",
        nargs="?",
        const="outputs/compare",
        metavar="DIR",
        help="also write the sweep pictures and CSV to DIR (default outputs/compare)",
    )
    c.add_argument(
        "--register",
        metavar="NAME",
        help="register the best run shown (by --sort) as a new version of model NAME",
    )
    c.add_argument("--alias", help="with --register: point this alias (e.g. champion) at it")
    c.add_argument("--tracking-uri", help="MLflow store (default: as `train` uses)")
    r = sub.add_parser("rerun", help="rerun a logged run and check it reproduces exactly")
    r.add_argument("run_id", metavar="RUN_ID")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="rerun with a change (repeatable); reports differences, no verdict",
    )
    r.add_argument("--tracking-uri", help="MLflow store (default: as `train` uses)")
    pr = sub.add_parser(
        "predict",
        help="classify images with a run's or a registered model",
        description="Classify images. Pictures (PNG, JPEG, any size) are made MNIST-like: grey, "
        "inverted if the background is light, cropped to the ink, fitted into 20x20 and centred "
        "by centre of mass in 28x28, scaled to [0, 1]. IDX image files and .npy arrays "
        "((m, 784) or (m, 28, 28), uint8 or floats in [0, 1]) are used as they are.",
    )
    pr.add_argument(
        "model",
        metavar="MODEL",
        help="a run id (or a unique prefix), runs:/ID/model, or models:/NAME@ALIAS",
    )
    pr.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG, IDX images or .npy")
    pr.add_argument("--format", choices=("table", "csv"), default="table")
    pr.add_argument("--labels", metavar="IDX", help="true labels (an IDX labels file)")
    pr.add_argument(
        "--plot",
        nargs="?",
        const="outputs/predictions.png",
        metavar="PNG",
        help="also draw the first 64 images with their predictions "
        "(default outputs/predictions.png)",
    )
    pr.add_argument("--tracking-uri", help="MLflow store (default: as `train` uses)")
    rg = sub.add_parser(
        "register", help="register a run's model as a new version of a registered model"
    )
    rg.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix")
    rg.add_argument("name", metavar="NAME", help="the registered model (made if new)")
    rg.add_argument("--alias", help="point this alias (e.g. champion) at the new version")
    rg.add_argument("--tracking-uri", help="MLflow store (default: as `train` uses)")
    u = sub.add_parser("ui", help="start the MLflow UI on the project's store (127.0.0.1)")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--tracking-uri", help="MLflow store (default: as `train` uses)")
    pu = sub.add_parser(
        "push",
        help="copy an experiment's runs to another store (e.g. the team store), once each",
    )
    pu.add_argument("--to", required=True, metavar="URI", help="the store to copy to")
    pu.add_argument("--experiment", help="experiment name (default: the one run most recently)")
    pu.add_argument("--tracking-uri", help="the store to copy from (default: as `train` uses)")
    add_server_parser(sub)
    return p


def split_experiments_dir(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """``train``'s ``--experiments-dir DIR`` (or ``--experiments-dir=DIR``; the last one
    counts) and the arguments left for Hydra, in their order.

    Raises
    ------
    InputError
        ``--experiments-dir`` is the last argument, with no directory after it.
    """
    directory: str | None = None
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == EXPERIMENTS_OPTION:
            directory = next(args, None)
            if directory is None:
                raise InputError(f"{EXPERIMENTS_OPTION} needs a directory after it")
        elif arg.startswith(EXPERIMENTS_OPTION + "="):
            directory = arg.partition("=")[2]
        else:
            rest.append(arg)
    return directory, rest


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so open runs are closed as KILLED, never left RUNNING."""
    raise KeyboardInterrupt(f"signal {signum}")


def run() -> NoReturn:
    """The ``softmax-lab`` program: ``main``, then a quick exit.

    MLflow leaves a large object graph that the interpreter's final garbage collections walk at
    exit: about 0.5–0.9 s after every command that used it. Everything is written and closed by
    then (runs, files, logging), so the objects are frozen out of those collections instead;
    the process's memory goes back to the OS as usual. (Only here, not in ``main``, which
    tests call in-process.)
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    from softmax_lab.runs.timings import mark

    mark("main")
    # MLflow draws its own bars on artifact transfers; the CLI owns the terminal
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's usage telemetry is on by default (an id file in ~/.config/mlflow, reports sent
    # from background threads); off unless the user opts in with MLFLOW_DISABLE_TELEMETRY=false.
    # Set before MLflow is imported, and inherited by the `ui` server.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    # `train` hands everything after it to Hydra untouched (its -m, --cfg, --help, overrides)
    if args_in and args_in[0] == "train":
        from softmax_lab.cli.console import report_input_error
        from softmax_lab.cli.hydra_app import run_train

        try:
            experiments, hydra_args = split_experiments_dir(args_in[1:])
        except InputError as e:
            return report_input_error(e, command="train")
        return run_train(hydra_args, experiments=experiments)
    args = _parser().parse_args(args_in)
    if args.command == "compare":
        from softmax_lab.cli.compare import run_compare

        return run_compare(args)
    if args.command == "rerun":
        from softmax_lab.cli.rerun import run_rerun

        return run_rerun(args)
    if args.command == "predict":
        from softmax_lab.cli.predict import run_predict

        return run_predict(args)
    if args.command == "register":
        from softmax_lab.cli.register import run_register

        return run_register(args)
    if args.command == "ui":
        from softmax_lab.cli.ui import run_ui

        return run_ui(args)
    if args.command == "push":
        from softmax_lab.cli.push import run_push

        return run_push(args)
    if args.command == "server":
        from softmax_lab.cli.server import run_server

        return run_server(args)
    return 2  # unreachable: argparse requires a command

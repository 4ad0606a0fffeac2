"""`hyp train`: train, evaluate, register and (with --promote) gate a model; --compare prints every model side by side.

Training data, in order of precedence: ``--data FILE``; ``--generate N`` (the load generator's
labelled purchases); ``--sql QUERY`` over the warehouse; by default the warehouse's purchases
(models.data.DEFAULT_SQL), falling back to ``HYP_TRAIN_ROWS`` generated rows when the warehouse
has fewer than ``HYP_MIN_TRAINING_ROWS``. Evaluation uses a held-out generated set (``--eval-rows``,
another seed), ``--eval-data FILE`` or ``--eval-sql QUERY`` over the warehouse. Files are .parquet,
.csv or .jsonl (``hyp loadgen --to jsonl``). Generating rows is this command's choice: the
``models`` package only takes frames.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from models import detectors
from models.errors import ModelInputError
from models.settings import ModelSettings
from services.common.config import Command, ConfigError

log = logging.getLogger("hyp.train")

COMPARE_COLUMNS = ("precision", "recall", "f1", "roc_auc", "pr_auc")


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ModelInputError(f"--param: expected KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def command() -> Command[ModelSettings]:
    cli = Command("train", ModelSettings, description=(__doc__ or "").splitlines()[0])
    p = cli.parser
    cli.flag("default_model", "--model", help="model kind")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sql", help="training query over the warehouse tables (DuckDB SQL)")
    src.add_argument("--generate", type=int, metavar="N", help="train on N generated labelled purchases")
    src.add_argument("--data", metavar="FILE", help="train on a .parquet, .csv or .jsonl file")
    cli.flag("eval_rows", "--eval-rows", help="held-out generated rows")
    held_out = p.add_mutually_exclusive_group()
    held_out.add_argument("--eval-data", metavar="FILE", help="held-out labelled rows from a file instead")
    held_out.add_argument("--eval-sql", metavar="QUERY", help="held-out labelled rows from the warehouse instead")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model parameter, repeatable (num_clusters=2, contamination=0.01, threshold=f1|contamination)",
    )
    p.add_argument(
        "--unsupervised", action="store_true", help="ignore labels: fit on all rows, contamination threshold"
    )
    p.add_argument("--search", type=int, default=0, metavar="TRIALS", help="random hyperparameter search (child runs)")
    promo = p.add_mutually_exclusive_group()
    promo.add_argument("--promote", action="store_true", help="move @champion if the challenger beats it")
    promo.add_argument("--force-promote", action="store_true", help="move @champion without the gate")
    promo.add_argument("--no-register", action="store_true", help="log the run but register no version")
    p.add_argument(
        "--bootstrap",
        action="store_true",
        help="only if there is no @champion: train --model and promote it (idempotent)",
    )
    p.add_argument("--compare", action="store_true", help="train every --models kind and print one table")
    p.add_argument("--models", default=",".join(detectors.MODEL_KINDS), help="kinds for --compare (comma-separated)")
    p.add_argument("--no-beam", action="store_true", help="leave Beam's online detectors out of --compare")
    p.add_argument("--no-log", action="store_true", help="--compare without MLflow (prints the table only)")
    cli.flag("promotion_metric", "--metric", help="promotion metric")
    cli.flag("promotion_min_delta", "--min-delta", help="how much better the challenger must be")
    cli.flag("mlflow_tracking_uri", "--tracking-uri", help="MLflow server")
    cli.flag("warehouse_dir", "--warehouse-dir", help="warehouse folder")
    cli.flag("seed", help="random seed")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return cli


def training_rows(args: argparse.Namespace, s: ModelSettings) -> tuple[Any, str]:
    from models import data
    from services.training.generated import labelled

    if args.data:
        return data.from_file(args.data), f"file {args.data}"
    if args.generate is not None:
        return labelled(args.generate, s.seed, s.anomaly_rate), f"{args.generate} generated rows"
    if args.sql:
        return data.from_warehouse(s.warehouse_dir, args.sql), "warehouse --sql"
    rows = data.from_warehouse(s.warehouse_dir)
    if len(rows) >= s.min_training_rows:
        return rows, f"warehouse purchases ({len(rows)} rows)"
    print(
        f"hyp train: the warehouse has {len(rows)} purchases (< {s.min_training_rows}); "
        f"training on {s.train_rows} generated rows instead",
        file=sys.stderr,
    )
    return labelled(s.train_rows, s.seed, s.anomaly_rate), f"{s.train_rows} generated rows (fallback)"


def eval_rows(args: argparse.Namespace, s: ModelSettings) -> tuple[Any, str]:
    """(held-out labelled rows, where they come from)."""
    from models import data
    from services.training.generated import labelled

    if args.eval_data:
        return data.from_file(args.eval_data, "--eval-data"), f"rows of file {args.eval_data}"
    if args.eval_sql:
        return data.from_warehouse(s.warehouse_dir, args.eval_sql, "--eval-sql"), "rows of warehouse --eval-sql"
    if s.eval_rows <= 0:
        raise ModelInputError(f"--eval-rows must be positive, got {s.eval_rows}")
    return labelled(s.eval_rows, s.seed + 1000, s.anomaly_rate, "--eval-rows"), "generated rows"


def register(
    s: ModelSettings, trained: Any, evaluation: Any, promote: str, extra: dict[str, Any], **options: Any
) -> Any:
    """Log ``trained`` and register it in the settings' registry, through the gate ``promote`` (gate|force|never)."""
    from models import training

    return training.log_and_register(
        trained,
        evaluation,
        tracking_uri=s.mlflow_tracking_uri,
        experiment=s.experiment,
        model_name=s.model_name,
        promote=promote,
        metric=s.promotion_metric,
        min_delta=s.promotion_min_delta,
        extra_params=extra,
        **options,
    )


def train_one(args: argparse.Namespace, s: ModelSettings, rows: Any, evaluation: Any, source: str) -> dict[str, Any]:
    from models import registry, training

    params = parse_params(args.param)
    training.validate_rows(rows, s.min_training_rows)
    training.validate_rows(evaluation, 1, "evaluation set")
    promote = "force" if args.force_promote else "gate" if args.promote else "never"
    model = s.default_model
    with registry.use_tracking_uri(s.mlflow_tracking_uri):
        import mlflow

        mlflow.set_experiment(s.experiment)
        with mlflow.start_run(run_name=f"{model}{'-search' if args.search else ''}"):
            if args.search:
                params = training.search(
                    model,
                    rows,
                    args.search,
                    seed=s.seed,
                    metric=s.promotion_metric,
                    base_params=params,
                    min_rows=s.min_training_rows,
                )
            trained = training.fit(
                model, rows, params, seed=s.seed, unsupervised=args.unsupervised, min_rows=s.min_training_rows
            )
            result = register(
                s, trained, evaluation, promote, {"data_source": source}, register=not args.no_register, parent_run=True
            )
    return {
        "model": model,
        "version": result.version,
        "promoted": result.promoted,
        "reason": result.reason,
        "run_id": result.run_id,
        "threshold": trained.threshold,
        "threshold_method": trained.threshold_method,
        **{k: round(trained.metrics[k], 4) for k in COMPARE_COLUMNS},
    }


def compare(args: argparse.Namespace, s: ModelSettings, rows: Any, held_out: tuple[Any, str], source: str) -> int:
    from models import training
    from models.baselines import beam_baselines
    from models.evaluation import evaluate, labels_of

    evaluation, eval_source = held_out
    labelled = labels_of(evaluation)
    if labelled is None:
        raise ModelInputError("evaluation set has no labels (an anomaly column with 0/1 on every row)")
    y, kinds_arr = labelled
    metric = s.promotion_metric
    results: list[dict[str, Any]] = []
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    best: training.Trained | None = None
    for kind in kinds:
        trained = training.fit(
            kind,
            rows,
            parse_params(args.param) if kind == s.default_model else {},
            seed=s.seed,
            unsupervised=args.unsupervised,
            min_rows=s.min_training_rows,
        )
        started = time.perf_counter()
        out = trained.model.score_rows(evaluation)
        rate = len(evaluation) / max(time.perf_counter() - started, 1e-9)
        trained.metrics = evaluate(y, kinds_arr, out["score"].to_numpy(), out["is_anomaly"].to_numpy())
        results.append(
            {
                "model": kind,
                **trained.metrics,
                "fit_s": trained.train_seconds,
                "rows_per_s": rate,
                "streaming": "yes" if detectors.get(kind).streaming else "no",
                "trained": trained,
            }
        )
        if best is None or trained.metrics[metric] > best.metrics[metric]:
            best = trained
    if not args.no_beam:
        for name, (scores, flags, n) in beam_baselines(evaluation).items():
            metrics = evaluate(y[:n], kinds_arr[:n], scores, flags)
            results.append(
                {
                    "model": f"{name} (online, {n} rows)",
                    **metrics,
                    "fit_s": 0.0,
                    "rows_per_s": float("nan"),
                    "streaming": "yes",
                }
            )
    print_table(results, f"{len(evaluation)} {eval_source}", source)
    if not args.no_log:
        from models import registry

        with registry.use_tracking_uri(s.mlflow_tracking_uri):
            import mlflow

            mlflow.set_experiment(s.experiment)
            with mlflow.start_run(run_name="compare"):
                for r in results:
                    prefix = r["model"].split(" ")[0]
                    mlflow.log_metrics({f"{prefix}.{k}": float(r[k]) for k in COMPARE_COLUMNS if r[k] == r[k]})
        if (args.promote or args.force_promote) and best is not None:
            promote = "force" if args.force_promote else "gate"
            result = register(
                s, best, evaluation, promote, {"data_source": source, "chosen_by": f"--compare on {metric}"}
            )
            print(f"best by {metric}: {best.kind} -> v{result.version}; {result.reason}")
    return 0


def print_table(results: list[dict[str, Any]], held_out: str, source: str) -> None:
    head = ["model", *COMPARE_COLUMNS, "fit_s", "rows_per_s", "streaming"]
    print(f"held-out evaluation: {held_out}; trained on {source}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in results:
        cells = [
            r["model"],
            *(f"{r[k]:.3f}" for k in COMPARE_COLUMNS),
            f"{r['fit_s']:.1f}",
            "-" if r["rows_per_s"] != r["rows_per_s"] else f"{r['rows_per_s']:,.0f}",
            r["streaming"],
        ]
        print("| " + " | ".join(cells) + " |")
    kinds = sorted({k.split(".")[1] for r in results for k in r if k.startswith("kind.")})
    print("\nrecall per anomaly kind\n")
    print("| model | " + " | ".join(kinds) + " |")
    print("|---|" + "|".join("---" for _ in kinds) + "|")
    for r in results:
        print(f"| {r['model']} | " + " | ".join(f"{r.get(f'kind.{k}.recall', float('nan')):.2f}" for k in kinds) + " |")


def bootstrap(args: argparse.Namespace, s: ModelSettings) -> int:
    from models import registry

    version = registry.champion_version(registry.client(s.mlflow_tracking_uri), s.model_name)
    if version is not None:
        print(f"{s.model_name}@champion is v{version}; nothing to do")
        return 0
    args.force_promote = True
    rows, source = training_rows(args, s)
    result = train_one(args, s, rows, eval_rows(args, s)[0], source)
    print(f"bootstrapped {s.model_name}@champion = v{result['version']} ({s.default_model}, f1={result['f1']})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.logs import setup_logging

    cli = command()
    try:
        args, s = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    setup_logging(s.log_level, json_lines=False)
    try:
        if args.bootstrap:
            return bootstrap(args, s)
        if not args.compare:
            detectors.get(s.default_model)  # an unknown --model fails before any data is read
        rows, source = training_rows(args, s)
        evaluation, eval_source = eval_rows(args, s)
        if args.compare:
            return compare(args, s, rows, (evaluation, eval_source), source)
        result = train_one(args, s, rows, evaluation, source)
    except ModelInputError as exc:
        return cli.fail(str(exc))
    except Exception as exc:  # registry unreachable and the like: one line, non-zero
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException | ConnectionError | OSError):
            print(f"hyp train: MLflow at {s.mlflow_tracking_uri}: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 1
        raise
    if args.json:
        print(json.dumps(result))
    else:
        state = "promoted to @champion" if result["promoted"] else "not promoted"
        print(
            f"{result['model']} v{result['version']}: f1={result['f1']} precision={result['precision']} "
            f"recall={result['recall']}; {state}: {result['reason']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

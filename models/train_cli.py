"""`hyp train`: train, evaluate, register and (with --promote) gate a model; --compare prints every model side by side.

Training data, in order of precedence: ``--data FILE``; ``--generate N`` (the load generator's
labelled purchases); ``--sql QUERY`` over the warehouse; by default the warehouse's purchases
(models.data.DEFAULT_SQL), falling back to ``HYP_TRAIN_ROWS`` generated rows when the warehouse
has fewer than ``HYP_MIN_TRAINING_ROWS``. Evaluation always uses a held-out generated set
(``--eval-rows``, another seed) or ``--eval-data FILE``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from models.errors import ModelInputError
from models.settings import get_settings

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


def build_parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(prog="hyp train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", default=s.default_model, help=f"model kind (default {s.default_model}, HYP_DEFAULT_MODEL)"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sql", help="training query over the warehouse tables (DuckDB SQL)")
    src.add_argument("--generate", type=int, metavar="N", help="train on N generated labelled purchases")
    src.add_argument("--data", metavar="FILE", help="train on a .parquet or .csv file")
    p.add_argument("--eval-rows", type=int, default=s.eval_rows, help="held-out generated rows (HYP_EVAL_ROWS)")
    p.add_argument("--eval-data", metavar="FILE", help="held-out labelled rows from a file instead")
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
    p.add_argument(
        "--models",
        default="kmeans,iforest,ecod,copod,hbos,lof,autoencoder,envelope",
        help="kinds for --compare (comma-separated)",
    )
    p.add_argument("--no-beam", action="store_true", help="leave Beam's online detectors out of --compare")
    p.add_argument("--no-log", action="store_true", help="--compare without MLflow (prints the table only)")
    p.add_argument("--metric", default=s.promotion_metric, help="promotion metric (HYP_PROMOTION_METRIC)")
    p.add_argument("--min-delta", type=float, default=s.promotion_min_delta, help="(HYP_PROMOTION_MIN_DELTA)")
    p.add_argument("--tracking-uri", default=s.mlflow_tracking_uri, help="MLflow server (MLFLOW_TRACKING_URI)")
    p.add_argument("--warehouse-dir", default=str(s.warehouse_dir), help="warehouse folder (HYP_WAREHOUSE_DIR)")
    p.add_argument("--seed", type=int, default=s.seed, help="(HYP_SEED)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p


def training_rows(args: argparse.Namespace) -> tuple[Any, str]:
    from models import data

    s = get_settings()
    if args.data:
        return data.from_file(args.data), f"file {args.data}"
    if args.generate is not None:
        return data.generated(args.generate, args.seed, s.anomaly_rate), f"{args.generate} generated rows"
    if args.sql:
        return data.from_warehouse(args.warehouse_dir, args.sql), "warehouse --sql"
    rows = data.from_warehouse(args.warehouse_dir)
    if len(rows) >= s.min_training_rows:
        return rows, f"warehouse purchases ({len(rows)} rows)"
    print(
        f"hyp train: the warehouse has {len(rows)} purchases (< {s.min_training_rows}); "
        f"training on {s.train_rows} generated rows instead",
        file=sys.stderr,
    )
    return data.generated(s.train_rows, args.seed, s.anomaly_rate), f"{s.train_rows} generated rows (fallback)"


def eval_rows(args: argparse.Namespace) -> Any:
    from models import data

    if args.eval_data:
        return data.from_file(args.eval_data)
    if args.eval_rows <= 0:
        raise ModelInputError(f"--eval-rows must be positive, got {args.eval_rows}")
    return data.generated(args.eval_rows, args.seed + 1000, get_settings().anomaly_rate)


def train_one(args: argparse.Namespace, rows: Any, evaluation: Any, source: str) -> dict[str, Any]:
    from models import registry, training

    s = get_settings()
    params = parse_params(args.param)
    training.validate_rows(rows, s.min_training_rows)
    training.validate_rows(evaluation, 1, "evaluation set")
    promote = "force" if args.force_promote else "gate" if args.promote else "never"
    with registry.use_tracking_uri(args.tracking_uri):
        import mlflow

        mlflow.set_experiment(s.experiment)
        with mlflow.start_run(run_name=f"{args.model}{'-search' if args.search else ''}"):
            if args.search:
                params = training.search(
                    args.model,
                    rows,
                    args.search,
                    seed=args.seed,
                    metric=args.metric,
                    base_params=params,
                    min_rows=s.min_training_rows,
                )
            trained = training.fit(
                args.model, rows, params, seed=args.seed, unsupervised=args.unsupervised, min_rows=s.min_training_rows
            )
            result = training.log_and_register(
                trained,
                evaluation,
                tracking_uri=args.tracking_uri,
                experiment=s.experiment,
                model_name=s.model_name,
                promote=promote,
                metric=args.metric,
                min_delta=args.min_delta,
                register=not args.no_register,
                extra_params={"data_source": source},
                parent_run=True,
            )
    return {
        "model": args.model,
        "version": result.version,
        "promoted": result.promoted,
        "reason": result.reason,
        "run_id": result.run_id,
        "threshold": trained.threshold,
        "threshold_method": trained.threshold_method,
        **{k: round(trained.metrics[k], 4) for k in COMPARE_COLUMNS},
    }


def compare(args: argparse.Namespace, rows: Any, evaluation: Any, source: str) -> int:
    from models import training
    from models.baselines import beam_baselines
    from models.detectors import STREAMING_FIT
    from models.evaluation import evaluate, labels_of

    s = get_settings()
    results: list[dict[str, Any]] = []
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    best = None
    for kind in kinds:
        trained = training.fit(
            kind,
            rows,
            parse_params(args.param) if kind == args.model else {},
            seed=args.seed,
            unsupervised=args.unsupervised,
            min_rows=s.min_training_rows,
        )
        started = time.perf_counter()
        out = trained.model.score_rows(evaluation)
        rate = len(evaluation) / max(time.perf_counter() - started, 1e-9)
        trained.metrics = evaluate(*labels_of(evaluation), out["score"].to_numpy(), out["is_anomaly"].to_numpy())
        results.append(
            {
                "model": kind,
                **trained.metrics,
                "fit_s": trained.train_seconds,
                "rows_per_s": rate,
                "streaming": "yes" if STREAMING_FIT.get(kind, True) else "no",
                "trained": trained,
            }
        )
        if best is None or trained.metrics[args.metric] > best.metrics[args.metric]:
            best = trained
    if not args.no_beam:
        y, kinds_arr = labels_of(evaluation)
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
    print_table(results, len(evaluation), source)
    if not args.no_log:
        from models import registry

        with registry.use_tracking_uri(args.tracking_uri):
            import mlflow

            mlflow.set_experiment(s.experiment)
            with mlflow.start_run(run_name="compare"):
                for r in results:
                    prefix = r["model"].split(" ")[0]
                    mlflow.log_metrics({f"{prefix}.{k}": float(r[k]) for k in COMPARE_COLUMNS if r[k] == r[k]})
        if args.promote or args.force_promote:
            result = training.log_and_register(
                best,
                evaluation,
                tracking_uri=args.tracking_uri,
                experiment=s.experiment,
                model_name=s.model_name,
                promote="force" if args.force_promote else "gate",
                metric=args.metric,
                min_delta=args.min_delta,
                extra_params={"data_source": source, "chosen_by": f"--compare on {args.metric}"},
            )
            print(f"best by {args.metric}: {best.kind} -> v{result.version}; {result.reason}")
    return 0


def print_table(results: list[dict[str, Any]], n_eval: int, source: str) -> None:
    head = ["model", *COMPARE_COLUMNS, "fit_s", "rows_per_s", "streaming"]
    print(f"held-out evaluation: {n_eval} generated rows; trained on {source}\n")
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


def bootstrap(args: argparse.Namespace) -> int:
    from models import registry

    s = get_settings()
    version = registry.champion_version(registry.client(args.tracking_uri), s.model_name)
    if version is not None:
        print(f"{s.model_name}@champion is v{version}; nothing to do")
        return 0
    args.force_promote = True
    rows, source = training_rows(args)
    result = train_one(args, rows, eval_rows(args), source)
    print(f"bootstrapped {s.model_name}@champion = v{result['version']} ({args.model}, f1={result['f1']})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(get_settings().log_level, json_lines=False)
    try:
        if args.bootstrap:
            return bootstrap(args)
        from models.detectors import MODEL_KINDS

        if not args.compare and args.model not in MODEL_KINDS:
            raise ModelInputError(f"unknown model {args.model!r} (models: {', '.join(MODEL_KINDS)})")
        rows, source = training_rows(args)
        evaluation = eval_rows(args)
        if args.compare:
            return compare(args, rows, evaluation, source)
        result = train_one(args, rows, evaluation, source)
    except ModelInputError as exc:
        print(f"hyp train: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # registry unreachable and the like: one line, non-zero
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException | ConnectionError | OSError):
            print(f"hyp train: MLflow at {args.tracking_uri}: {str(exc).splitlines()[0]}", file=sys.stderr)
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

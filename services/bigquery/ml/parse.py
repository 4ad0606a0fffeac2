"""BigQuery ML's table functions in the SQL parser: ``ML.PREDICT(MODEL m, TABLE t | (query))``,
``ML.DETECT_ANOMALIES(MODEL m, STRUCT(...), TABLE t | (query))``, ``ML.CENTROIDS(MODEL m)``,
``ML.EVALUATE``, ``ML.FEATURE_INFO``, ``ML.TRAINING_INFO``, ``ML.PRINCIPAL_COMPONENTS``,
``ML.PRINCIPAL_COMPONENT_INFO``; and the statement ``EXPORT MODEL m [OPTIONS(URI = ...)]``.

sqlglot's BigQuery dialect knows only ML.PREDICT (and AI functions); this dialect adds the others as
one node type, :class:`MLFunction` (function name, model table, input table or query, STRUCT argument),
so the rest of the statement parses as BigQuery SQL does.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import ParseError
from sqlglot.parsers.bigquery import BigQueryParser
from sqlglot.tokens import TokenType

from services.bigquery.sql import invalid_query

FUNCTIONS = (
    "PREDICT", "DETECT_ANOMALIES", "CENTROIDS", "EVALUATE", "FEATURE_INFO", "TRAINING_INFO",
    "PRINCIPAL_COMPONENTS", "PRINCIPAL_COMPONENT_INFO",
)  # fmt: skip


class MLFunction(exp.Expression, exp.Func):
    """``ML.<name>(MODEL this, [STRUCT params], [TABLE t | (query)])``; ``name`` upper case."""

    arg_types = {"this": True, "name": True, "expression": False, "params": False}


def _parse_ml(self: Any, name: str) -> MLFunction:
    if not self._match_text_seq("MODEL"):
        self.raise_error(f"ML.{name} needs MODEL as its first argument")
    model = self._parse_table_parts()
    source = params = None
    while self._match(TokenType.COMMA):
        if self._match(TokenType.TABLE):
            source = self._parse_table_parts()
        elif self._match(TokenType.L_PAREN, advance=False):
            source = self._parse_table()
        else:
            params = self._parse_bitwise()
    return MLFunction(this=model, name=name, expression=source, params=params)


class ExportModel(exp.Expression):
    """``EXPORT MODEL this [OPTIONS(...)]``; ``kind`` is ``MODEL``, so DDL dispatch hands it to BigQuery ML."""

    arg_types = {"this": True, "options": False, "kind": False}


def _parse_export(self: Any) -> exp.Expr:
    if not self._match_text_seq("MODEL"):
        return self._parse_export_data()
    model = self._parse_table_parts()
    return ExportModel(this=model, options=self._parse_properties(), kind="MODEL")


class BigQueryML(BigQuery):
    class Parser(BigQueryParser):
        FUNCTION_PARSERS = {
            **BigQueryParser.FUNCTION_PARSERS,
            **{name: (lambda n: lambda self: _parse_ml(self, n))(name) for name in FUNCTIONS},
        }
        STATEMENT_PARSERS = {**BigQueryParser.STATEMENT_PARSERS, TokenType.EXPORT: _parse_export}


def parse(query: str) -> exp.Expr:
    """One statement, BigQuery SQL with ML table functions (errors as services.bigquery.sql.parse's)."""
    try:
        statements = [s for s in BigQueryML().parse(query) if s is not None]
    except ParseError as exc:
        text = str(exc).strip()
        raise invalid_query(f"Syntax error: {text.splitlines()[0] if text else 'ParseError'}") from None
    if len(statements) != 1:
        raise invalid_query("Exactly one statement is supported per query (scripts are not supported yet).")
    return statements[0]


def calls(tree: exp.Expr) -> list[tuple[exp.Table, MLFunction]]:
    """The ML table functions in ``tree`` (each with the FROM/JOIN item holding it), innermost first."""
    found = []
    for node in tree.find_all(MLFunction):
        holder = node.parent
        if not isinstance(holder, exp.Table):
            raise invalid_query(f"ML.{node.args['name']} is a table function: use it in FROM or JOIN.")
        found.append((holder, node))
    found.sort(key=lambda pair: -_depth(pair[1]))
    return found


def _depth(node: exp.Expr) -> int:
    depth = 0
    while node.parent is not None:
        node, depth = node.parent, depth + 1
    return depth

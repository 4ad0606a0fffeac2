"""BigQuery Standard SQL -> DuckDB SQL with sqlglot, with every table name resolved to a catalog table.

:func:`translate` parses one statement (BigQuery dialect), refuses what is not a query or what sqlglot
cannot carry over (a 400 naming the construct, never a different answer), replaces each
``project.dataset.table`` by a relation name the caller binds to the table's rows, and turns ``@name``
parameters into DuckDB's ``$name`` (``?`` stays positional).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from services.bigquery.errors import BigQueryError

DUCKDB = "duckdb"
INFORMATION_SCHEMA = ("TABLES", "COLUMNS")  # dataset-qualified views served from the catalog
POSITIONAL = "__p"  # the DuckDB name of the i-th `?`: __p0, __p1, ...


def invalid_query(message: str) -> BigQueryError:
    return BigQueryError(400, "invalidQuery", message, "query")


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str


@dataclass
class Translation:
    sql: str  # DuckDB SQL
    tables: dict[str, TableRef] = field(default_factory=dict)  # relation name in `sql` -> catalog table
    named: list[str] = field(default_factory=list)  # @names used
    positional: int = 0  # number of ? placeholders
    read_only: bool = False  # ``sql`` passed the warehouse's read-only check (a cached translation: once)


MAX_TRANSLATIONS = 256  # translations kept by a Translations cache (the least recently used goes)


class Translations:
    """A bounded LRU of translations, keyed by everything a translation depends on: the query text, the project
    and default dataset its unqualified names resolve in, and the relation prefix. A translation names tables,
    never binds them (views and files are bound per run), so a kept one stays right while tables change; the
    caller keeps only translations that hold nothing computed for one run (ML.* rows). Local only: BigQuery
    does not document how it compiles a query; this saves the parse and generation of a repeated one."""

    def __init__(self, size: int = MAX_TRANSLATIONS) -> None:
        self.size = size
        self.kept: OrderedDict[tuple[str, str, str | None, str], Translation] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, query: str, project: str, default_dataset: str | None = None, prefix: str = "") -> Translation | None:
        key = (query, project, default_dataset, prefix)
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
            return found

    def put(self, query: str, project: str, default_dataset: str | None, prefix: str, done: Translation) -> None:
        with self.lock:
            self.kept[(query, project, default_dataset, prefix)] = done
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)

    def translate(self, query: str, project: str, default_dataset: str | None = None, prefix: str = "") -> Translation:
        """:func:`translate` of query text, from the cache when it holds it."""
        found = self.get(query, project, default_dataset, prefix)
        if found is None:
            found = translate(query, project, default_dataset, prefix)
            self.put(query, project, default_dataset, prefix, found)
        return found


def parse(query: str) -> exp.Expr:
    """One BigQuery statement's syntax tree (scripts and syntax errors: invalidQuery)."""
    try:
        statements = [s for s in sqlglot.parse(query, read="bigquery") if s is not None]
    except ParseError as exc:
        raise invalid_query(_syntax_error(exc)) from None
    if len(statements) != 1:
        raise invalid_query("Exactly one statement is supported per query (scripts are not supported yet).")
    return statements[0]


def translate(
    query: str | exp.Expr,
    project: str,
    default_dataset: str | None = None,
    prefix: str = "",
    keep: Collection[str] = (),
) -> Translation:
    """``prefix`` keeps the relation names of a view's query apart from its caller's. ``keep`` names
    relations the caller binds itself (a DML statement's target, see dml.py): those are left as they are,
    and only a statement with such a target may be other than a query."""
    tree = parse(query) if isinstance(query, str) else query
    if not isinstance(tree, exp.Query) and not keep:
        raise invalid_query(f"Statement type {tree.key.upper()} is not supported by hyp bigquery yet (only queries).")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = Translation("")
    for i, table in enumerate(list(tree.find_all(exp.Table))):
        if not table.db and table.name in keep:
            continue
        if not table.name:
            raise invalid_query(f"{table.sql('bigquery')}: table functions (ML.*, ...) are not supported.")
        if not table.db and table.name.lower() in ctes:
            continue
        if not table.db and not default_dataset:
            raise invalid_query(f'Table "{table.name}" must be qualified with a dataset (e.g. dataset.table).')
        name, alias = table.name, table.alias or table.name
        if name.upper().startswith("INFORMATION_SCHEMA."):
            view = name.split(".", 1)[1].upper()
            if view not in INFORMATION_SCHEMA:
                raise invalid_query(
                    f"INFORMATION_SCHEMA.{view} is not supported by hyp bigquery (only TABLES, COLUMNS)."
                )
            name = f"INFORMATION_SCHEMA.{view}"
            alias = alias if "." not in alias else view
        elif table.db.upper() == "INFORMATION_SCHEMA" or table.db.lower().startswith("region-"):
            raise invalid_query(
                "Only dataset-qualified INFORMATION_SCHEMA views are supported (dataset.INFORMATION_SCHEMA.X)."
            )
        ref = TableRef(table.catalog or project, table.db or str(default_dataset), name)
        relation = f"{prefix}__bq_table_{i}"
        out.tables[relation] = ref
        table.replace(exp.alias_(exp.to_table(relation), alias, table=True))
    _name_anonymous_columns(tree)
    _dates_stay_dates(tree)
    names = []
    for param in tree.find_all(exp.Parameter):
        name = param.name
        names.append(name)
        param.replace(exp.Placeholder(this=name))
    out.named = sorted(set(names))
    positional = [p for p in tree.find_all(exp.Placeholder, bfs=False) if p.args.get("this") is None]
    for i, placeholder in enumerate(positional):  # named: sqlglot may repeat one `?` in its translation
        placeholder.replace(exp.Placeholder(this=f"{POSITIONAL}{i}"))
    out.positional = len(positional)
    if out.named and out.positional:
        raise invalid_query("Query cannot mix named and positional parameters.")
    try:
        out.sql = tree.sql(DUCKDB, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise invalid_query(f"Not supported by hyp bigquery: {_first(exc)}") from None
    return out


_DUCKDB_ERRORS = (  # DuckDB's wording -> BigQuery's, for the errors a user meets most
    (re.compile(r'Binder Error: Referenced column "([^"]+)" not found.*'), r"Unrecognized name: \1"),
    (re.compile(r"Catalog Error: Scalar Function with name (\w+) does not exist.*"), r"Function not found: \1"),
)


def engine_error(message: str) -> str:
    """A DuckDB error line (services/warehouse/guard.refusal's, without its prefix) as BigQuery words it
    where the two differ only in wording; anything else as it is."""
    message = message.removeprefix("sql: ")
    for pattern, replacement in _DUCKDB_ERRORS:
        if pattern.fullmatch(message):
            return pattern.sub(replacement, message)
    return message


def _dates_stay_dates(tree: exp.Expr) -> None:
    """BigQuery's DATE_ADD and DATE_SUB take and return a DATE; DuckDB's ``DATE + INTERVAL`` is a TIMESTAMP, so the
    result is cast back (TIMESTAMP_ADD and DATETIME_ADD are other functions, left as they are)."""
    for node in list(tree.find_all(exp.DateAdd, exp.DateSub)):
        node.replace(exp.cast(node.copy(), exp.DataType.Type.DATE))


def _name_anonymous_columns(tree: exp.Expr) -> None:
    """BigQuery names an unnamed result column ``f0_``, ``f1_``, ... (DuckDB would say ``count_star()``)."""
    query = tree
    while isinstance(query, exp.SetOperation):  # a UNION's columns are named by its first query
        query = query.this
    if not isinstance(query, exp.Select):
        return
    anonymous = 0
    for i, column in enumerate(query.expressions):
        if isinstance(column, exp.Alias | exp.Column | exp.Dot | exp.Star) or column.alias:
            continue
        query.expressions[i] = exp.alias_(column, f"f{anonymous}_")
        anonymous += 1


def check_query_only(query: str) -> None:
    """Refuse (invalidQuery) any statement but a query, naming it as typed: what ``hyp sql`` and the
    console's SQL box accept. Looks at each statement's first keyword, so a statement BigQuery cannot
    even parse (``ATTACH``, ``INSTALL``, ``PRAGMA``) is named too, not reported as a syntax error."""
    from sqlglot.dialects.bigquery import BigQuery
    from sqlglot.errors import TokenError

    try:
        tokens = BigQuery().tokenize(query)
    except TokenError as exc:
        raise invalid_query(f"Syntax error: {_first(exc)}") from None
    statements: list[list[str]] = [[]]
    for token in tokens:
        if token.token_type.name == "SEMICOLON":
            statements.append([])
        else:
            statements[-1].append(token.text.upper())
    statements = [words for words in statements if words]
    if not statements:
        raise invalid_query("Query text is empty.")
    for words in statements:
        if words[0] in QUERY_STARTS:
            continue
        named = words[0]
        if named == "EXPLAIN":  # name what it explains too (EXPLAIN ANALYZE COPY ...)
            rest = [w for w in " ".join(words[1:]).split() if w != "ANALYZE"]
            named = f"EXPLAIN {rest[0]}" if rest else named
        raise invalid_query(f"Only queries are allowed here (only SELECT), got {named}.")
    if len(statements) > 1:
        raise invalid_query("Exactly one statement is supported per query (scripts are not supported yet).")


QUERY_STARTS = ("SELECT", "WITH", "(")


def _syntax_error(exc: ParseError) -> str:
    """BigQuery's shape, ``Syntax error: ... at [line:column]``, with the text where parsing stopped."""
    if not exc.errors:
        return f"Syntax error: {_first(exc)}"
    first = exc.errors[0]
    near = (str(first.get("start_context") or "") + str(first.get("highlight") or "")).strip()
    where = f" at [{first.get('line')}:{first.get('col')}]" if first.get("line") else ""
    return f"Syntax error: {first.get('description')}{where}" + (f" near {near!r}" if near else "")


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

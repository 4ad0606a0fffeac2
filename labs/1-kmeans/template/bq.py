"""Run the statements of a .sql file through Google's BigQuery client, as the BigQuery console runs them.

    python bq.py create_model.sql

The client is the one you use on GCP; only BIGQUERY_EMULATOR_HOST (set by `eval "$(hyp lab env)"`) sends
it to `hyp bigquery` instead, with anonymous credentials. Statements end with a `;` at the end of a line.
"""

import os
import sys

from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

client = bigquery.Client(project=os.environ.get("HYP_PROJECT", "hyp-local"), credentials=AnonymousCredentials())


def statements(text: str) -> list[str]:
    out, current = [], []
    for line in text.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current).strip().rstrip(";"))
            current = []
    if "\n".join(current).strip():
        out.append("\n".join(current).strip())
    return out


for path in sys.argv[1:]:
    with open(path) as f:
        for sql in statements(f.read()):
            print(f"-- {sql.splitlines()[0]} ...")
            job = client.query(sql)
            rows = job.result()
            if job.statement_type == "SELECT":
                print(rows.to_dataframe().to_string(max_rows=20))
            else:
                print(f"{job.statement_type}: done")

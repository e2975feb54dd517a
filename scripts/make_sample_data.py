"""Regenerate the bundled sample data: python scripts/make_sample_data.py sample_data."""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a checkout without installing crmlist.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmlist.sample import write_sample_data
from crmlist.sample.responses import write_sample_responses


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/make_sample_data.py FOLDER", file=sys.stderr)
        return 2
    for name, rows in write_sample_data(Path(argv[0])).items():
        print(f"{argv[0]}/{name}: {rows} rows", file=sys.stderr)
    # Responses answer the demo's win-back run, so they are made from the files just written.
    print(f"{argv[0]}/responses.csv: {write_sample_responses(Path(argv[0]))} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

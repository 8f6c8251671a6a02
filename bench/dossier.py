"""Dossier build time (services/dossier.py) at the sample corpus and at 10k chunks, without a language model.

    .venv/bin/python bench/dossier.py                      # sample corpus and 10k chunks
    .venv/bin/python bench/dossier.py --sizes 10000 --json

Per store: p50/p95/max seconds to build a dossier for each topic below (all three phases, 5 sources per phase;
three searches, sentence embeddings of the retrieved chunks, related terms), first a cold round (empty sentence cache)
then a warm one. The stores are those of bench/coverage.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import load_line  # noqa: E402
from bench.coverage import sample_services, scaled_services  # noqa: E402
from services.container import Services  # noqa: E402
from services.dossier import DossierRequest  # noqa: E402

TOPICS = ["Passantenbefragung", "Leerstandsmanagement", "Stadtgutschein", "Verfügungsfonds", "Frequenzmessung",
          "kommunales WLAN", "Generationenwechsel im Handel", "Innenstadtmanagement"]


def timings(services: Services) -> dict:
    rounds = {}
    for name in ("cold", "warm"):
        seconds = []
        for topic in TOPICS:
            started = time.perf_counter()
            dossier = services.dossiers.build(DossierRequest(topic, ["E", "K", "T"], size=5))
            seconds.append(time.perf_counter() - started)
        rounds[name] = {"p50": round(statistics.median(seconds), 3),
                        "p95": round(sorted(seconds)[int(0.95 * (len(seconds) - 1))], 3),
                        "max": round(max(seconds), 3)}
    rounds["sources_last"] = len(dossier.all_sources())
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sample = sample_services()
    results = {"sample": {"chunks": sample.store.count(), **timings(sample)}}
    for size in args.sizes:
        services = scaled_services(size, sample)
        results[str(size)] = {"chunks": services.store.count(), **timings(services)}
    results["load"] = load_line()
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(f"Dossier für {len(TOPICS)} Themen, Phasen E, K, T, 5 Quellen je Phase (Sekunden)")
    print("| Store | Abschnitte | kalt p50 | kalt p95 | warm p50 | warm p95 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in results.items():
        if name != "load":
            print(f"| {name} | {row['chunks']} | {row['cold']['p50']} | {row['cold']['p95']} | "
                  f"{row['warm']['p50']} | {row['warm']['p95']} |")
    print(f"Last: {results['load']}")


if __name__ == "__main__":
    main()

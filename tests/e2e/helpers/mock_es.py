#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A strict, in-memory stand-in for an Elasticsearch 8 / OpenSearch 2 cluster.

  mock_es.py --port-file FILE [--port 0] [--user U --password P] [--api-key KEY]
             [--fail-plan FILE] [--log FILE]
  mock_es.py --self-test

Listens on 127.0.0.1 (HTTP/1.1, keep-alive, chunked request bodies accepted),
writes the port to FILE once listening and serves until SIGTERM/SIGINT.

What it checks.  Every request is compared with the documented REST API:
unknown endpoints and methods, unknown query-string parameters, bad parameter
values, a body where none is allowed, a missing required body, a wrong
Content-Type (JSON endpoints take application/json or
application/vnd.elasticsearch+json;compatible-with=8, _bulk takes
application/x-ndjson), unparseable JSON or duplicate keys, unknown keys in
search bodies, queries and bulk metadata, invalid index/alias names, bad
mappings, analysis settings and index settings, versioning misuse, ids over
512 bytes, and documents that do not fit the mapping.  Such a request gets the
error body a cluster sends ({"error":{"root_cause":[..],"type":..,"reason":..},
"status":N}), is printed to stderr as a VIOLATION and is counted (GET
/_mock/stats).  Things a real cluster accepts but this server does not
implement are rejected the same way, with "[mock]" in the reason.  Writing to
a missing index fails as on a cluster with action.auto_create_index=false, and
also counts as a violation.

What it implements.  Index create/get/exists/delete, aliases (_aliases,
_alias), single-document index/create/update/get/delete with internal,
external and external_gte versioning, if_seq_no/if_primary_term and
tombstones, _bulk, _refresh with a per-index searchable snapshot (GET by id is
realtime; an index refreshes itself every refresh_interval, 1s by default,
never with -1), _search (query, size, from, sort, search_after, _source,
track_total_hits, version, seq_no_primary_term, terminate_after, min_score,
post_filter, track_scores, named queries), _count, _delete_by_query and
_cluster/health.  Mappings: explicit properties, multi-fields, dynamic
true/false/strict inherited per object, dynamic_templates (match, unmatch,
path_match, path_unmatch, match_mapping_type, match_pattern), enabled:false
objects, ignore_above, type checks and coercion as Elasticsearch does them,
except that integer fields reject fractional values instead of truncating and
that top-level field names starting with "_" are rejected.  Unmapped strings
become text with a keyword sub-field, floating point numbers float, as in
Elasticsearch.
Analysis: standard, simple, whitespace, keyword analyzers; custom analyzers
with pattern (the Java class [^\\p{L}\\p{N}\\p{Co}]+ or any regex Python
compiles unchanged), path_hierarchy, standard, keyword, whitespace and letter
tokenizers and lowercase/asciifolding filters.  Queries: match_all,
match_none, bool, term, terms, ids, range, prefix, wildcard, exists, match,
match_phrase, multi_match (best_fields, most_fields, phrase), constant_score,
dis_max; text scoring is BM25 (k1=1.2, b=0.75) over the searchable snapshot.

Test hooks: GET /_mock/stats, GET /_mock/indices, POST /_mock/reset; --log
appends one JSON line per request; --fail-plan names a JSON file, re-read on
every request, whose counters ({"bulk_429": n, "bulk_item_429": n,
"search_503": n, "close_connection": n, or generally "<kind>_<status>" with
kind one of bulk, search, count, doc (single-document writes), get (reads of
documents, indices and aliases), index (create/delete), refresh, aliases,
delete_by_query, health, info, any}) make the next requests fail and are
decremented in the file.  bulk_item_<status> (429, 400 as mapper_parsing_exception,
409, 404, 5xx) fails the first n items of the next _bulk requests with that
per-item status; close_connection drops the connection without an answer.  /_mock requests need no credentials and are neither
counted nor logged.
"""

import argparse
import base64
import calendar
import copy
import datetime
import functools
import json
import math
import os
import re
import secrets
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LONG_MIN, LONG_MAX = -(2 ** 63), 2 ** 63 - 1
INT_RANGES = {"long": (LONG_MIN, LONG_MAX), "integer": (-2 ** 31, 2 ** 31 - 1),
              "short": (-32768, 32767), "byte": (-128, 127)}
FLOAT_TYPES = ("double", "float")
NUMERIC = tuple(INT_RANGES) + FLOAT_TYPES
ES_VERSION = "8.11.0"
UNIVERSAL_PARAMS = {"pretty", "human", "error_trace", "filter_path", "format"}
NOT_IMPLEMENTED_PARAMS = {"pipeline", "q", "df", "analyzer", "default_operator", "analyze_wildcard",
                          "lenient", "scroll", "stored_fields", "docvalue_fields", "stats", "explain",
                          "sort", "suggest_field", "typed_keys", "include_named_queries_score"}


# ----------------------------------------------------------------------------- errors

class EsError(Exception):
    """An error answered the way Elasticsearch answers it."""

    def __init__(self, status, etype, reason, violation=True, simple=False, **extra):
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason
        self.violation, self.simple, self.extra = violation, simple, extra

    def item(self):
        return {"type": self.etype, "reason": self.reason, **self.extra}

    def body(self):
        if self.simple:
            return {"error": self.reason, "status": self.status}
        return {"error": {"root_cause": [self.item()], **self.item()}, "status": self.status}


def parsing(reason):
    return EsError(400, "parsing_exception", reason)


def illegal(reason):
    return EsError(400, "illegal_argument_exception", reason)


def mapper_error(reason):
    return EsError(400, "mapper_parsing_exception", "Failed to parse mapping: " + reason)


def doc_error(reason, etype="document_parsing_exception"):
    return EsError(400, etype, reason)


def validation(msgs):
    return EsError(400, "action_request_validation_exception",
                   "Validation Failed: " + "".join(f"{i}: {m};" for i, m in enumerate(msgs, 1)))


def shard_error(ix, reason):
    return EsError(400, "query_shard_exception", reason, index_uuid=ix.uuid, index=ix.name)


def index_missing(name, violation=False):
    return EsError(404, "index_not_found_exception", f"no such index [{name}]", violation,
                   **{"resource.type": "index_or_alias", "resource.id": name,
                      "index_uuid": "_na_", "index": name})


def conflict(ix, doc_id, reason):
    return EsError(409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, {reason}",
                   False, index_uuid=ix.uuid, shard="0", index=ix.name)


def planned_item_error(status):
    """A bulk item failure ordered by the fail plan (bulk_item_<status>)."""
    etype, reason = {429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
                     400: ("mapper_parsing_exception", "failed to parse"),
                     409: ("version_conflict_engine_exception", "version conflict"),
                     404: ("index_not_found_exception", "no such index")}.get(
        status, ("unavailable_shards_exception", "primary shard is not active"))
    return EsError(status, etype, reason + " [mock fail-plan]", False)


def not_implemented(what):
    return illegal(f"[mock] {what} is valid in Elasticsearch but not implemented by this mock server")


# ----------------------------------------------------------------------------- small helpers

class _DupKey(ValueError):
    pass


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _DupKey(k)
        d[k] = v
    return d


def _no_constants(name):
    raise ValueError(f"non-standard token [{name}]")


def parse_json(raw, what="request body"):
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dups, parse_constant=_no_constants)
    except _DupKey as e:
        raise EsError(400, "x_content_parse_exception", f"[{what}] Duplicate field '{e.args[0]}'")
    except (UnicodeDecodeError, ValueError) as e:
        raise EsError(400, "x_content_parse_exception", f"[{what}] failed to parse JSON: {e}")


def token_name(v):
    if isinstance(v, dict):
        return "START_OBJECT"
    if isinstance(v, list):
        return "START_ARRAY"
    if isinstance(v, bool):
        return "VALUE_BOOLEAN"
    if isinstance(v, (int, float)):
        return "VALUE_NUMBER"
    return "VALUE_NULL" if v is None else "VALUE_STRING"


def bkey(s):
    """Keyword ordering: by UTF-8 bytes, as Lucene orders terms."""
    return s.encode("utf-8", "surrogatepass")


def simple_match(pattern, s):
    """Elasticsearch's Regex.simpleMatch: only '*' is special."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == s
    if len(s) < len(parts[0]) + len(parts[-1]) or not s.startswith(parts[0]) or not s.endswith(parts[-1]):
        return False
    pos, end = len(parts[0]), len(s) - len(parts[-1])
    for mid in parts[1:-1]:
        i = s.find(mid, pos, end)
        if i < 0:
            return False
        pos = i + len(mid)
    return True


def as_list(v):
    return v if isinstance(v, list) else [v]


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def unflatten(flat):
    out = {}
    for k, v in flat.items():
        node = out
        *head, last = k.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    return out


def stringify(v):
    if isinstance(v, dict):
        return {k: stringify(x) for k, x in v.items()}
    if isinstance(v, list):
        return [stringify(x) for x in v]
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def utf16_len(s):
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def to_float32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)
    return dst


_NO = object()


def _fp_step(pats, key):
    sub = []
    for pat in pats:
        if pat[0] == "**":
            sub.append(pat)
            if len(pat) > 1 and simple_match(pat[1], key):
                sub.append(pat[2:])
        elif simple_match(pat[0], key):
            sub.append(pat[1:])
    return sub


def _fp_keep(node, pats):
    if any(not p or p == ["**"] for p in pats):
        return node
    if isinstance(node, list):
        kept = [r for r in (_fp_keep(x, pats) for x in node) if r is not _NO]
        return kept or _NO
    if not isinstance(node, dict):
        return _NO
    out = {}
    for k, v in node.items():
        sub = _fp_step(pats, k)
        if sub:
            r = _fp_keep(v, sub)
            if r is not _NO:
                out[k] = r
    return out or _NO


def _fp_drop(node, pats):
    if any(not p for p in pats):
        return _NO
    if isinstance(node, list):
        return [r for r in (_fp_drop(x, pats) for x in node) if r is not _NO]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        sub = _fp_step(pats, k)
        r = _fp_drop(v, sub) if sub else v
        if r is not _NO:
            out[k] = r
    return out


def filter_path(obj, spec):
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    incs = [p.split(".") for p in paths if not p.startswith("-")]
    excs = [p[1:].split(".") for p in paths if p.startswith("-")]
    if incs:
        obj = _fp_keep(obj, incs)
        obj = {} if obj is _NO else obj
    if excs:
        obj = _fp_drop(obj, excs)
        obj = {} if obj is _NO else obj
    return obj


def _may_descend(pats, path):
    pre = path + "."
    for pat in pats:
        head = pat.split("*", 1)[0]
        if pat.startswith(pre) or ("*" in pat and (pre.startswith(head) or head.startswith(pre))):
            return True
    return False


def filter_source(obj, incs, excs, prefix="", included=False):
    out = {}
    for k, v in obj.items():
        p = prefix + k
        if any(simple_match(e, p) for e in excs):
            continue
        inc = included or not incs or any(simple_match(i, p) for i in incs)
        if isinstance(v, (dict, list)) and (not inc or _may_descend(excs, p)):
            if not inc and not _may_descend(incs, p):
                continue
            if isinstance(v, dict):
                sub = filter_source(v, incs, excs, p + ".", inc)
                if sub or inc:
                    out[k] = sub
            else:
                lst = [filter_source(x, incs, excs, p + ".", inc) if isinstance(x, dict) else x
                       for x in v if isinstance(x, dict) or inc]
                lst = [x for x in lst if x != {} or inc]
                if lst or inc:
                    out[k] = lst
        elif inc:
            out[k] = v
    return out


def source_spec(spec, where="_source"):
    """_source: bool | str | [str] | {includes, excludes} -> None (no source) or (incs, excs)."""
    if spec is None or spec is True:
        return [], []
    if spec is False:
        return None
    if isinstance(spec, str):
        return [spec], []
    if isinstance(spec, list) and all(isinstance(x, str) for x in spec):
        return spec, []
    if isinstance(spec, dict):
        bad = [k for k in spec if k not in ("includes", "excludes", "include", "exclude")]
        if bad:
            raise parsing(f"Unknown key for a {token_name(spec[bad[0]])} in [{bad[0]}].")
        incs = as_list(spec.get("includes", spec.get("include", [])))
        excs = as_list(spec.get("excludes", spec.get("exclude", [])))
        if all(isinstance(x, str) for x in incs + excs):
            return incs, excs
    raise parsing(f"Expected one of [{where}] to be a boolean, string, array of strings or object")


# ----------------------------------------------------------------------------- analysis

JAVA_WORD_SEPARATOR = r"[^\p{L}\p{N}\p{Co}]+"


def _word_char(c):
    cat = unicodedata.category(c)
    return cat[0] in "LN" or cat == "Co"


def _runs(text, pred):
    out, cur = [], []
    for c in text:
        if pred(c):
            cur.append(c)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return [(t, i) for i, t in enumerate(out)]


def tok_standard(text):
    return [(m.group(), i) for i, m in enumerate(re.finditer(r"\w+", text))]


def tok_keyword(text):
    return [(text, 0)]


def tok_whitespace(text):
    return [(t, i) for i, t in enumerate(text.split())]


def tok_letter(text):
    return _runs(text, str.isalpha)


def make_pattern_tokenizer(pattern, name):
    if pattern == JAVA_WORD_SEPARATOR:
        return lambda text: _runs(text, _word_char)
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise illegal(f"[mock] pattern [{pattern}] of tokenizer [{name}] is not a regex this mock can "
                      f"evaluate ({e}); only {JAVA_WORD_SEPARATOR} or Python-compatible patterns are supported")

    def tok(text):
        pieces, last = [], 0
        for m in rx.finditer(text):
            pieces.append(text[last:m.start()])
            last = m.end()
        pieces.append(text[last:])
        return [(t, i) for i, t in enumerate(p for p in pieces if p)]
    return tok


def make_path_tokenizer(delim="/", repl=None):
    repl = delim if repl is None else repl

    def tok(text):
        if not text:
            return []
        cuts = [i for i, c in enumerate(text) if c == delim and i > 0]
        toks = [text[:i] for i in cuts if text[:i] != text] + [text]
        return [(t.replace(delim, repl), 0) for t in toks]
    return tok


def f_lowercase(t):
    return t.lower()


def f_asciifolding(t):
    return "".join(c for c in unicodedata.normalize("NFKD", t) if unicodedata.category(c) != "Mn")


class Analyzer:
    def __init__(self, tokenizer, filters=()):
        self.tokenizer, self.filters = tokenizer, list(filters)

    def __call__(self, text):
        out = []
        for term, pos in self.tokenizer(text):
            for f in self.filters:
                term = f(term)
            out.append((term, pos))
        return out


BUILTIN_TOKENIZERS = {"standard": tok_standard, "keyword": tok_keyword, "whitespace": tok_whitespace,
                      "letter": tok_letter, "path_hierarchy": make_path_tokenizer()}
BUILTIN_FILTERS = {"lowercase": f_lowercase, "asciifolding": f_asciifolding}
BUILTIN_ANALYZERS = {"standard": Analyzer(tok_standard, [f_lowercase]),
                     "simple": Analyzer(tok_letter, [f_lowercase]),
                     "whitespace": Analyzer(tok_whitespace), "keyword": Analyzer(tok_keyword)}


def _check_keys(d, allowed, what):
    if not isinstance(d, dict):
        raise illegal(f"{what} must be an object")
    for k in d:
        if k not in allowed:
            raise illegal(f"[mock] unknown or unsupported parameter [{k}] for {what}")


def build_analyzers(analysis):
    """Validate settings.analysis and return {name: Analyzer}."""
    _check_keys(analysis, {"analyzer", "tokenizer", "filter", "char_filter", "normalizer"}, "index.analysis")
    for k in ("char_filter", "normalizer"):
        if analysis.get(k):
            raise not_implemented(f"analysis component [{k}]")
    tokenizers = dict(BUILTIN_TOKENIZERS)
    for name, d in analysis.get("tokenizer", {}).items():
        t = d.get("type") if isinstance(d, dict) else None
        what = f"tokenizer [{name}] of type [{t}]"
        if t == "pattern":
            _check_keys(d, {"type", "pattern", "flags", "group"}, what)
            if d.get("flags") not in (None, "") or str(d.get("group", -1)) != "-1":
                raise not_implemented(f"pattern tokenizer flags/group on [{name}]")
            tokenizers[name] = make_pattern_tokenizer(d.get("pattern", r"\W+"), name)
        elif t == "path_hierarchy":
            _check_keys(d, {"type", "delimiter", "replacement", "buffer_size", "reverse", "skip"}, what)
            if d.get("reverse") in (True, "true") or str(d.get("skip", 0)) != "0":
                raise not_implemented(f"path_hierarchy reverse/skip on [{name}]")
            delim, repl = d.get("delimiter", "/"), d.get("replacement")
            if not isinstance(delim, str) or len(delim) != 1 or (repl is not None and len(str(repl)) != 1):
                raise illegal(f"delimiter and replacement of tokenizer [{name}] must be single characters")
            tokenizers[name] = make_path_tokenizer(delim, repl)
        elif t in ("standard", "keyword", "whitespace", "letter"):
            _check_keys(d, {"type"}, what)
            tokenizers[name] = BUILTIN_TOKENIZERS[t]
        elif t is None:
            raise illegal(f"tokenizer [{name}] must specify either an analyzer type, or a tokenizer")
        else:
            raise illegal(f"Unknown tokenizer type [{t}] for [{name}]")
    filters = dict(BUILTIN_FILTERS)
    for name, d in analysis.get("filter", {}).items():
        t = d.get("type") if isinstance(d, dict) else None
        if t not in BUILTIN_FILTERS:
            raise illegal(f"Unknown filter type [{t}] for [{name}]")
        _check_keys(d, {"type", "preserve_original"}, f"filter [{name}]")
        if d.get("preserve_original") in (True, "true"):
            raise not_implemented("asciifolding preserve_original")
        filters[name] = BUILTIN_FILTERS[t]
    analyzers = dict(BUILTIN_ANALYZERS)
    for name, d in analysis.get("analyzer", {}).items():
        if not isinstance(d, dict):
            raise illegal(f"analyzer [{name}] must be an object")
        t = d.get("type", "custom" if "tokenizer" in d else None)
        if t == "custom":
            _check_keys(d, {"type", "tokenizer", "filter", "char_filter", "position_increment_gap"},
                        f"analyzer [{name}]")
            if d.get("char_filter"):
                raise not_implemented("char_filter")
            tname = d.get("tokenizer")
            if tname is None:
                raise illegal(f"analyzer [{name}] must specify either an analyzer type, or a tokenizer")
            if tname not in tokenizers:
                raise illegal(f"Custom Analyzer [{name}] failed to find tokenizer under name [{tname}]")
            fl = []
            for fname in as_list(d.get("filter", [])):
                if fname not in filters:
                    raise illegal(f"Custom Analyzer [{name}] failed to find filter under name [{fname}]")
                fl.append(filters[fname])
            analyzers[name] = Analyzer(tokenizers[tname], fl)
        elif t in BUILTIN_ANALYZERS:
            _check_keys(d, {"type"}, f"analyzer [{name}]")
            analyzers[name] = BUILTIN_ANALYZERS[t]
        elif t is None:
            raise illegal(f"analyzer [{name}] must specify either an analyzer type, or a tokenizer")
        else:
            raise illegal(f"Unknown analyzer type [{t}] for [{name}]")
    return analyzers


# ----------------------------------------------------------------------------- settings

def _int_setting(lo):
    def conv(key, v):
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"-?\d+", v))):
            raise illegal(f"Failed to parse value [{v}] for setting [{key}]")
        if int(v) < lo:
            raise illegal(f"Failed to parse value [{v}] for setting [{key}] must be >= {lo}")
        return str(int(v))
    return conv


def _bool_setting(key, v):
    if v in (True, False, "true", "false"):
        return stringify(v)
    raise illegal(f"Failed to parse value [{v}] as only [true] or [false] are allowed.")


TIME_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _time_setting(key, v):
    s = str(v)
    if s == "-1" or re.fullmatch(r"\d+(nanos|micros|ms|s|m|h|d)", s):
        return s
    raise illegal(f"failed to parse setting [{key}] with value [{v}] as a time value: "
                  "unit is missing or unrecognized")


def _codec_setting(key, v):
    if v in ("default", "best_compression"):
        return v
    raise illegal(f"unknown value for [{key}] must be one of [default, best_compression] but was: {v}")


SETTINGS = {"number_of_shards": _int_setting(1), "number_of_replicas": _int_setting(0),
            "number_of_routing_shards": _int_setting(1), "refresh_interval": _time_setting,
            "max_result_window": _int_setting(1), "max_terms_count": _int_setting(0),
            "mapping.total_fields.limit": _int_setting(0), "mapping.depth.limit": _int_setting(1),
            "mapping.nested_fields.limit": _int_setting(0), "mapping.nested_objects.limit": _int_setting(0),
            "mapping.field_name_length.limit": _int_setting(1), "hidden": _bool_setting,
            "codec": _codec_setting, "auto_expand_replicas": lambda k, v: str(v)}


def normalize_settings(settings):
    """-> ({"index.x": str}, analysis-tree)."""
    if not isinstance(settings, dict):
        raise EsError(400, "settings_exception", "Failed to load settings from [settings]: must be an object")
    plain, analysis = {}, {}
    for k, v in flatten(settings).items():
        if not k.startswith("index."):
            k = "index." + k
        if k.startswith("index.analysis."):
            analysis[k[len("index.analysis."):]] = v
            continue
        conv = SETTINGS.get(k[len("index."):])
        if conv is None:
            raise illegal(f"unknown setting [{k}] please check that any required plugins are installed, "
                          "or check the breaking changes documentation for removed settings")
        plain[k] = conv(k, v)
    return plain, unflatten(analysis)


# ----------------------------------------------------------------------------- mappings

ROOT_KEYS = {"dynamic", "dynamic_templates", "properties", "_source", "_meta", "date_detection",
             "numeric_detection"}
_LEAF_COMMON = {"index", "doc_values", "store", "meta"}
FIELD_PARAMS = {
    "keyword": _LEAF_COMMON | {"fields", "ignore_above", "null_value", "norms", "eager_global_ordinals",
                               "similarity", "index_options", "split_queries_on_whitespace"},
    "text": _LEAF_COMMON | {"fields", "analyzer", "search_analyzer", "search_quote_analyzer", "norms",
                            "position_increment_gap", "index_options", "similarity", "eager_global_ordinals"},
    "boolean": _LEAF_COMMON | {"null_value"},
    "date": _LEAF_COMMON | {"format", "null_value"},
    "object": {"properties", "enabled", "dynamic"},
    "nested": {"properties", "dynamic", "include_in_parent", "include_in_root"},
}
for _t in NUMERIC:
    FIELD_PARAMS[_t] = _LEAF_COMMON | {"null_value", "coerce"}
BOOL_PARAMS = {"index", "doc_values", "store", "norms", "eager_global_ordinals", "coerce", "enabled",
               "split_queries_on_whitespace", "include_in_parent", "include_in_root"}
DATE_FORMATS = {"strict_date_optional_time", "date_optional_time", "epoch_millis", "epoch_second"}
TEMPLATE_KEYS = {"match", "unmatch", "path_match", "path_unmatch", "match_mapping_type", "match_pattern",
                 "mapping"}
MAPPING_TYPES = {"*", "object", "string", "long", "double", "boolean", "date", "binary"}


def is_object(fd):
    return fd.get("type", "object") in ("object", "nested")


def truthy(v):
    return v in (True, "true")


def norm_dynamic(v, where):
    if v in (True, "true"):
        return "true"
    if v in (False, "false"):
        return "false"
    if v == "strict":
        return "strict"
    if v == "runtime":
        raise not_implemented("dynamic: runtime")
    raise mapper_error(f"Could not convert [dynamic] to boolean or [strict] on [{where}]: [{v}]")


def expand_dotted(props):
    out = {}
    for name, fd in props.items():
        if not name or not name.strip():
            raise mapper_error("field name cannot be an empty string" if not name
                               else "field name cannot contain only whitespace")
        if "." in name:
            head, rest = name.split(".", 1)
            if not head or not rest:
                raise mapper_error(f"field name [{name}] cannot start or end with a dot")
            tgt = out.setdefault(head, {})
            if not isinstance(tgt, dict) or not is_object(tgt):
                raise mapper_error(f"Could not expand [{name}]: [{head}] is not an object")
            tgt.setdefault("properties", {})[rest] = fd
        elif name in out and isinstance(fd, dict):
            out[name] = deep_merge(fd, out[name])
        else:
            out[name] = fd
    return out


def check_field(name, fd, path, analyzers, multi=False, template=False):
    if not isinstance(fd, dict):
        raise mapper_error(f"Expected map for property [{name}] but got [{fd!r}]")
    fd = copy.deepcopy(fd)
    t = fd.get("type")
    if t is None and not template:
        t = "object"
    if t is not None and not isinstance(t, str):
        raise mapper_error(f"type of field [{path}] must be a string")
    if template and t in (None, "{dynamic_type}"):
        allowed = set().union(*FIELD_PARAMS.values())
    elif t in FIELD_PARAMS:
        allowed = FIELD_PARAMS[t]
    elif t in ("half_float", "scaled_float", "unsigned_long", "ip", "geo_point", "geo_shape", "binary",
               "flattened", "wildcard", "constant_keyword", "date_nanos", "match_only_text", "alias",
               "search_as_you_type", "token_count", "dense_vector", "version", "integer_range",
               "long_range", "date_range", "completion", "join", "percolator", "histogram"):
        raise not_implemented(f"field type [{t}] on [{path}]")
    else:
        raise mapper_error(f"No handler for type [{t}] declared on field [{name}]")
    if multi and t in ("object", "nested"):
        raise mapper_error(f"Type [{t}] cannot be used in multi field")
    for k, v in fd.items():
        if k == "type":
            continue
        if k not in allowed:
            raise mapper_error(f"unknown parameter [{k}] on mapper [{name}] of type [{t}] "
                               "(or a parameter this mock server does not implement)")
        if k in BOOL_PARAMS and v not in (True, False, "true", "false"):
            raise mapper_error(f"Cannot parse value [{v}] as only [true] or [false] are allowed.")
        if k in ("ignore_above", "position_increment_gap") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise mapper_error(f"[{k}] on field [{path}] must be a non-negative integer, got [{v}]")
        if k in ("analyzer", "search_analyzer", "search_quote_analyzer") and v not in analyzers:
            raise mapper_error(f"analyzer [{v}] has not been configured in mappings")
        if k == "fields":
            if multi:
                raise not_implemented(f"multi-fields inside the multi-field [{path}]")
            if not isinstance(v, dict):
                raise mapper_error(f"[fields] of [{path}] must be an object")
            fd[k] = {s: check_field(s, sd, f"{path}.{s}", analyzers, multi=True) for s, sd in v.items()}
        if k == "properties":
            fd[k] = check_props(v, path + ".", analyzers)
        if k == "dynamic":
            norm_dynamic(v, path)
        if k == "format":
            if not isinstance(v, str) or any(f not in DATE_FORMATS for f in v.split("||")):
                raise not_implemented(f"date format [{v}] (supported: {sorted(DATE_FORMATS)})")
        if k == "meta" and not (isinstance(v, dict) and all(isinstance(x, str) for x in v.values())):
            raise mapper_error(f"[meta] on [{path}] must be an object of strings")
        if k == "null_value" and v is not None and t not in (None, "{dynamic_type}"):
            coerce_value(t, fd, v, path)
    return fd


def check_props(props, prefix, analyzers):
    if not isinstance(props, dict):
        raise mapper_error(f"[properties] must be an object, got [{props!r}]")
    return {n: check_field(n, fd, prefix + n, analyzers) for n, fd in expand_dotted(props).items()}


def check_mapping(mappings, analyzers):
    """Validate a create-index "mappings" object and return the stored copy."""
    if not isinstance(mappings, dict):
        raise mapper_error("mappings must be an object")
    unknown = [k for k in mappings if k not in ROOT_KEYS]
    if unknown:
        raise mapper_error("Root mapping definition has unsupported parameters:  " +
                           " ".join(f"[{k} : {json.dumps(mappings[k])}]" for k in unknown))
    m = copy.deepcopy(mappings)
    if "dynamic" in m:
        norm_dynamic(m["dynamic"], "_doc")
    for k in ("date_detection", "numeric_detection"):
        if k in m and m[k] not in (True, False, "true", "false"):
            raise mapper_error(f"[{k}] must be a boolean")
    if truthy(m.get("numeric_detection")):
        raise not_implemented("numeric_detection")
    if "_source" in m:
        src = m["_source"]
        if not isinstance(src, dict) or any(k not in ("enabled", "includes", "excludes") for k in src):
            raise mapper_error(f"unsupported [_source] parameters: {json.dumps(src)}")
    templates = m.get("dynamic_templates", [])
    if not isinstance(templates, list):
        raise mapper_error("Dynamic template syntax error. An array of named objects is expected.")
    for tmpl in templates:
        if not isinstance(tmpl, dict) or len(tmpl) != 1 or not isinstance(next(iter(tmpl.values())), dict):
            raise mapper_error("Dynamic template syntax error. An array of named objects is expected.")
        (tname, t), = tmpl.items()
        for k, v in t.items():
            if k not in TEMPLATE_KEYS:
                raise mapper_error(f"Illegal dynamic template parameter: [{k}]")
            if k in ("match", "unmatch", "path_match", "path_unmatch", "match_mapping_type"):
                if not all(isinstance(x, str) for x in as_list(v)):
                    raise mapper_error(f"[{k}] of dynamic template [{tname}] must be a string or list of strings")
        if "mapping" not in t:
            raise mapper_error(f"template [{tname}] must have either mapping or runtime set")
        if t.get("match_pattern", "simple") not in ("simple", "regex"):
            raise mapper_error(f"No matching pattern found for [{t['match_pattern']}]")
        for mt in as_list(t.get("match_mapping_type", "*")):
            if mt not in MAPPING_TYPES:
                raise mapper_error(f"No field type matched on [{mt}], possible values are {sorted(MAPPING_TYPES)}")
        try:
            check_field("__template__", json.loads(json.dumps(t["mapping"]).replace("{name}", "__template__")),
                        "__template__", analyzers, template=True)
        except EsError as e:
            raise mapper_error(f"dynamic template [{tname}] has invalid content [{json.dumps(t)}], "
                               f"caused by [{e.reason}]")
    m["properties"] = check_props(m.get("properties", {}), "", analyzers)
    return m


def count_fields(props):
    n = 0
    for fd in props.values():
        n += 1 + len(fd.get("fields", {}))
        n += count_fields(fd.get("properties", {}))
    return n


# ----------------------------------------------------------------------------- value coercion

ISO_RX = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                    r"(Z|[+-]\d{2}:?\d{2})?")


def parse_date(v, fmt):
    fmts = (fmt or "strict_date_optional_time||epoch_millis").split("||")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "epoch_millis" in fmts:
            return int(v)
        if "epoch_second" in fmts:
            return int(v * 1000)
    if isinstance(v, str):
        for f in fmts:
            if f in ("epoch_millis", "epoch_second") and re.fullmatch(r"-?\d+", v):
                return int(v) * (1000 if f == "epoch_second" else 1)
            m = ISO_RX.fullmatch(v) if f in ("strict_date_optional_time", "date_optional_time") else None
            if m:
                y, mo, d, h, mi, s, frac, tz = m.groups()
                try:
                    dt = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
                except ValueError:
                    break
                ms = calendar.timegm(dt.timetuple()) * 1000 + int((frac or "0").ljust(3, "0")[:3])
                if tz and tz != "Z":
                    sign = 1 if tz[0] == "+" else -1
                    digits = tz[1:].replace(":", "")
                    ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60000
                return ms
    raise ValueError(f"failed to parse date field [{v}] with format [{fmt or 'strict_date_optional_time||epoch_millis'}]")


IGNORED = object()


def coerce_value(t, fd, v, path):
    """Convert one JSON scalar for a non-text field, raising the error ES gives."""
    def fail(msg):
        preview = json.dumps(v, ensure_ascii=False)[:40]
        return doc_error(f"failed to parse field [{path}] of type [{t}]. Preview of field's value: '{preview}'"
                         f" ({msg})")
    coerce = fd.get("coerce", True) in (True, "true")
    if t == "keyword":
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, (int, float)):
            s = str(v)
        elif isinstance(v, str):
            s = v
        else:
            raise fail("expected a value")
        if "ignore_above" in fd and utf16_len(s) > fd["ignore_above"]:
            return IGNORED
        if len(bkey(s)) > 32766:
            raise doc_error(f"Document contains at least one immense term in field=\"{path}\" (whose UTF8 encoding"
                            " is longer than the max length 32766), all of which were skipped.",
                            "illegal_argument_exception")
        return s
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        if isinstance(v, str):
            if v == "" and coerce:
                return IGNORED
            if not coerce or not re.fullmatch(r"[+-]?\d+(\.0*)?", v.strip()):
                raise fail(f"For input string: \"{v}\"")
            v = int(v.strip().split(".")[0])
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail("Current token is not numeric")
        elif isinstance(v, float):
            if not math.isfinite(v) or v != int(v):
                raise fail(f"Value [{v}] has a decimal part (this mock rejects what Elasticsearch would truncate)")
            v = int(v)
        if not lo <= v <= hi:
            raise fail(f"Value [{v}] is out of range for {'an' if t == 'integer' else 'a'} {t}")
        return v
    if t in FLOAT_TYPES:
        if isinstance(v, str):
            if v == "" and coerce:
                return IGNORED
            try:
                if not coerce:
                    raise ValueError
                v = float(v)
            except ValueError:
                raise fail(f"For input string: \"{v}\"")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail("Current token is not numeric")
        v = float(v)
        if t == "float":
            try:
                v = to_float32(v)
            except OverflowError:
                v = math.inf
        if not math.isfinite(v):
            raise fail(f"[{t}] supports only finite values, but got [{v}]")
        return v
    if t == "boolean":
        if v in (True, "true"):
            return True
        if v in (False, "false", ""):
            return False
        raise fail(f"Failed to parse value [{v}] as only [true] or [false] are allowed.")
    if t == "date":
        try:
            return parse_date(v, fd.get("format"))
        except ValueError as e:
            raise fail(str(e))
    raise fail("unsupported type")


# ----------------------------------------------------------------------------- documents

class Doc:
    __slots__ = ("id", "version", "seq_no", "source", "vals", "toks", "lens", "present", "num")


class DocParser:
    """Indexes one source against a copy of the index mapping (committed on success)."""

    class NeedCopy(Exception):
        pass

    def __init__(self, ix):
        self.ix = ix

    def parse(self, source):
        if not isinstance(source, dict):
            raise doc_error("failed to parse: Malformed content, must start with an object",
                            "mapper_parsing_exception")
        # Parse against the live mapping; only if a field must be added, start over on a private copy.
        for self.mapping in (self.ix.mapping, None):
            self.mutable = self.mapping is None
            if self.mutable:
                self.mapping = copy.deepcopy(self.ix.mapping)
            self.added = []
            self.vals, self.toks, self.lens, self.present, self.nextpos = {}, {}, {}, set(), {}
            try:
                self.obj(self.mapping, source, "", norm_dynamic(self.mapping.get("dynamic", True), "_doc"))
                break
            except DocParser.NeedCopy:
                continue
        if self.added:
            limit = int(self.ix.setting("mapping.total_fields.limit", "1000"))
            if count_fields(self.mapping["properties"]) > limit:
                raise doc_error(f"Limit of total fields [{limit}] has been exceeded while adding new fields "
                                f"[{len(self.added)}]", "illegal_argument_exception")
            depth = int(self.ix.setting("mapping.depth.limit", "20"))
            for p in self.added:
                if p.count(".") + 1 > depth:
                    raise doc_error(f"Limit of mapping depth [{depth}] has been exceeded due to object field [{p}]",
                                    "illegal_argument_exception")

    def obj(self, m, value, path, dyn):
        dyn = norm_dynamic(m.get("dynamic", dyn), path or "_doc")
        for key, val in value.items():
            if key == "":
                raise doc_error("field name cannot be an empty string")
            if not key.strip():
                raise doc_error(f"field name cannot contain only whitespace: ['{key}']")
            if not path and key.startswith("_"):
                raise doc_error(f"Field [{key}] is a metadata field and cannot be added inside a document. "
                                "Use the index API request parameters." if key in ("_id", "_index", "_source",
                                "_routing", "_version", "_seq_no", "_primary_term", "_field_names", "_ignored")
                                else f"[mock] top-level field names starting with [_] are rejected: [{key}]")
            parts = key.split(".")
            if any(not p for p in parts):
                raise doc_error(f"field name starting or ending with a [.] makes object resolution ambiguous: [{key}]")
            self.field(m, parts, val, path, dyn)

    def field(self, m, parts, val, path, dyn):
        name = parts[0]
        fpath = f"{path}.{name}" if path else name
        fd = m.get("properties", {}).get(name)
        if fd is None:
            if len(parts) == 1 and (val is None or val == []):
                return
            if dyn == "strict":
                raise EsError(400, "strict_dynamic_mapping_exception",
                              f"mapping set to strict, dynamic introduction of [{name}] within "
                              f"[{path or '_doc'}] is not allowed")
            if dyn == "false":
                return
            fd = self.dynamic_mapping(name, fpath, {} if len(parts) > 1 else val)
            if fd is None:
                return
            if not self.mutable:
                raise DocParser.NeedCopy()
            m.setdefault("properties", {})[name] = fd
            self.added.append(fpath)
        if len(parts) > 1:
            if not is_object(fd):
                raise doc_error(f"Could not dynamically add mapping for field [{'.'.join(parts)}]. Existing mapping "
                                f"for [{fpath}] must be of type object but found [{fd.get('type')}].")
            if fd.get("enabled", True) in (False, "false"):
                return
            return self.field(fd, parts[1:], val, fpath, norm_dynamic(fd.get("dynamic", dyn), fpath))
        self.value(fd, val, fpath, dyn)

    def value(self, fd, val, fpath, dyn):
        if isinstance(val, list):
            for v in val:
                self.value(fd, v, fpath, dyn)
            return
        if is_object(fd):
            if fd.get("enabled", True) in (False, "false") or val is None:
                return
            if not isinstance(val, dict):
                raise doc_error(f"object mapping for [{fpath}] tried to parse field [{fpath.rsplit('.', 1)[-1]}] "
                                "as object, but found a concrete value")
            self.obj(fd, val, fpath, dyn)
            return
        self.leaf(fd, val, fpath)

    def leaf(self, fd, val, fpath):
        t = fd["type"]
        if isinstance(val, dict):
            raise doc_error(f"failed to parse field [{fpath}] of type [{t}]: Can't get text on a START_OBJECT")
        if val is None:
            val = fd.get("null_value")
            if val is None:
                return
        if t == "text":
            self.text(fd, val, fpath)
        else:
            v = coerce_value(t, fd, val, fpath)
            if v is not IGNORED:
                self.vals.setdefault(fpath, []).append(v)
                self.present.add(fpath)
        for sub, sd in fd.get("fields", {}).items():
            self.leaf(sd, val, f"{fpath}.{sub}")

    def text(self, fd, val, fpath):
        s = ("true" if val else "false") if isinstance(val, bool) else str(val)
        toks = self.ix.analyzer_for(fd)(s)
        prev = self.nextpos.get(fpath)
        start = 0 if prev is None else prev + int(fd.get("position_increment_gap", 100))
        d = self.toks.setdefault(fpath, {})
        top = start - 1
        for term, pos in toks:
            d.setdefault(term, []).append(start + pos)
            top = max(top, start + pos)
        self.lens[fpath] = self.lens.get(fpath, 0) + len(toks)
        self.nextpos[fpath] = top + 1
        if toks:
            self.present.add(fpath)

    def dynamic_mapping(self, name, fpath, val):
        sample = val
        while isinstance(sample, list):
            sample = next((x for x in sample if x is not None), None)
        if sample is None:
            return None
        if isinstance(sample, dict):
            mtype = "object"
        elif isinstance(sample, bool):
            mtype = "boolean"
        elif isinstance(sample, int):
            mtype = "long"
        elif isinstance(sample, float):
            mtype = "double"
        elif (self.mapping.get("date_detection", True) in (True, "true") and ISO_RX.fullmatch(sample)):
            mtype = "date"
        else:
            mtype = "string"
        for tmpl in self.mapping.get("dynamic_templates", []):
            (tname, t), = tmpl.items()
            if self.template_matches(t, name, fpath, mtype):
                dyn_type = {"string": "text", "double": "float"}.get(mtype, mtype)
                text = json.dumps(t["mapping"]).replace("{name}", name).replace("{dynamic_type}", dyn_type)
                fd = json.loads(text)
                if "type" not in fd and mtype != "object":
                    fd["type"] = dyn_type
                return check_field(name, fd, fpath, self.ix.analyzers)
        return {"object": {"type": "object"}, "boolean": {"type": "boolean"}, "long": {"type": "long"},
                "double": {"type": "float"}, "date": {"type": "date"},
                "string": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}}[mtype]

    @staticmethod
    def template_matches(t, name, fpath, mtype):
        mt = as_list(t.get("match_mapping_type", "*"))
        if "*" not in mt and mtype not in mt:
            return False
        if t.get("match_pattern") == "regex":
            def hit(pats, s):
                return any(re.fullmatch(p, s) for p in as_list(pats))
        else:
            def hit(pats, s):
                return any(simple_match(p, s) for p in as_list(pats))
        return ((("match" not in t) or hit(t["match"], name)) and
                (("unmatch" not in t) or not hit(t["unmatch"], name)) and
                (("path_match" not in t) or hit(t["path_match"], fpath)) and
                (("path_unmatch" not in t) or not hit(t["path_unmatch"], fpath)))


class Snapshot:
    """What searches see: the documents as of the last refresh, plus BM25 statistics."""

    def __init__(self, docs):
        self.docs = docs
        self.stats = {}

    def field_stats(self, field):
        st = self.stats.get(field)
        if st is None:
            n = total = 0
            df = {}
            for d in self.docs.values():
                t = d.toks.get(field)
                if t is None:
                    continue
                n += 1
                total += d.lens[field]
                for term in t:
                    df[term] = df.get(term, 0) + 1
            st = self.stats[field] = (n, (total / n) if n and total else 1.0, df)
        return st


class Index:
    def __init__(self, name, settings, analysis, mapping, analyzers, order):
        self.name, self.settings, self.analysis = name, settings, analysis
        self.mapping, self.analyzers, self.order = mapping, analyzers, order
        self.uuid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22]
        self.created = int(time.time() * 1000)
        self.docs, self.tombs = {}, {}
        self.snap = Snapshot({})
        self.seq_no, self.next_num, self.dirty = -1, 0, False
        self.last_refresh = time.monotonic()
        self.fields = {}
        self.rebuild_fields()

    def setting(self, key, default=None):
        return self.settings.get("index." + key, default)

    def refresh_seconds(self):
        s = self.setting("refresh_interval", "1s")
        if s == "-1":
            return None
        m = re.fullmatch(r"(\d+)(\w+)", s)
        return int(m.group(1)) * TIME_UNITS[m.group(2)]

    def refresh(self):
        self.snap = Snapshot(dict(self.docs))
        self.dirty = False
        self.last_refresh = time.monotonic()

    def shards(self):
        return {"total": 1 + int(self.setting("number_of_replicas", "1")), "successful": 1, "failed": 0}

    def rebuild_fields(self):
        self.fields = {}

        def walk(props, prefix):
            for name, fd in props.items():
                p = prefix + name
                self.fields[p] = fd
                if is_object(fd):
                    if fd.get("enabled", True) not in (False, "false"):
                        walk(fd.get("properties", {}), p + ".")
                else:
                    for sub, sd in fd.get("fields", {}).items():
                        self.fields[f"{p}.{sub}"] = sd
        walk(self.mapping.get("properties", {}), "")

    def analyzer_for(self, fd, search=False):
        names = ([fd.get("search_analyzer"), "default_search"] if search else []) + [fd.get("analyzer"), "default"]
        for n in names:
            if n and n in self.analyzers:
                return self.analyzers[n]
        return self.analyzers["standard"]

    def settings_out(self, flat=False):
        s = {"index.number_of_shards": "1", "index.number_of_replicas": "1"}
        s.update(self.settings)
        s.update({"index.uuid": self.uuid, "index.creation_date": str(self.created),
                  "index.provided_name": self.name, "index.version.created": "8110099"})
        for k, v in flatten(stringify(self.analysis)).items():
            s["index.analysis." + k] = v
        return dict(sorted(s.items())) if flat else unflatten(s)


# ----------------------------------------------------------------------------- queries

def named(fn, name):
    if name is None:
        return fn

    def g(d, names):
        s = fn(d, names)
        if s is not None:
            names.add(name)
        return s
    return g


def never(d, names):
    return None


def common(qtype, p):
    if "_name" in p and not isinstance(p["_name"], str):
        raise parsing(f"[{qtype}] query does not support [_name] of type {token_name(p['_name'])}")
    b = p.get("boost", 1.0)
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        raise parsing(f"[{qtype}] query: [boost] must be a number, got {token_name(b)}")
    return float(b), p.get("_name")


def obj_params(qtype, body, allowed):
    if not isinstance(body, dict):
        raise parsing(f"[{qtype}] query malformed, no start_object after query name")
    for k in body:
        if k not in allowed:
            raise parsing(f"[{qtype}] query does not support [{k}]")
    return body


def field_params(qtype, body, main, allowed):
    """{field: value} or {field: {params}} (+ top-level boost/_name) -> (field, params)."""
    if not isinstance(body, dict):
        raise parsing(f"[{qtype}] query malformed, no start_object after query name")
    field, params, top = None, {}, {}
    for k, v in body.items():
        if k in ("boost", "_name") and not isinstance(v, (dict, list)):
            top[k] = v
            continue
        if field is not None:
            raise parsing(f"[{qtype}] query doesn't support multiple fields, found [{field}] and [{k}]")
        field = k
        if isinstance(v, dict):
            for pk in v:
                if pk not in allowed:
                    raise parsing(f"[{qtype}] query does not support [{pk}]")
            params = dict(v)
        elif isinstance(v, list) or main is None:
            raise parsing(f"[{qtype}] query does not support [{token_name(v)}] as the value of field [{k}]")
        else:
            params = {main: v}
    if field is None:
        raise parsing(f"[{qtype}] query requires a field name")
    return field, {**top, **params}


def scalar(qtype, v, what="value"):
    if v is None or isinstance(v, (dict, list)):
        raise parsing(f"[{qtype}] query requires a scalar [{what}], got {token_name(v)}")
    return v


def as_text(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def msm_count(spec, n):
    s = str(spec).strip()
    try:
        if s.endswith("%"):
            v = int(s[:-1])
            c = int(n * abs(v) / 100)
            return n - c if v < 0 else c
        v = int(s)
        return max(0, n + v) if v < 0 else v
    except ValueError:
        raise not_implemented(f"minimum_should_match [{spec}] (only integers and percentages are supported)")


def wildcard_regex(pat, ci):
    out, i = [], 0
    while i < len(pat):
        c = pat[i]
        if c == "\\" and i + 1 < len(pat):
            out.append(re.escape(pat[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S | (re.I if ci else 0))


class Ctx:
    """Compiles queries for one index; evaluation reads its searchable snapshot."""

    def __init__(self, ix):
        self.ix, self.snap = ix, ix.snap

    def field(self, name):
        fd = self.ix.fields.get(name)
        if fd is None or is_object(fd):
            return None
        if fd.get("index", True) in (False, "false") and (
                fd["type"] == "text" or fd.get("doc_values", True) in (False, "false")):
            raise shard_error(self.ix, f"failed to create query: Cannot search on field [{name}] since it is not indexed.")
        return fd

    def num(self, v, name):
        try:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError
            if isinstance(v, str):
                s = v.strip()
                return int(s) if re.fullmatch(r"[+-]?\d+", s) else float(s)
            return v
        except (ValueError, OverflowError):
            raise shard_error(self.ix, f"failed to create query: For input string: \"{v}\" (field [{name}])")

    def convert(self, fd, name, v):
        """A query value for a non-text field in its indexed form, or _NO when nothing can match."""
        t = fd["type"]
        if t == "keyword":
            return as_text(v)
        if t == "boolean":
            if v in (True, "true"):
                return True
            if v in (False, "false"):
                return False
            raise shard_error(self.ix, f"failed to create query: Can't parse boolean value [{v}], expected [true] or [false]")
        if t == "date":
            try:
                return parse_date(v, fd.get("format"))
            except ValueError as e:
                raise shard_error(self.ix, f"failed to create query: {e}")
        x = self.num(v, name)
        if t in INT_RANGES:
            if isinstance(x, float):
                if not x.is_integer():
                    return _NO
                x = int(x)
            lo, hi = INT_RANGES[t]
            return x if lo <= x <= hi else _NO
        return to_float32(float(x)) if t == "float" else float(x)

    def terms_of(self, f, t):
        if t == "text":
            return lambda d: d.toks.get(f, ())
        return lambda d: d.vals.get(f, ())

    def term_matcher(self, f, values, ci, boost):
        fd = self.field(f)
        if fd is None:
            return never
        t = fd["type"]
        if t in ("text", "keyword"):
            qs = {as_text(v).lower() if ci else as_text(v) for v in values}
        else:
            qs = {self.convert(fd, f, v) for v in values} - {_NO}
        get = self.terms_of(f, t)
        if ci:
            return lambda d, n: boost if any(x.lower() in qs for x in get(d)) else None
        return lambda d, n: boost if any(x in qs for x in get(d)) else None

    def bm25(self, f, term, d):
        n, avgdl, df = self.snap.field_stats(f)
        dfi = df.get(term, 0)
        tf = len(d.toks[f][term])
        idf = math.log(1 + (n - dfi + 0.5) / (dfi + 0.5))
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * d.lens[f] / avgdl))

    def match_fn(self, f, p, phrase, boost, qtype):
        fd = self.field(f)
        if fd is None:
            return never
        q = scalar(qtype, p.get("query"), "query")
        if fd["type"] != "text":
            try:
                return self.term_matcher(f, [q], False, boost)
            except EsError:
                if truthy(p.get("lenient")):
                    return never
                raise
        if "analyzer" in p:
            an = self.ix.analyzers.get(p["analyzer"])
            if an is None:
                raise shard_error(self.ix, f"[{qtype}] analyzer [{p['analyzer']}] not found")
        else:
            an = self.ix.analyzer_for(fd, search=True)
        toks = an(as_text(q))
        zt = p.get("zero_terms_query", "none")
        if zt not in ("none", "all"):
            raise parsing(f"[{qtype}] unsupported zero_terms_query value [{zt}]")
        if not toks:
            return (lambda d, n: boost) if zt == "all" else never
        if phrase:
            if p.get("slop", 0) != 0:
                raise not_implemented(f"[{qtype}] slop other than 0")
            base = toks[0][1]
            rel = [(t, pos - base) for t, pos in toks]
            terms = sorted({t for t, _ in rel})

            def fn(d, n):
                dt = d.toks.get(f)
                if not dt or any(t not in dt for t in terms):
                    return None
                for start in dt[rel[0][0]]:
                    if all(start + off in dt[t] for t, off in rel[1:]):
                        return boost * sum(self.bm25(f, t, d) for t in terms)
                return None
            return fn
        op = str(p.get("operator", "or")).lower()
        if op not in ("or", "and"):
            raise parsing(f"[{qtype}] unknown operator [{p['operator']}]")
        terms = [t for t, _ in toks]
        need = len(terms) if op == "and" else 1
        if op == "or" and "minimum_should_match" in p:
            need = max(1, msm_count(p["minimum_should_match"], len(terms)))

        def fn(d, n):
            dt = d.toks.get(f)
            if not dt:
                return None
            hit = [t for t in terms if t in dt]
            return boost * sum(self.bm25(f, t, d) for t in hit) if len(hit) >= need else None
        return fn


def q_match_all(body, cx):
    b, name = common("match_all", obj_params("match_all", body, {"boost", "_name"}))
    return named(lambda d, n: b, name)


def q_match_none(body, cx):
    _, name = common("match_none", obj_params("match_none", body, {"boost", "_name"}))
    return never


def q_term(body, cx):
    f, p = field_params("term", body, "value", {"value", "boost", "_name", "case_insensitive"})
    b, name = common("term", p)
    v = scalar("term", p.get("value"))
    return named(cx.term_matcher(f, [v], truthy(p.get("case_insensitive")), b), name)


def q_terms(body, cx):
    if not isinstance(body, dict):
        raise parsing("[terms] query malformed, no start_object after query name")
    field, vals = None, None
    for k, v in body.items():
        if k in ("boost", "_name"):
            continue
        if field is not None:
            raise parsing(f"[terms] query does not support multiple fields, found [{field}] and [{k}]")
        if not isinstance(v, list):
            raise not_implemented("[terms] lookup") if isinstance(v, dict) else parsing(f"[terms] query does not support [{k}]")
        field, vals = k, [scalar("terms", x) for x in v]
    if field is None:
        raise parsing("[terms] query requires a field name")
    b, name = common("terms", body)
    return named(cx.term_matcher(field, vals, False, b), name)


def q_ids(body, cx):
    p = obj_params("ids", body, {"values", "boost", "_name"})
    b, name = common("ids", p)
    vals = p.get("values", [])
    if not isinstance(vals, list):
        raise parsing("[ids] values must be an array")
    ids = {as_text(scalar("ids", v)) for v in vals}
    return named(lambda d, n: b if d.id in ids else None, name)


def q_range(body, cx):
    f, p = field_params("range", body, None, {"gt", "gte", "lt", "lte", "boost", "_name", "format",
                                               "time_zone", "relation", "from", "to", "include_lower",
                                               "include_upper"})
    b, name = common("range", p)
    for k in ("time_zone", "relation", "from", "to", "include_lower", "include_upper"):
        if k in p:
            raise not_implemented(f"[range] parameter [{k}]")
    fd = cx.field(f)
    if fd is None:
        return never
    t = fd["type"]
    bounds = []
    for op in ("gt", "gte", "lt", "lte"):
        if p.get(op) is None:
            continue
        v = scalar("range", p[op], op)
        if t in ("keyword", "text"):
            bv = bkey(as_text(v))
        elif t == "date":
            try:
                bv = parse_date(v, p.get("format") or fd.get("format"))
            except ValueError as e:
                raise shard_error(cx.ix, f"failed to create query: {e}")
        elif t == "boolean":
            bv = int(cx.convert(fd, f, v))
        else:
            bv = cx.num(v, f)
            bv = to_float32(float(bv)) if t == "float" else bv
        bounds.append((op, bv))
    key = bkey if t in ("keyword", "text") else int if t == "boolean" else (lambda x: x)
    get = cx.terms_of(f, t)

    def ok(x):
        x = key(x)
        return all((x > bv) if op == "gt" else (x >= bv) if op == "gte" else (x < bv) if op == "lt" else (x <= bv)
                   for op, bv in bounds)
    return named(lambda d, n: b if any(ok(x) for x in get(d)) else None, name)


def _string_query(qtype, body, cx, build):
    f, p = field_params(qtype, body, "value", {"value", "boost", "_name", "case_insensitive", "rewrite",
                                               "wildcard"} if qtype == "wildcard" else
                        {"value", "boost", "_name", "case_insensitive", "rewrite"})
    b, name = common(qtype, p)
    v = as_text(scalar(qtype, p.get("value", p.get("wildcard"))))
    ci = truthy(p.get("case_insensitive"))
    fd = cx.field(f)
    if fd is None:
        return never
    if fd["type"] not in ("keyword", "text"):
        raise shard_error(cx.ix, f"Can only use {qtype} queries on keyword and text fields - not on [{f}] "
                          f"which is of type [{fd['type']}]")
    test, get = build(v, ci), cx.terms_of(f, fd["type"])
    return named(lambda d, n: b if any(test(x) for x in get(d)) else None, name)


def q_prefix(body, cx):
    def build(v, ci):
        return (lambda x: x.lower().startswith(v.lower())) if ci else (lambda x: x.startswith(v))
    return _string_query("prefix", body, cx, build)


def q_wildcard(body, cx):
    def build(v, ci):
        rx = wildcard_regex(v, ci)
        return lambda x: rx.fullmatch(x) is not None
    return _string_query("wildcard", body, cx, build)


def q_exists(body, cx):
    p = obj_params("exists", body, {"field", "boost", "_name"})
    b, name = common("exists", p)
    f = p.get("field")
    if not isinstance(f, str):
        raise parsing("[exists] must be provided with a [field]")
    if "*" in f:
        return named(lambda d, n: b if any(simple_match(f, x) for x in d.present) else None, name)
    fd = cx.ix.fields.get(f)
    if fd is None:
        return never
    if is_object(fd):
        pre = f + "."
        return named(lambda d, n: b if any(x.startswith(pre) for x in d.present) else None, name)
    cx.field(f)
    return named(lambda d, n: b if f in d.present else None, name)


MATCH_PARAMS = {"query", "operator", "analyzer", "minimum_should_match", "zero_terms_query", "lenient",
                "boost", "_name", "auto_generate_synonyms_phrase_query"}


def q_match(body, cx):
    f, p = field_params("match", body, "query", MATCH_PARAMS | {"fuzziness", "prefix_length", "max_expansions"})
    for k in ("fuzziness", "prefix_length", "max_expansions"):
        if k in p:
            raise not_implemented(f"[match] parameter [{k}]")
    b, name = common("match", p)
    return named(cx.match_fn(f, p, False, b, "match"), name)


def q_match_phrase(body, cx):
    f, p = field_params("match_phrase", body, "query", {"query", "analyzer", "slop", "zero_terms_query",
                                                         "boost", "_name"})
    b, name = common("match_phrase", p)
    return named(cx.match_fn(f, p, True, b, "match_phrase"), name)


def q_multi_match(body, cx):
    p = obj_params("multi_match", body, {"query", "fields", "type", "operator", "analyzer", "slop", "tie_breaker",
                                         "minimum_should_match", "zero_terms_query", "lenient", "boost", "_name"})
    b, name = common("multi_match", p)
    scalar("multi_match", p.get("query"), "query")
    typ = p.get("type", "best_fields")
    if typ in ("cross_fields", "phrase_prefix", "bool_prefix"):
        raise not_implemented(f"[multi_match] type [{typ}]")
    if typ not in ("best_fields", "most_fields", "phrase"):
        raise parsing(f"failed to parse [multi_match] query type [{typ}]. unknown type.")
    if "fields" not in p:
        raise not_implemented("[multi_match] without [fields] (index.query.default_field)")
    tie = p.get("tie_breaker", 0.0)
    sub_p = {k: v for k, v in p.items() if k not in ("fields", "type", "tie_breaker", "boost", "_name")}
    subs = []
    for spec in as_list(p["fields"]):
        if not isinstance(spec, str):
            raise parsing("[multi_match] fields must be strings")
        fname, _, fb = spec.partition("^")
        try:
            fboost = float(fb) if fb else 1.0
        except ValueError:
            raise parsing(f"[multi_match] invalid boost in field [{spec}]")
        # As in Elasticsearch, a field pattern only expands to fields that hold text (text and keyword).
        names = [x for x, fd in cx.ix.fields.items() if simple_match(fname, x) and
                 fd.get("type") in ("text", "keyword")] if "*" in fname else [fname]
        for fn_ in names:
            subs.append(cx.match_fn(fn_, sub_p, typ == "phrase", fboost, "multi_match"))

    def fn(d, n):
        scores = [s for s in (q(d, n) for q in subs) if s is not None]
        if not scores:
            return None
        if typ == "most_fields":
            return b * sum(scores)
        best = max(scores)
        return b * (best + tie * (sum(scores) - best))
    return named(fn, name)


def _clauses(qtype, p, key, cx):
    v = p.get(key)
    if v is None:
        return []
    for c in as_list(v):
        if not isinstance(c, dict):
            raise parsing(f"[{qtype}] query malformed: [{key}] must hold query objects, got {token_name(c)}")
    return [compile_query(c, cx) for c in as_list(v)]


def q_bool(body, cx):
    p = obj_params("bool", body, {"must", "filter", "should", "must_not", "minimum_should_match", "boost",
                                  "_name", "adjust_pure_negative"})
    b, name = common("bool", p)
    must, filt = _clauses("bool", p, "must", cx), _clauses("bool", p, "filter", cx)
    should, must_not = _clauses("bool", p, "should", cx), _clauses("bool", p, "must_not", cx)
    if "minimum_should_match" in p:
        need = msm_count(p["minimum_should_match"], len(should))
    else:
        need = 0 if (must or filt) else (1 if should else 0)
    if not (must or filt or should or must_not):
        return named(lambda d, n: b, name)

    def fn(d, n):
        ok, score, hits = True, 0.0, 0
        for q in must:
            s = q(d, n)
            if s is None:
                ok = False
            else:
                score += s
        for q in filt:
            if q(d, n) is None:
                ok = False
        for q in must_not:
            if q(d, n) is not None:
                ok = False
        for q in should:
            s = q(d, n)
            if s is not None:
                hits += 1
                score += s
        return score * b if ok and hits >= need else None
    return named(fn, name)


def q_constant_score(body, cx):
    p = obj_params("constant_score", body, {"filter", "boost", "_name"})
    b, name = common("constant_score", p)
    if "filter" not in p:
        raise parsing("[constant_score] requires a 'filter' element")
    inner = compile_query(p["filter"], cx)
    return named(lambda d, n: b if inner(d, n) is not None else None, name)


def q_dis_max(body, cx):
    p = obj_params("dis_max", body, {"queries", "tie_breaker", "boost", "_name"})
    b, name = common("dis_max", p)
    qs = _clauses("dis_max", p, "queries", cx)
    tie = p.get("tie_breaker", 0.0)

    def fn(d, n):
        scores = [s for s in (q(d, n) for q in qs) if s is not None]
        if not scores:
            return None
        return b * (max(scores) + tie * (sum(scores) - max(scores)))
    return named(fn, name)


QUERIES = {"match_all": q_match_all, "match_none": q_match_none, "term": q_term, "terms": q_terms,
           "ids": q_ids, "range": q_range, "prefix": q_prefix, "wildcard": q_wildcard, "exists": q_exists,
           "match": q_match, "match_phrase": q_match_phrase, "multi_match": q_multi_match, "bool": q_bool,
           "constant_score": q_constant_score, "dis_max": q_dis_max}
KNOWN_QUERIES = {"nested", "query_string", "simple_query_string", "fuzzy", "regexp", "function_score",
                 "script_score", "boosting", "terms_set", "more_like_this", "has_child", "has_parent",
                 "combined_fields", "intervals", "match_bool_prefix", "match_phrase_prefix", "span_term",
                 "span_near", "distance_feature", "pinned", "script", "wrapper", "knn", "percolate",
                 "rank_feature", "geo_distance", "geo_bounding_box", "geo_shape", "shape", "parent_id"}


def compile_query(q, cx):
    if not isinstance(q, dict):
        raise parsing(f"[_na] query malformed, must start with start_object, got {token_name(q)}")
    if not q:
        raise parsing("query malformed, empty clause found")
    if len(q) != 1:
        raise parsing(f"[{next(iter(q))}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    (qtype, body), = q.items()
    fn = QUERIES.get(qtype)
    if fn is None:
        if qtype in KNOWN_QUERIES:
            raise EsError(400, "parsing_exception", f"[mock] query [{qtype}] is valid in Elasticsearch but "
                          "not implemented by this mock server")
        raise parsing(f"unknown query [{qtype}]")
    return fn(body, cx)


# ----------------------------------------------------------------------------- search

SEARCH_KEYS = {"query", "size", "from", "sort", "search_after", "_source", "track_total_hits", "version",
               "terminate_after", "track_scores", "seq_no_primary_term", "timeout", "min_score",
               "post_filter", "stored_fields", "profile", "explain"}
SEARCH_NOT_IMPLEMENTED = {"aggs", "aggregations", "highlight", "collapse", "pit", "fields", "docvalue_fields",
                          "script_fields", "rescore", "suggest", "slice", "indices_boost", "runtime_mappings",
                          "knn", "ext", "stats", "rank", "sub_searches", "retriever"}
TEXT_SORT = ("Text fields are not optimised for operations that require per-document field data like "
             "aggregations and sorting, so these operations are disabled by default. Please use a keyword "
             "field instead. Alternatively, set fielddata=true on [{}] in order to load field data by "
             "uninverting the inverted index. Note that this can use significant memory.")


class SortClause:
    def __init__(self, field, desc, kind, mode=None, missing="_last", ftype=None):
        self.field, self.desc, self.kind = field, desc, kind
        self.mode, self.missing, self.ftype = mode, missing, ftype

    def key(self, d, score):
        if self.kind == "score":
            return score
        if self.kind == "doc":
            return d.num
        vals = d.vals.get(self.field, ())
        if self.kind == "keyword":
            if vals:
                return (min if self.mode == "min" else max)(vals, key=bkey)
            return None if self.missing in ("_last", "_first") else as_text(self.missing)
        nums = [int(v) if isinstance(v, bool) else v for v in vals]
        if nums:
            if self.mode in ("min", "max"):
                return (min if self.mode == "min" else max)(nums)
            if self.mode == "sum":
                return sum(nums)
            if self.mode == "avg":
                avg = sum(nums) / len(nums)
                return int(avg) if self.ftype in INT_RANGES else avg
            nums.sort()
            mid = len(nums) // 2
            return nums[mid] if len(nums) % 2 else (nums[mid - 1] + nums[mid]) / 2
        if self.missing not in ("_last", "_first"):
            return self.after(self.missing)
        high = (self.missing == "_last") != self.desc
        if self.ftype in FLOAT_TYPES:
            return math.inf if high else -math.inf
        return LONG_MAX if high else LONG_MIN

    def after(self, v):
        """A search_after (or missing) value in this clause's comparable form."""
        if self.kind == "keyword":
            if v is None:
                return None
            if isinstance(v, (dict, list)):
                raise illegal(f"Failed to parse search_after value for field [{self.field}].")
            return as_text(v)
        if v in ("Infinity", "-Infinity"):
            return math.inf if v[0] == "I" else -math.inf
        try:
            if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
                raise ValueError
            if isinstance(v, str):
                v = int(v) if re.fullmatch(r"[+-]?\d+", v) else float(v)
        except ValueError:
            raise illegal(f"Failed to parse search_after value for field [{self.field}].")
        return int(v) if self.kind == "doc" else v

    def out(self, v):
        if isinstance(v, float) and math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if self.kind == "score" or (self.kind == "num" and self.ftype in FLOAT_TYPES and v is not None):
            return float(v)
        return v


def cmp_keys(clauses, a, b):
    for cl, x, y in zip(clauses, a, b):
        if cl.kind == "keyword":
            if x is None or y is None:
                if x is None and y is None:
                    continue
                r = 1 if x is None else -1
                return -r if cl.missing == "_first" else r
            x, y = bkey(x), bkey(y)
        c = (x > y) - (x < y)
        if c:
            return -c if cl.desc else c
    return 0


def parse_sort(spec, targets):
    out = []
    for it in as_list(spec):
        if isinstance(it, str):
            field, opts = it, {}
        elif isinstance(it, dict) and len(it) == 1:
            (field, o), = it.items()
            opts = {"order": o} if isinstance(o, str) else o
            if not isinstance(opts, dict):
                raise parsing(f"[sort] malformed options for field [{field}]: {token_name(o)}")
        else:
            raise parsing("[sort] entries must be a field name or an object with a single field")
        for k in opts:
            if k not in ("order", "mode", "missing", "unmapped_type"):
                raise parsing(f"[field_sort] unknown field [{k}]")
        order = opts.get("order")
        if order not in (None, "asc", "desc"):
            raise illegal(f"Unknown SortOrder [{order}]")
        if field in ("_score", "_doc", "_shard_doc"):
            if set(opts) - {"order"}:
                raise parsing(f"[{field}] sort supports only [order]")
            kind = "score" if field == "_score" else "doc"
            out.append(SortClause(field, (order or ("desc" if kind == "score" else "asc")) == "desc", kind))
            continue
        types = set()
        for ix in targets:
            fd = ix.fields.get(field)
            if fd is None:
                ut = opts.get("unmapped_type")
                if ut is None:
                    raise shard_error(ix, f"No mapping found for [{field}] in order to sort on")
                if ut not in FIELD_PARAMS or ut in ("object", "nested"):
                    raise illegal(f"No mapper found for type [{ut}]")
                types.add(ut)
                continue
            t = fd.get("type", "object")
            if t == "text":
                raise illegal(TEXT_SORT.format(field))
            if t in ("object", "nested"):
                raise illegal(f"[mock] cannot sort on object field [{field}]")
            if fd.get("doc_values", True) in (False, "false"):
                raise illegal(f"Can't load fielddata on [{field}] because fielddata is unsupported on fields of "
                              f"type [{t}]. Use doc values instead.")
            types.add(t)
        if not types:
            types = {"keyword"}
        if len(types) > 1 and not all(t in NUMERIC or t in ("date", "boolean") for t in types):
            raise illegal(f"[mock] field [{field}] has conflicting types {sorted(types)} across the searched indices")
        t = sorted(types)[0] if len(types) == 1 else "double"
        kind = "keyword" if t == "keyword" else "num"
        mode = opts.get("mode") or ("max" if order == "desc" else "min")
        if mode not in (("min", "max") if kind == "keyword" else ("min", "max", "sum", "avg", "median")):
            raise illegal(f"Unknown sort mode [{mode}] for field [{field}]")
        missing = opts.get("missing", "_last")
        if isinstance(missing, (dict, list)) or missing is None:
            raise parsing(f"[sort] invalid [missing] for field [{field}]")
        out.append(SortClause(field, order == "desc", kind, mode, missing, t))
    return out


def int_param(body, params, name, default):
    v = params[name] if name in params else (body or {}).get(name, default)  # URL parameters win
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise parsing(f"[{name}] must be an integer, got [{v}]")
    return v


def bool_value(v, name):
    if v in (True, "true", ""):
        return True
    if v in (False, "false"):
        return False
    raise illegal(f"Failed to parse value [{v}] as only [true] or [false] are allowed. (parameter [{name}])")


def source_from_params(params):
    spec = params.get("_source")
    if spec is not None:
        spec = {"true": True, "false": False}.get(spec, spec.split(",") if isinstance(spec, str) else spec)
    incs = params.get("_source_includes")
    excs = params.get("_source_excludes")
    if incs is None and excs is None:
        return source_spec(spec)
    base = source_spec(spec) or ([], [])
    return (incs.split(",") if incs else base[0]), (excs.split(",") if excs else base[1])


def run_search(targets, body, params):
    body = body or {}
    for k, v in body.items():
        if k in SEARCH_NOT_IMPLEMENTED:
            raise not_implemented(f"search body key [{k}]")
        if k not in SEARCH_KEYS:
            raise parsing(f"Unknown key for a {token_name(v)} in [{k}].")
    for k in ("explain", "profile"):
        if k in body and bool_value(body[k], k):
            raise not_implemented(f"search [{k}]")
    if "stored_fields" in body:
        raise not_implemented("search [stored_fields]")
    size, frm = int_param(body, params, "size", 10), int_param(body, params, "from", 0)
    if size < 0:
        raise illegal(f"[size] parameter cannot be negative, found [{size}]")
    if frm < 0:
        raise illegal(f"[from] parameter cannot be negative, found [{frm}]")
    window = min([int(ix.setting("max_result_window", "10000")) for ix in targets] or [10000])
    if frm + size > window:
        raise illegal(f"Result window is too large, from + size must be less than or equal to: [{window}] but was "
                      f"[{frm + size}]. See the scroll api for a more efficient way to request large data sets. This "
                      "limit can be set by changing the [index.max_result_window] index level setting.")
    terminate = int_param(body, params, "terminate_after", 0)
    if terminate < 0:
        raise illegal("terminateAfter must be > 0")
    tth = params["track_total_hits"] if "track_total_hits" in params else body.get("track_total_hits", 10000)
    if isinstance(tth, str):
        tth = int(tth) if re.fullmatch(r"-?\d+", tth) else bool_value(tth, "track_total_hits")
    if not isinstance(tth, (bool, int)) or (not isinstance(tth, bool) and tth < -1):
        raise illegal("[track_total_hits] parameter must be positive or equals to -1, got " + str(tth))
    as_int = bool_value(params.get("rest_total_hits_as_int", "false"), "rest_total_hits_as_int")
    if as_int:
        tth = True
    tth = LONG_MAX if tth is True else -1 if tth is False else tth
    flags = {}
    for k in ("version", "seq_no_primary_term", "track_scores"):
        flags[k] = bool_value(params[k] if k in params else body.get(k, False), k)
    min_score = body.get("min_score")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))):
        raise parsing("[min_score] must be a number")
    url_src = any(k in params for k in ("_source", "_source_includes", "_source_excludes"))
    src = source_spec(body["_source"]) if "_source" in body and not url_src else source_from_params(params)
    clauses = parse_sort(body["sort"], targets) if "sort" in body else None
    after = body.get("search_after")
    if after is not None:
        if not isinstance(after, list):
            raise parsing("[search_after] must be an array")
        if not clauses:
            raise illegal("[search_after] requires a sort")
        if len(after) != len(clauses):
            raise illegal(f"search_after has {len(after)} value(s) but sort has {len(clauses)}.")
        if frm:
            raise illegal("[from] parameter must be set to 0 when [search_after] is used")
        after = tuple(cl.after(v) for cl, v in zip(clauses, after))

    rows, terminated = [], False
    for ix in targets:
        cx = Ctx(ix)
        root = compile_query(body["query"], cx) if "query" in body else (lambda d, n: 1.0)
        post = compile_query(body["post_filter"], cx) if "post_filter" in body else None
        count = 0
        for d in cx.snap.docs.values():
            names = set()
            s = root(d, names)
            if s is None or (min_score is not None and s < min_score):
                continue
            if post is not None and post(d, names) is None:
                continue
            rows.append([None, s, ix, d, names])
            count += 1
            if terminate and count >= terminate:
                terminated = True
                break
    total = len(rows)
    if clauses:
        for r in rows:
            r[0] = tuple(cl.key(r[3], r[1]) for cl in clauses)
        rows.sort(key=functools.cmp_to_key(lambda a, b: cmp_keys(clauses, a[0], b[0]) or
                                           ((a[2].order, a[3].num) > (b[2].order, b[3].num)) -
                                           ((a[2].order, a[3].num) < (b[2].order, b[3].num))))
        if after is not None:
            rows = [r for r in rows if cmp_keys(clauses, r[0], after) > 0]
    else:
        rows.sort(key=lambda r: (-r[1], r[2].order, r[3].num))
    scored = not clauses or flags["track_scores"] or any(cl.kind == "score" for cl in clauses)
    hits = []
    for key, s, ix, d, names in rows[frm:frm + size]:
        h = {"_index": ix.name, "_id": d.id}
        if flags["version"]:
            h["_version"] = d.version
        if flags["seq_no_primary_term"]:
            h["_seq_no"], h["_primary_term"] = d.seq_no, 1
        h["_score"] = float(f"{s:.7g}") if scored else None
        if src is not None and d.source is not None:
            h["_source"] = filter_source(d.source, *src) if (src[0] or src[1]) else d.source
        if clauses:
            h["sort"] = [cl.out(v) for cl, v in zip(clauses, key)]
        if names:
            h["matched_queries"] = sorted(names)
        hits.append(h)
    out = {}
    if tth >= 0:
        out["total"] = {"value": min(total, tth), "relation": "eq" if total <= tth else "gte"}
        if as_int:
            out["total"] = total
    out["max_score"] = float(f"{max(r[1] for r in rows):.7g}") if scored and rows else None
    out["hits"] = hits
    resp = {"took": 1, "timed_out": False}
    if terminate:
        resp["terminated_early"] = terminated
    resp["_shards"] = {"total": len(targets), "successful": len(targets), "skipped": 0, "failed": 0}
    resp["hits"] = out
    return resp


def count_matches(ix, query, terminate=0):
    cx = Ctx(ix)
    root = compile_query(query, cx) if query is not None else (lambda d, n: 1.0)
    out = []
    for d in cx.snap.docs.values():
        if root(d, set()) is not None:
            out.append(d)
            if terminate and len(out) >= terminate:
                break
    return out


# ----------------------------------------------------------------------------- the cluster

INDEX_BAD_CHARS = '\\/*?"<>| ,#'
JSON_TYPES = ("application/json", "application/vnd.elasticsearch+json")
NDJSON_TYPES = ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson")
VERSION_TYPES = ("internal", "external", "external_gte")
BULK_META = {"_index", "_id", "routing", "version", "version_type", "if_seq_no", "if_primary_term",
             "retry_on_conflict", "require_alias"}
BULK_META_NOT_IMPLEMENTED = {"pipeline", "dynamic_templates", "require_data_stream", "list_executed_pipelines"}
UPDATE_KEYS = {"doc", "upsert", "doc_as_upsert", "detect_noop", "script", "scripted_upsert", "_source"}
P_WRITE = {"version", "version_type", "refresh", "if_seq_no", "if_primary_term", "routing", "timeout",
           "wait_for_active_shards", "require_alias"}
P_MULTI = {"ignore_unavailable", "allow_no_indices", "expand_wildcards"}
P_SEARCH = P_MULTI | {"size", "from", "track_total_hits", "rest_total_hits_as_int", "timeout", "preference",
                      "routing", "allow_partial_search_results", "request_cache", "search_type",
                      "batched_reduce_size", "ccs_minimize_roundtrips", "max_concurrent_shard_requests",
                      "pre_filter_shard_size", "seq_no_primary_term", "version", "_source", "_source_includes",
                      "_source_excludes", "terminate_after", "track_scores"}
P_ADMIN = {"timeout", "master_timeout"}
P_GET_INDEX = P_MULTI | {"master_timeout", "local", "flat_settings", "include_defaults"}


class Req:
    def __init__(self, method, path, parts, params, headers, body):
        self.method, self.path, self.parts = method, path, parts
        self.params, self.headers, self.body = params, headers, body
        self.kind, self.ndjson_lines = "other", None


class State:
    def __init__(self, user=None, password=None, api_key=None, fail_plan=None, log=None, quiet=False):
        self.user, self.password, self.api_key = user, password, api_key
        self.fail_plan, self.log, self.quiet = fail_plan, log, quiet
        self.lock = threading.RLock()
        self.indices, self.aliases = {}, {}
        self.order = self.requests = self.auth_failures = 0
        self.violations = []
        self.stop = threading.Event()
        self.routes = [(set(m.split()), tuple(p.split("/")) if p else (), fn, kind, allowed)
                       for m, p, fn, kind, allowed in self.route_table()]
        threading.Thread(target=self.refresher, daemon=True).start()

    def route_table(self):
        return [
            ("GET HEAD", "", self.h_root, "info", set()),
            ("GET", "_mock/stats", self.h_mock_stats, "mock", set()),
            ("GET", "_mock/indices", self.h_mock_indices, "mock", set()),
            ("POST", "_mock/reset", self.h_mock_reset, "mock", set()),
            ("GET", "_cluster/health", self.h_health, "health", P_MULTI | P_ADMIN | {
                "wait_for_status", "level", "local", "wait_for_active_shards", "wait_for_nodes",
                "wait_for_events", "wait_for_no_relocating_shards", "wait_for_no_initializing_shards"}),
            ("GET", "_cluster/health/{index}", self.h_health, "health", P_MULTI | P_ADMIN | {
                "wait_for_status", "level", "local", "wait_for_active_shards", "wait_for_nodes",
                "wait_for_events", "wait_for_no_relocating_shards", "wait_for_no_initializing_shards"}),
            ("POST PUT", "_bulk", self.h_bulk, "bulk", {"refresh", "routing", "timeout", "wait_for_active_shards",
                                                        "require_alias"}),
            ("POST PUT", "{index}/_bulk", self.h_bulk, "bulk", {"refresh", "routing", "timeout",
                                                                "wait_for_active_shards", "require_alias"}),
            ("POST GET", "_refresh", self.h_refresh, "refresh", P_MULTI),
            ("POST GET", "{index}/_refresh", self.h_refresh, "refresh", P_MULTI),
            ("POST GET", "_search", self.h_search, "search", P_SEARCH),
            ("POST GET", "{index}/_search", self.h_search, "search", P_SEARCH),
            ("POST GET", "_count", self.h_count, "count", P_MULTI | {"preference", "routing", "terminate_after",
                                                                     "min_score"}),
            ("POST GET", "{index}/_count", self.h_count, "count", P_MULTI | {"preference", "routing",
                                                                             "terminate_after", "min_score"}),
            ("POST", "{index}/_delete_by_query", self.h_delete_by_query, "delete_by_query", P_MULTI | {
                "refresh", "conflicts", "wait_for_completion", "slices", "scroll_size", "timeout", "max_docs",
                "routing", "requests_per_second", "wait_for_active_shards"}),
            ("POST", "_aliases", self.h_aliases, "aliases", P_ADMIN),
            ("GET HEAD", "_alias", self.h_get_alias, "get", P_MULTI | {"local", "master_timeout"}),
            ("GET HEAD", "_alias/{name}", self.h_get_alias, "get", P_MULTI | {"local", "master_timeout"}),
            ("GET HEAD", "{index}/_alias", self.h_get_alias, "get", P_MULTI | {"local", "master_timeout"}),
            ("GET HEAD", "{index}/_alias/{name}", self.h_get_alias, "get", P_MULTI | {"local", "master_timeout"}),
            ("PUT POST DELETE", "{index}/_alias/{name}", self.h_put_alias, "aliases", P_ADMIN),
            ("GET", "{index}/_mapping", self.h_get_mapping, "get", P_GET_INDEX),
            ("GET", "{index}/_settings", self.h_get_settings, "get", P_GET_INDEX),
            ("POST", "{index}/_doc", self.h_index_doc, "doc", P_WRITE | {"op_type"}),
            ("PUT POST", "{index}/_doc/{id}", self.h_index_doc, "doc", P_WRITE | {"op_type"}),
            ("GET HEAD", "{index}/_doc/{id}", self.h_get_doc, "get", {
                "realtime", "refresh", "routing", "preference", "_source", "_source_includes",
                "_source_excludes", "version", "version_type"}),
            ("DELETE", "{index}/_doc/{id}", self.h_delete_doc, "doc", P_WRITE - {"require_alias"}),
            ("PUT POST", "{index}/_create/{id}", self.h_create_doc, "doc", P_WRITE),
            ("POST", "{index}/_update/{id}", self.h_update_doc, "doc", {
                "refresh", "if_seq_no", "if_primary_term", "routing", "timeout", "wait_for_active_shards",
                "retry_on_conflict", "require_alias"}),
            ("PUT", "{index}", self.h_create_index, "index", P_ADMIN | {"wait_for_active_shards"}),
            ("GET HEAD", "{index}", self.h_get_index, "get", P_GET_INDEX),
            ("DELETE", "{index}", self.h_delete_index, "index", P_ADMIN | P_MULTI),
        ]

    # ---- plumbing

    def handle(self, method, raw_path, headers, body):
        """-> (status, bytes, extra headers), or None to drop the connection."""
        url = urllib.parse.urlsplit(raw_path)
        segs = url.path.split("/")[1:]
        while segs and segs[-1] == "":
            segs.pop()
        try:
            parts = [urllib.parse.unquote(s, errors="strict") for s in segs]
        except UnicodeDecodeError:
            parts = None
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        req = Req(method, "/" + "/".join(parts if parts is not None else segs), parts or [], params, headers, body)
        mock = req.parts[:1] == ["_mock"]
        with self.lock:
            if not mock:
                self.requests += 1
                if self.plan_take("close_connection"):
                    self.log_request(req, 0)
                    return None
            extra = []
            try:
                if parts is None:
                    raise illegal("the request path is not valid percent-encoded UTF-8")
                if not mock:
                    self.check_auth(req)
                status, obj = self.dispatch(req)
            except EsError as e:
                status, obj = e.status, e.body()
                if e.violation:
                    self.violation(req, e)
                if status == 401:
                    extra = [("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'),
                             ("WWW-Authenticate", "ApiKey")]
            except Exception:
                tb = traceback.format_exc()
                self.violations.append(f"MOCK BUG on {method} {req.path}: {tb.strip().splitlines()[-1]}")
                print(tb, file=sys.stderr, flush=True)
                status = 500
                obj = {"error": {"type": "mock_internal_error", "reason": tb.strip().splitlines()[-1]}, "status": 500}
            if "filter_path" in params and isinstance(obj, dict):
                obj = filter_path(obj, params["filter_path"])
            pretty = params.get("pretty", "false") != "false"
            data = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=2 if pretty else None)
            if not mock:
                self.log_request(req, status)
        return status, (data + ("\n" if pretty else "")).encode("utf-8", "surrogatepass"), extra

    def dispatch(self, req):
        cands = []
        for methods, pat, fn, kind, allowed in self.routes:
            if len(pat) != len(req.parts):
                continue
            args = {}
            for p, s in zip(pat, req.parts):
                if p.startswith("{"):
                    if p == "{index}" and (not s or s.startswith("_")) and s != "_all":
                        break
                    args[p[1:-1]] = s
                elif p != s:
                    break
            else:
                cands.append((methods, fn, kind, allowed, args))
        if not cands:
            raise EsError(400, None, f"no handler found for uri [{req.path}] and method [{req.method}]", simple=True)
        for methods, fn, kind, allowed, args in cands:
            if req.method in methods:
                req.kind = kind
                self.check_params(req, allowed)
                if kind != "mock":
                    self.apply_fail_plan(req)
                return fn(req, **args)
        allowed = sorted({m for c in cands for m in c[0]})
        raise EsError(405, None, f"Incorrect HTTP method for uri [{req.path}] and method [{req.method}], "
                      f"allowed: [{', '.join(allowed)}]", simple=True)

    def violation(self, req, e, where=""):
        msg = f"{req.method} {req.path}{' ' + where if where else ''}: {e.status} {e.etype or 'error'}: {e.reason}"
        self.violations.append(msg)
        if not self.quiet:
            print("mock_es: VIOLATION: " + msg, file=sys.stderr, flush=True)

    def log_request(self, req, status):
        if not self.log:
            return
        entry = {"method": req.method, "path": req.path, "query": req.params, "status": status,
                 "bytes": len(req.body)}
        if req.ndjson_lines is not None:
            entry["ndjson_lines"] = req.ndjson_lines
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def check_auth(self, req):
        if self.user is None and self.api_key is None:
            return
        h = req.headers.get("Authorization")
        if not h:
            reason = f"missing authentication credentials for REST request [{req.path}]"
        else:
            scheme, _, cred = h.partition(" ")
            if scheme.lower() == "basic" and self.user is not None:
                try:
                    u, _, p = base64.b64decode(cred, validate=True).decode().partition(":")
                except ValueError:
                    u = p = None
                if u == self.user and p == self.password:
                    return
                reason = f"unable to authenticate user [{u}] for REST request [{req.path}]"
            elif scheme.lower() == "apikey" and self.api_key is not None and cred == self.api_key:
                return
            else:
                reason = f"unable to authenticate with provided credentials for REST request [{req.path}]"
        self.auth_failures += 1
        if not self.quiet:
            print(f"mock_es: auth failure: {reason}", file=sys.stderr, flush=True)
        raise EsError(401, "security_exception", reason, False,
                      header={"WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]})

    def check_params(self, req, allowed):
        bad = sorted(k for k in req.params if k not in allowed and k not in UNIVERSAL_PARAMS)
        if bad:
            ni = [k for k in bad if k in NOT_IMPLEMENTED_PARAMS]
            if ni:
                raise not_implemented(f"parameter [{ni[0]}] of [{req.method} {req.path}]")
            raise illegal(f"request [{req.path}] contains unrecognized parameter{'s' if len(bad) > 1 else ''}: "
                          + ", ".join(f"[{k}]" for k in bad))
        if req.params.get("format", "json") != "json":
            raise not_implemented(f"format [{req.params['format']}]")

    def check_ctype(self, req, kinds):
        ct = req.headers.get("Content-Type")
        if hasattr(req.headers, "get_all") and len(req.headers.get_all("Content-Type") or []) > 1:
            ct = ", ".join(req.headers.get_all("Content-Type"))
        if ct is None:
            raise EsError(406, None, "Content-Type header is missing", simple=True)
        mt, *rest = [x.strip().lower() for x in ct.split(";")]
        opts = dict(x.partition("=")[::2] for x in rest if x)
        ok = mt in kinds and opts.get("charset", "utf-8") in ("utf-8", "utf8")
        if mt.startswith("application/vnd.elasticsearch+") and opts.get("compatible-with") != "8":
            ok = False
        if not ok:
            raise EsError(406, None, f"Content-Type header [{ct}] is not supported", simple=True)

    def json_body(self, req, required=False):
        if not req.body:
            if required:
                raise EsError(400, "parse_exception", "request body is required")
            return None
        self.check_ctype(req, JSON_TYPES)
        obj = parse_json(req.body)
        if not isinstance(obj, dict):
            raise EsError(400, "parse_exception", f"request body must be a JSON object, got {token_name(obj)}")
        return obj

    def no_body(self, req):
        if req.body:
            raise illegal(f"request [{req.method} {req.path}] does not support having a body")

    # ---- fail plan

    def read_plan(self):
        if not self.fail_plan or not os.path.exists(self.fail_plan):
            return None
        try:
            with open(self.fail_plan, encoding="utf-8") as f:
                plan = json.load(f)
        except (OSError, ValueError) as e:
            print(f"mock_es: unreadable fail plan {self.fail_plan}: {e}", file=sys.stderr, flush=True)
            return None
        return plan if isinstance(plan, dict) else None

    def plan_take(self, key, n=1):
        plan = self.read_plan()
        have = plan.get(key, 0) if plan else 0
        if isinstance(have, bool) or not isinstance(have, int) or have <= 0:
            return 0
        take = min(have, n)
        plan[key] = have - take
        tmp = self.fail_plan + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(plan, f)
        os.replace(tmp, self.fail_plan)
        return take

    def apply_fail_plan(self, req):
        for key in list(self.read_plan() or {}):
            m = re.fullmatch(r"([a-z_]+?)_(\d{3})", key)
            if not m or key.startswith("bulk_item_") or m.group(1) not in (req.kind, "any"):
                continue
            if self.plan_take(key):
                status = int(m.group(2))
                if status == 429:
                    raise EsError(429, "es_rejected_execution_exception",
                                  "rejected execution of coordinating operation [mock fail-plan]", False)
                if status == 503 and req.kind in ("search", "count"):
                    raise EsError(503, "search_phase_execution_exception", "all shards failed", False,
                                  phase="query", grouped=True, failed_shards=[])
                if status == 503:
                    raise EsError(503, "unavailable_shards_exception",
                                  "[mock][0] primary shard is not active Timeout: [1m] (mock fail-plan)", False)
                raise EsError(status, "exception", f"mock fail-plan status {status}", False)

    # ---- background refresh

    def refresher(self):
        while not self.stop.wait(0.1):
            with self.lock:
                now = time.monotonic()
                for ix in self.indices.values():
                    iv = ix.refresh_seconds()
                    if iv is not None and ix.dirty and now - ix.last_refresh >= iv:
                        ix.refresh()

    # ---- names and resolution

    def check_name(self, name, kind="index"):
        etype = "invalid_index_name_exception" if kind == "index" else "invalid_alias_name_exception"

        def bad(msg):
            return EsError(400, etype, f"Invalid {kind} name [{name}], {msg}", index_uuid="_na_", index=name)
        if not name:
            raise bad("must not be empty")
        if any(c in name for c in INDEX_BAD_CHARS):
            raise bad("must not contain the following characters [' ', '\"', '#', '*', ',', '/', '<', '>', '?', "
                      "'\\\\', '|']")
        if ":" in name:
            raise bad("must not contain ':'")
        if name != name.lower():
            raise bad("must be lowercase")
        if name[0] in "_-+":
            raise bad("must not start with '_', '-', or '+'")
        if name in (".", ".."):
            raise bad("must not be '.' or '..'")
        if len(bkey(name)) > 255:
            raise bad(f"index name is too long, ({len(bkey(name))} > 255)")

    def resolve(self, expr, params):
        """Comma-separated names, aliases and wildcards -> [Index] in creation order."""
        ignore = bool_value(params.get("ignore_unavailable", "false"), "ignore_unavailable")
        names = []
        for part in expr.split(","):
            if part in ("_all", "*") or "*" in part:
                pat = "*" if part == "_all" else part
                names += [n for n in self.indices if simple_match(pat, n)]
                for a, m in self.aliases.items():
                    if simple_match(pat, a):
                        names += list(m)
            elif part in self.indices:
                names.append(part)
            elif part in self.aliases:
                names += list(self.aliases[part])
            elif not ignore:
                raise index_missing(part)
        found = {self.indices[n] for n in names}
        if not found and not bool_value(params.get("allow_no_indices", "true"), "allow_no_indices"):
            raise index_missing(expr)
        return sorted(found, key=lambda ix: ix.order)

    def resolve_single(self, name):
        if name in self.indices:
            return self.indices[name]
        if name in self.aliases:
            m = self.aliases[name]
            if len(m) == 1:
                return self.indices[next(iter(m))]
            raise illegal(f"alias [{name}] has more than one index associated with it [{', '.join(sorted(m))}], "
                          "can't execute a single index op")
        raise index_missing(name)

    def resolve_write(self, name, require_alias=False):
        if require_alias and name not in self.aliases:
            raise EsError(404, "index_not_found_exception", f"no such index [{name}] and [require_alias] request "
                          f"flag is [true] and [{name}] is not an alias", index=name)
        if name in self.indices:
            return self.indices[name]
        if name in self.aliases:
            m = self.aliases[name]
            writers = [i for i, o in m.items() if o.get("is_write_index") is True]
            if len(m) == 1 and next(iter(m.values())).get("is_write_index") is not False:
                return self.indices[next(iter(m))]
            if len(writers) == 1:
                return self.indices[writers[0]]
            raise illegal(f"no write index is defined for alias [{name}]. The write index may be explicitly disabled "
                          "using is_write_index=false or the alias points to multiple indices without one being "
                          "designated as a write index")
        e = index_missing(name, violation=True)
        e.reason += " (this mock behaves like action.auto_create_index=false)"
        raise e

    # ---- documents

    @staticmethod
    def long_param(p, name):
        v = p.get(name)
        if v is None:
            return None
        if not re.fullmatch(r"-?\d+", v) or not LONG_MIN <= int(v) <= LONG_MAX:
            raise illegal(f"Failed to parse long parameter [{name}] with value [{v}]")
        return int(v)

    @staticmethod
    def refresh_param(p, allow_wait=True):
        v = p.get("refresh", "false") or "true"
        if v not in ("true", "false") + (("wait_for",) if allow_wait else ()):
            raise illegal(f"Unknown value for refresh: [{v}].")
        return None if v == "false" else v

    @staticmethod
    def write_checks(op, doc_id, version, vt, if_seq, if_term):
        msgs = []
        if doc_id is not None:
            if doc_id == "":
                msgs.append("if _id is specified it must not be empty")
            elif len(bkey(doc_id)) > 512:
                msgs.append(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: {len(bkey(doc_id))}")
        elif op in ("delete", "update"):
            msgs.append("id is missing")
        if vt not in VERSION_TYPES:
            raise illegal(f"No version type match [{vt}]")
        if op == "update":
            if version is not None:
                msgs.append("internal versioning can not be used for optimistic concurrency control. "
                            "Please use `if_seq_no` and `if_primary_term` instead")
            if vt != "internal":
                msgs.append(f"version type [{vt.upper()}] is not supported by the update API")
        else:
            if op == "create" and vt != "internal":
                msgs.append("create operations only support internal versioning. use index instead")
            if vt == "internal" and version is not None:
                msgs.append("internal versioning can not be used for optimistic concurrency control. "
                            "Please use `if_seq_no` and `if_primary_term` instead")
            if vt != "internal" and (version is None or not 0 <= version <= LONG_MAX):
                msgs.append(f"illegal version value [{-3 if version is None else version}] for version type "
                            f"[{vt.upper()}]")
        if if_seq is not None or if_term is not None:
            if op == "create":
                msgs.append("create operations do not support compare and set. use index instead")
            if version is not None:
                msgs.append("compare and write operations can not use versioning")
            if if_seq is None:
                msgs.append(f"ifSeqNo is unassigned, but primary term is [{if_term}]")
            elif if_term is None:
                msgs.append("ifSeqNo is set, but primary term is [0]")
            elif if_seq < 0 or if_term <= 0:
                msgs.append("sequence number must be non negative and primary term positive")
        return msgs

    @staticmethod
    def check_update_body(body):
        for k in body:
            if k not in UPDATE_KEYS:
                raise parsing(f"[UpdateRequest] unknown field [{k}]")
        if "script" in body or "scripted_upsert" in body:
            raise not_implemented("update with script")
        if "_source" in body:
            raise not_implemented("update [_source]")
        for k in ("doc", "upsert"):
            if k in body and not isinstance(body[k], dict):
                raise parsing(f"[UpdateRequest] [{k}] must be an object")
        if "doc" not in body and "upsert" not in body:
            raise validation(["script or doc is missing"])

    @staticmethod
    def result(ix, doc_id, version, result, seq_no):
        return {"_index": ix.name, "_id": doc_id, "_version": version, "result": result, "_shards": ix.shards(),
                "_seq_no": seq_no, "_primary_term": 1}

    def apply_write(self, ix, op, doc_id, source, vt="internal", version=None, if_seq=None, if_term=None):
        """Apply one index/create/update/delete; -> (status, result).  Item failures raise EsError."""
        cur, tomb = ix.docs.get(doc_id), ix.tombs.get(doc_id)
        cur_v = cur.version if cur else (tomb[0] if tomb else None)
        if if_seq is not None:
            if cur is None:
                raise conflict(ix, doc_id, f"required seqNo [{if_seq}], primary term [{if_term}] but no document "
                                           "was found")
            if cur.seq_no != if_seq or if_term != 1:
                raise conflict(ix, doc_id, f"required seqNo [{if_seq}], primary term [{if_term}]. current document "
                                           f"has seqNo [{cur.seq_no}] and primary term [1]")
        if op == "update":
            if cur is None:
                if truthy(source.get("doc_as_upsert")) and "doc" in source:
                    new_src = source["doc"]
                elif "upsert" in source:
                    new_src = source["upsert"]
                else:
                    raise EsError(404, "document_missing_exception", f"[{doc_id}]: document missing", False,
                                  index_uuid=ix.uuid, shard="0", index=ix.name)
            else:
                new_src = deep_merge(copy.deepcopy(cur.source), source.get("doc", {}))
                if source.get("detect_noop", True) in (True, "true") and new_src == cur.source:
                    return 200, self.result(ix, doc_id, cur.version, "noop", cur.seq_no)
            source = new_src
        if vt == "internal":
            if op == "create" and cur is not None:
                raise conflict(ix, doc_id, f"document already exists (current version [{cur.version}])")
            new_v = (cur_v or 0) + 1
        else:
            if cur_v is not None and (version < cur_v or (vt == "external" and version == cur_v)):
                word = "higher or equal to" if vt == "external" else "higher than"
                raise conflict(ix, doc_id, f"current version [{cur_v}] is {word} the one provided [{version}]")
            new_v = version
        if op == "delete":
            ix.seq_no += 1
            ix.dirty = True
            ix.tombs[doc_id] = (new_v, ix.seq_no)
            if cur is None:
                return 404, self.result(ix, doc_id, new_v, "not_found", ix.seq_no)
            del ix.docs[doc_id]
            return 200, self.result(ix, doc_id, new_v, "deleted", ix.seq_no)
        parser = DocParser(ix)
        parser.parse(source)
        if parser.added:
            ix.mapping = parser.mapping
            ix.rebuild_fields()
        d = Doc()
        scfg = ix.mapping.get("_source", {})
        if scfg.get("enabled", True) in (False, "false"):
            d.source = None
        elif scfg.get("includes") or scfg.get("excludes"):
            d.source = filter_source(source, as_list(scfg.get("includes", [])), as_list(scfg.get("excludes", [])))
        else:
            d.source = source
        ix.seq_no += 1
        d.id, d.version, d.seq_no, d.num = doc_id, new_v, ix.seq_no, ix.next_num
        d.vals, d.toks, d.lens, d.present = parser.vals, parser.toks, parser.lens, parser.present
        ix.next_num += 1
        ix.docs.pop(doc_id, None)
        ix.docs[doc_id] = d
        ix.tombs.pop(doc_id, None)
        ix.dirty = True
        return (201, self.result(ix, doc_id, new_v, "created", d.seq_no)) if cur is None else \
            (200, self.result(ix, doc_id, new_v, "updated", d.seq_no))

    def single_write(self, req, index, op, doc_id, body):
        p = req.params
        version, vt = self.long_param(p, "version"), p.get("version_type", "internal")
        if_seq, if_term = self.long_param(p, "if_seq_no"), self.long_param(p, "if_primary_term")
        msgs = self.write_checks(op, doc_id, version, vt, if_seq, if_term)
        if op != "delete" and body is None:
            msgs.append("source is missing")
        if msgs:
            raise validation(msgs)
        refresh = self.refresh_param(p)
        ix = self.resolve_write(index, bool_value(p.get("require_alias", "false"), "require_alias"))
        status, res = self.apply_write(ix, op, doc_id, body, vt, version, if_seq, if_term)
        if refresh:
            ix.refresh()
            if refresh == "true":
                res["forced_refresh"] = True
        return status, res

    def h_index_doc(self, req, index, id=None):
        op = req.params.get("op_type", "index")
        if op not in ("index", "create"):
            raise illegal(f"opType must be 'create' or 'index', found: [{op}]")
        doc_id = id if id is not None else base64.urlsafe_b64encode(secrets.token_bytes(15)).decode()
        return self.single_write(req, index, op, doc_id, self.json_body(req))

    def h_create_doc(self, req, index, id):
        return self.single_write(req, index, "create", id, self.json_body(req))

    def h_update_doc(self, req, index, id):
        body = self.json_body(req, required=True)
        self.check_update_body(body)
        return self.single_write(req, index, "update", id, body)

    def h_delete_doc(self, req, index, id):
        self.no_body(req)
        return self.single_write(req, index, "delete", id, None)

    def h_get_doc(self, req, index, id):
        self.no_body(req)
        p = req.params
        ix = self.resolve_single(index)
        if bool_value(p.get("refresh", "false"), "refresh"):
            ix.refresh()
        d = (ix.docs if bool_value(p.get("realtime", "true"), "realtime") else ix.snap.docs).get(id)
        version = self.long_param(p, "version")
        if p.get("version_type", "internal") not in VERSION_TYPES:
            raise illegal(f"No version type match [{p['version_type']}]")
        if d is not None and version is not None and d.version != version:
            raise conflict(ix, id, f"current version [{d.version}] is different than the one provided [{version}]")
        if d is None:
            return 404, {"_index": ix.name, "_id": id, "found": False}
        r = {"_index": ix.name, "_id": id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1,
             "found": True}
        src = source_from_params(p)
        if src is not None and d.source is not None:
            r["_source"] = filter_source(d.source, *src) if (src[0] or src[1]) else d.source
        return 200, r

    # ---- bulk

    def h_bulk(self, req, index=None):
        p = req.params
        refresh = self.refresh_param(p)
        require_alias = bool_value(p.get("require_alias", "false"), "require_alias")
        if not req.body:
            raise EsError(400, "parse_exception", "request body is required")
        self.check_ctype(req, NDJSON_TYPES)
        try:
            text = req.body.decode("utf-8")
        except UnicodeDecodeError:
            raise illegal("the bulk body is not valid UTF-8")
        lines = text.split("\n")
        req.ndjson_lines = sum(1 for x in lines if x.strip())
        if not text.endswith("\n"):
            raise illegal("The bulk request must be terminated by a newline [\\n]")
        lines.pop()
        ops, msgs, i = [], [], 0
        while i < len(lines):
            line, lineno = lines[i].rstrip("\r"), i + 1
            i += 1
            if not line.strip():
                continue
            try:
                action = parse_json(line.encode(), f"line {lineno}")
            except EsError as e:
                raise illegal(f"Malformed action/metadata line [{lineno}]: {e.reason}")
            if not isinstance(action, dict) or len(action) != 1:
                raise illegal(f"Malformed action/metadata line [{lineno}], expected an object with a single action, "
                              f"found {token_name(action) if not isinstance(action, dict) else len(action)}")
            (op, meta), = action.items()
            if op not in ("index", "create", "update", "delete"):
                raise illegal(f"Malformed action/metadata line [{lineno}], expected field [create], [delete], "
                              f"[index] or [update] but found [{op}]")
            if not isinstance(meta, dict):
                raise illegal(f"Malformed action/metadata line [{lineno}], expected START_OBJECT but found "
                              f"[{token_name(meta)}]")
            for k, v in meta.items():
                if k in BULK_META_NOT_IMPLEMENTED:
                    raise not_implemented(f"bulk metadata [{k}] (line {lineno})")
                if k not in BULK_META:
                    raise illegal(f"Action/metadata line [{lineno}] contains an unknown parameter [{k}]")
                if isinstance(v, (dict, list)) or v is None:
                    raise illegal(f"Malformed action/metadata line [{lineno}], expected a simple value for field "
                                  f"[{k}] but found [{token_name(v)}]")
                if k in ("version", "if_seq_no", "if_primary_term", "retry_on_conflict") and \
                        (isinstance(v, bool) or not isinstance(v, int)):
                    raise illegal(f"Action/metadata line [{lineno}]: [{k}] must be an integer, got [{v}]")
                if k in ("_index", "routing", "version_type") and not isinstance(v, str):
                    raise illegal(f"Action/metadata line [{lineno}]: [{k}] must be a string, got [{v}]")
                if k == "_id" and (isinstance(v, bool) or not isinstance(v, (str, int))):
                    raise illegal(f"Action/metadata line [{lineno}]: [_id] must be a string, got [{v}]")
            if "retry_on_conflict" in meta and op != "update":
                raise illegal(f"[mock] Action/metadata line [{lineno}]: [retry_on_conflict] only applies to update")
            doc_id = meta.get("_id")
            doc_id = str(doc_id) if doc_id is not None else None
            if meta.get("_index", index) is None:
                msgs.append("index is missing")
            source = None
            if op != "delete":
                if i >= len(lines) or not lines[i].strip():
                    msgs.append("source is missing")
                    i += 1
                else:
                    source, i = lines[i].rstrip("\r"), i + 1
                    if op == "update":
                        source = parse_json(source.encode(), f"line {i}")
                        if not isinstance(source, dict):
                            raise parsing(f"[UpdateRequest] line [{i}] must be an object")
                        self.check_update_body(source)
            msgs += self.write_checks(op, doc_id, meta.get("version"), meta.get("version_type", "internal"),
                                      meta.get("if_seq_no"), meta.get("if_primary_term"))
            ops.append((op, meta.get("_index", index), doc_id, source, meta))
        if not ops:
            msgs.append("no requests added")
        if msgs:
            raise validation(msgs)
        planned = []  # fail-plan statuses for the first items, from bulk_item_<status> counters
        for key in sorted(self.read_plan() or {}):
            m = re.fullmatch(r"bulk_item_(\d{3})", key)
            if m:
                planned += [int(m.group(1))] * self.plan_take(key, len(ops) - len(planned))
        items, errors, touched = [], False, {}
        for n, (op, name, doc_id, source, meta) in enumerate(ops):
            if doc_id is None:
                doc_id = base64.urlsafe_b64encode(secrets.token_bytes(15)).decode()
            concrete = name
            try:
                if n < len(planned):
                    raise planned_item_error(planned[n])
                ix = self.resolve_write(name, require_alias or truthy(meta.get("require_alias")))
                concrete = ix.name
                if op in ("index", "create"):
                    try:
                        source = parse_json(source.encode(), f"item {n}")
                    except EsError as e:
                        raise doc_error(f"failed to parse: {e.reason}")
                status, res = self.apply_write(ix, op, doc_id, source, meta.get("version_type", "internal"),
                                               meta.get("version"), meta.get("if_seq_no"), meta.get("if_primary_term"))
                res["status"] = status
                touched[ix.name] = ix
                items.append({op: res})
            except EsError as e:
                errors = True
                if e.violation:
                    self.violation(req, e, f"item {n}")
                items.append({op: {"_index": concrete, "_id": doc_id, "status": e.status, "error": e.item()}})
        if refresh:
            for ix in touched.values():
                ix.refresh()
            if refresh == "true":
                for it in items:
                    r = next(iter(it.values()))
                    if "error" not in r:
                        r["forced_refresh"] = True
        return 200, {"took": 1, "errors": errors, "items": items}

    # ---- refresh, search, count, delete_by_query

    def h_refresh(self, req, index="_all"):
        self.no_body(req)
        targets = self.resolve(index, req.params)
        for ix in targets:
            ix.refresh()
        return 200, {"_shards": {"total": sum(ix.shards()["total"] for ix in targets),
                                 "successful": len(targets), "failed": 0}}

    def h_search(self, req, index="_all"):
        body = self.json_body(req)
        targets = self.resolve(index, req.params)
        return 200, run_search(targets, body, req.params)

    def h_count(self, req, index="_all"):
        body = self.json_body(req) or {}
        for k in body:
            if k != "query":
                raise parsing(f"request does not support [{k}]")
        terminate = int_param(None, req.params, "terminate_after", 0)
        targets = self.resolve(index, req.params)
        n = sum(len(count_matches(ix, body.get("query"), terminate)) for ix in targets)
        return 200, {"count": n, "_shards": {"total": len(targets), "successful": len(targets), "skipped": 0,
                                             "failed": 0}}

    def h_delete_by_query(self, req, index):
        p = req.params
        body = self.json_body(req) or {}
        for k, v in body.items():
            if k not in ("query", "max_docs"):
                raise parsing(f"Unknown key for a {token_name(v)} in [{k}].")
        if "query" not in body:
            raise validation(["query is missing"])
        conflicts = p.get("conflicts", "abort")
        if conflicts not in ("abort", "proceed"):
            raise illegal(f"conflicts may only be \"proceed\" or \"abort\" but was [{conflicts}]")
        if not bool_value(p.get("wait_for_completion", "true"), "wait_for_completion"):
            raise not_implemented("wait_for_completion=false (tasks)")
        refresh = bool_value(p.get("refresh", "false"), "refresh")
        max_docs = int_param(body, p, "max_docs", 0)
        targets = self.resolve(index, p)
        deleted = nconf = 0
        failures = []
        for ix in targets:
            for d in count_matches(ix, body["query"]):
                if max_docs and deleted + nconf >= max_docs:
                    break
                cur = ix.docs.get(d.id)
                if cur is None or cur.seq_no != d.seq_no:
                    nconf += 1
                    if conflicts == "abort":
                        err = conflict(ix, d.id, f"required seqNo [{d.seq_no}], primary term [1]. current document "
                                       f"has seqNo [{cur.seq_no if cur else -2}] and primary term [1]")
                        failures.append({"index": ix.name, "id": d.id, "cause": err.item(), "status": 409})
                        break
                    continue
                self.apply_write(ix, "delete", d.id, None)
                deleted += 1
            if failures:
                break
        if refresh:
            for ix in targets:
                ix.refresh()
        return (409 if failures else 200), {
            "took": 1, "timed_out": False, "total": deleted + nconf, "deleted": deleted, "batches": 1,
            "version_conflicts": nconf, "noops": 0, "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0,
            "requests_per_second": -1.0, "throttled_until_millis": 0, "failures": failures}

    # ---- indices and aliases

    def h_root(self, req):
        self.no_body(req)
        return 200, {"name": "mock", "cluster_name": "mock", "cluster_uuid": "mock-cluster-uuid",
                     "version": {"number": ES_VERSION, "distribution": None, "build_flavor": "default",
                                 "lucene_version": "9.8.0", "minimum_wire_compatibility_version": "7.17.0",
                                 "minimum_index_compatibility_version": "7.0.0"},
                     "tagline": "You Know, for Search"}

    def index_info(self, ix, flat=False):
        aliases = {a: dict(m[ix.name]) for a, m in sorted(self.aliases.items()) if ix.name in m}
        return {"aliases": aliases, "mappings": ix.mapping, "settings": ix.settings_out(flat)}

    def h_create_index(self, req, index):
        body = self.json_body(req) or {}
        for k in body:
            if k not in ("settings", "mappings", "aliases"):
                raise EsError(400, "parse_exception", f"unknown key [{k}] for create index")
        self.check_name(index)
        if index in self.indices:
            ix = self.indices[index]
            raise EsError(400, "resource_already_exists_exception", f"index [{index}/{ix.uuid}] already exists",
                          False, index_uuid=ix.uuid, index=index)
        if index in self.aliases:
            raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{index}], already exists as "
                          "alias", index_uuid="_na_", index=index)
        settings, analysis = normalize_settings(body.get("settings", {}))
        analyzers = build_analyzers(analysis)
        mapping = check_mapping(body.get("mappings", {}), analyzers)
        limit = int(settings.get("index.mapping.total_fields.limit", "1000"))
        if count_fields(mapping["properties"]) > limit:
            raise illegal(f"Limit of total fields [{limit}] has been exceeded")
        aliases = body.get("aliases", {})
        if not isinstance(aliases, dict):
            raise parsing("[aliases] must be an object")
        for a, opts in aliases.items():
            self.check_name(a, "alias")
            if not isinstance(opts, dict) or any(k != "is_write_index" for k in opts):
                raise not_implemented(f"alias options {json.dumps(opts)} (only is_write_index)")
            if a == index or a in self.indices:
                raise EsError(400, "invalid_alias_name_exception", f"Invalid alias name [{a}]: an index or data "
                              "stream exists with the same name as the alias", index=a)
        self.order += 1
        self.indices[index] = Index(index, settings, analysis, mapping, analyzers, self.order)
        for a, opts in aliases.items():
            self.aliases.setdefault(a, {})[index] = dict(opts)
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}

    def h_get_index(self, req, index):
        self.no_body(req)
        targets = self.resolve(index, req.params)
        if req.method == "HEAD":
            return (200 if targets else 404), {}
        flat = bool_value(req.params.get("flat_settings", "false"), "flat_settings")
        return 200, {ix.name: self.index_info(ix, flat) for ix in targets}

    def h_get_mapping(self, req, index):
        self.no_body(req)
        return 200, {ix.name: {"mappings": ix.mapping} for ix in self.resolve(index, req.params)}

    def h_get_settings(self, req, index):
        self.no_body(req)
        flat = bool_value(req.params.get("flat_settings", "false"), "flat_settings")
        return 200, {ix.name: {"settings": ix.settings_out(flat)} for ix in self.resolve(index, req.params)}

    def h_delete_index(self, req, index):
        self.no_body(req)
        ignore = bool_value(req.params.get("ignore_unavailable", "false"), "ignore_unavailable")
        names = []
        for part in index.split(","):
            if "*" in part or part == "_all":
                raise illegal("Wildcard expressions or all indices are not allowed")
            if part in self.aliases and part not in self.indices:
                raise illegal(f"The provided expression [{part}] matches an alias, specify the corresponding "
                              "concrete indices instead.")
            if part in self.indices:
                names.append(part)
            elif not ignore:
                raise index_missing(part)
        for n in names:
            del self.indices[n]
            for m in self.aliases.values():
                m.pop(n, None)
        self.aliases = {a: m for a, m in self.aliases.items() if m}
        return 200, {"acknowledged": True}

    def apply_alias_actions(self, actions):
        indices, aliases, removed = set(self.indices), copy.deepcopy(self.aliases), []
        allowed = {"add": {"index", "indices", "alias", "aliases", "is_write_index"},
                   "remove": {"index", "indices", "alias", "aliases", "must_exist"},
                   "remove_index": {"index", "indices", "must_exist"}}
        if not isinstance(actions, list) or not actions:
            raise validation(["At least one action must be specified"])
        for act in actions:
            if not isinstance(act, dict) or len(act) != 1 or not isinstance(next(iter(act.values())), dict):
                raise parsing("[aliases] each action must be an object with a single action object")
            (kind, spec), = act.items()
            if kind not in allowed:
                raise parsing(f"[aliases] unknown field [{kind}]")
            for k in spec:
                if k in ("filter", "routing", "index_routing", "search_routing", "is_hidden"):
                    raise not_implemented(f"alias action parameter [{k}]")
                if k not in allowed[kind]:
                    raise parsing(f"[{kind}] unknown field [{k}]")
            exprs = as_list(spec.get("index", [])) + as_list(spec.get("indices", []))
            if not exprs or not all(isinstance(x, str) for x in exprs):
                raise validation(["One of [index] or [indices] is required"])
            concrete = []
            for e in exprs:
                if "*" in e:
                    hit = [n for n in sorted(indices) if simple_match(e, n)]
                    if not hit:
                        raise index_missing(e)
                    concrete += hit
                elif e in indices:
                    concrete.append(e)
                elif e in aliases:
                    raise illegal(f"The provided expression [{e}] matches an alias, specify the corresponding "
                                  "concrete indices instead.")
                else:
                    raise index_missing(e)
            if kind == "remove_index":
                for n in concrete:
                    indices.discard(n)
                    removed.append(n)
                    for m in aliases.values():
                        m.pop(n, None)
                continue
            names = as_list(spec.get("alias", [])) + as_list(spec.get("aliases", []))
            if not names or not all(isinstance(x, str) for x in names):
                raise validation(["One of [alias] or [aliases] is required"])
            for a in names:
                if kind == "add":
                    self.check_name(a, "alias")
                    if a in indices:
                        raise EsError(400, "invalid_alias_name_exception", f"Invalid alias name [{a}]: an index or "
                                      "data stream exists with the same name as the alias", index=a)
                    for n in concrete:
                        opts = {}
                        if "is_write_index" in spec:
                            opts["is_write_index"] = bool_value(spec["is_write_index"], "is_write_index")
                        aliases.setdefault(a, {})[n] = opts
                else:
                    hit = False
                    for an in [x for x in aliases if simple_match(a, x)]:
                        for n in concrete:
                            if n in aliases[an]:
                                del aliases[an][n]
                                hit = True
                    if not hit and spec.get("must_exist", True) not in (False, "false"):
                        raise EsError(404, "aliases_not_found_exception", f"aliases [{a}] missing", False,
                                      **{"resource.type": "aliases", "resource.id": a})
        for a, m in aliases.items():
            writers = [n for n, o in m.items() if o.get("is_write_index")]
            if len(writers) > 1:
                raise illegal(f"alias [{a}] has more than one write index [{','.join(writers)}]")
        for n in removed:
            self.indices.pop(n, None)
        self.aliases = {a: m for a, m in aliases.items() if m}
        return 200, {"acknowledged": True, "errors": False}

    def h_aliases(self, req):
        body = self.json_body(req, required=True)
        for k in body:
            if k != "actions":
                raise parsing(f"[aliases] unknown field [{k}]")
        return self.apply_alias_actions(body.get("actions"))

    def h_put_alias(self, req, index, name):
        if req.method == "DELETE":
            self.no_body(req)
            return self.apply_alias_actions([{"remove": {"index": index, "alias": name}}])
        body = self.json_body(req) or {}
        return self.apply_alias_actions([{"add": {"index": index, "alias": name, **body}}])

    def h_get_alias(self, req, index=None, name=None):
        self.no_body(req)
        targets = self.resolve(index, req.params) if index else sorted(self.indices.values(), key=lambda x: x.order)
        pats = name.split(",") if name else None
        out, found = {}, set()
        for ix in targets:
            al = {}
            for a, m in sorted(self.aliases.items()):
                if ix.name in m and (pats is None or any(simple_match(p, a) for p in pats)):
                    al[a] = dict(m[ix.name])
                    found.add(a)
            if al or pats is None:
                out[ix.name] = {"aliases": al}
        missing = [p for p in (pats or []) if "*" not in p and p not in found]
        if missing:
            what = f"alias [{missing[0]}]" if len(missing) == 1 else f"aliases [{','.join(missing)}]"
            return 404, {"error": f"{what} missing", "status": 404, **out}
        if req.method == "HEAD" and pats and not found:
            return 404, {}
        return 200, out

    def h_health(self, req, index=None):
        self.no_body(req)
        wfs = req.params.get("wait_for_status")
        if wfs not in (None, "green", "yellow", "red"):
            raise illegal(f"unknown cluster health status [{wfs}]")
        try:
            targets = self.resolve(index, req.params) if index else list(self.indices.values())
            status = "yellow" if any(int(ix.setting("number_of_replicas", "1")) > 0 for ix in targets) else "green"
        except EsError:
            targets, status = [], "red"
        timed_out = status == "red" or (wfs == "green" and status == "yellow")
        n = len(targets)
        return (408 if timed_out else 200), {
            "cluster_name": "mock", "status": status, "timed_out": timed_out, "number_of_nodes": 1,
            "number_of_data_nodes": 1, "active_primary_shards": n, "active_shards": n, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": n if status == "yellow" else 0,
            "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0}

    # ---- test hooks

    def h_mock_stats(self, req):
        return 200, {"requests": self.requests, "violations": list(self.violations),
                     "auth_failures": self.auth_failures,
                     "docs": {n: len(ix.docs) for n, ix in self.indices.items()}}

    def h_mock_indices(self, req):
        return 200, {n: {"settings": ix.settings_out(), "mappings": ix.mapping,
                         "aliases": sorted(a for a, m in self.aliases.items() if n in m),
                         "docs": {i: {"_version": d.version, "_source": d.source} for i, d in ix.docs.items()}}
                     for n, ix in self.indices.items()}

    def h_mock_reset(self, req):
        self.indices, self.aliases, self.violations = {}, {}, []
        self.requests = self.auth_failures = 0
        return 200, {"acknowledged": True}


# ----------------------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-es"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def serve(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.send_error(400, "malformed request body framing")
            self.close_connection = True
            return
        res = self.server.state.handle(self.command, self.path, self.headers, body)
        if res is None:
            self.close_connection = True
            return
        status, data, extra = res
        if self.command == "HEAD":
            data = b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-elastic-product", "Elasticsearch")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = serve


def make_server(state, port=0):
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.state = state
    return srv


def main(argv=None):
    ap = argparse.ArgumentParser(description="Strict in-memory stand-in for Elasticsearch 8, for tests.")
    ap.add_argument("--port-file")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--api-key")
    ap.add_argument("--fail-plan")
    ap.add_argument("--log")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        self_test()
        return 0
    if not a.port_file:
        ap.error("--port-file is required")
    if (a.user is None) != (a.password is None):
        ap.error("--user and --password go together")
    state = State(a.user, a.password, a.api_key, a.fail_plan, a.log)
    srv = make_server(state, a.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.replace(tmp, a.port_file)
    while not stop.wait(0.2):
        pass
    srv.shutdown()
    srv.server_close()
    state.stop.set()
    return 0


# ----------------------------------------------------------------------------- self-test

CLIENT_MAPPING = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "mapping.total_fields.limit": 100000,
                           "refresh_interval": "-1"},
                 "analysis": {"tokenizer": {"metafs_words": {"type": "pattern", "pattern": JAVA_WORD_SEPARATOR},
                                            "metafs_tree": {"type": "path_hierarchy"}},
                              "analyzer": {"metafs_words": {"type": "custom", "tokenizer": "metafs_words",
                                                            "filter": ["lowercase", "asciifolding"]},
                                           "metafs_tree": {"type": "custom", "tokenizer": "metafs_tree"}}}},
    "mappings": {
        "dynamic": "strict",
        "dynamic_templates": [
            {"xnum": {"path_match": "x.*", "match": "*#n", "mapping": {"type": "double"}}},
            {"xstr": {"path_match": "x.*", "match": "*#s", "mapping": {"type": "keyword", "ignore_above": 8191}}},
            {"xbool": {"path_match": "x.*", "match": "*#b", "mapping": {"type": "byte"}}}],
        "properties": {
            **{f: {"type": "long"} for f in ("ino", "version", "fmt", "perm", "uid", "gid", "nlink", "size",
                                             "atime", "mtime", "ctime")},
            "deleted": {"type": "boolean"},
            "names": {"properties": {
                "parent": {"type": "long"},
                "name": {"type": "keyword", "fields": {"words": {"type": "text", "analyzer": "metafs_words"}}},
                "path": {"type": "keyword", "fields": {
                    "words": {"type": "text", "analyzer": "metafs_words"},
                    "tree": {"type": "text", "analyzer": "metafs_tree", "search_analyzer": "keyword"}}}}},
            "tags": {"type": "keyword"}, "text": {"type": "text", "analyzer": "metafs_words"},
            "x": {"type": "object", "dynamic": True}, "xf": {"type": "object", "enabled": False},
            "cursor": {"type": "long", "index": False}, "volume": {"type": "keyword"}}}}


def self_test():
    tmp = tempfile.mkdtemp(prefix="mock_es_selftest_")
    plan, log = os.path.join(tmp, "plan.json"), os.path.join(tmp, "log.jsonl")
    state = State(fail_plan=plan, log=log, quiet=True)
    srv = make_server(state)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    expected_violations = 0

    def call(method, path, body=None, ctype="application/json", headers=None, url=base):
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
            if ctype:
                hdrs["Content-Type"] = ctype
        rq = urllib.request.Request(url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(rq, timeout=10) as r:
                status, raw, h = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, raw, h = e.code, e.read(), e.headers
        assert h.get("X-elastic-product") == "Elasticsearch" and h.get("Content-Type") == "application/json"
        return status, (json.loads(raw) if raw else None)

    def ok(method, path, body=None, status=200, **kw):
        st, r = call(method, path, body, **kw)
        assert st == status, f"{method} {path}: expected {status}, got {st}: {r}"
        return r

    def bad(method, path, body=None, status=400, etype=None, **kw):
        nonlocal expected_violations
        r = ok(method, path, body, status, **kw)
        if etype:
            assert r["error"]["type"] == etype, f"{method} {path}: expected {etype}, got {r}"
        expected_violations += 1
        return r

    def bulk(lines, path="/_bulk", status=200, **kw):
        return ok("POST", path, "".join(json.dumps(x) + "\n" for x in lines), status,
                  ctype="application/x-ndjson", **kw)

    def search(body, index="files-1", **kw):
        return ok("POST", f"/{index}/_search", body, **kw)["hits"]

    def ids(hits):
        return [h["_id"] for h in hits["hits"]]

    # cluster info, index creation and validation
    assert ok("GET", "/")["version"]["number"] == ES_VERSION
    assert ok("PUT", "/files-1", CLIENT_MAPPING)["acknowledged"]
    ok("PUT", "/files-1", CLIENT_MAPPING, 400)
    bad("PUT", "/Files", {}, etype="invalid_index_name_exception")
    bad("PUT", "/bad", {"mappings": {"properties": {"a": {"type": "strng"}}}}, etype="mapper_parsing_exception")
    bad("PUT", "/bad", {"mappings": {"properties": {"a": {"type": "text", "analyzer": "nope"}}}})
    bad("PUT", "/bad", {"settings": {"analysis": {"tokenizer": {"t": {"type": "pattern", "pattern": r"\p{Lu}+"}}}}})
    bad("PUT", "/bad", {"settings": {"index": {"bogus_setting": 1}}})
    bad("PUT", "/bad", {"mappings": {"_doc": {"properties": {}}}}, etype="mapper_parsing_exception")
    bad("PUT", "/files-1/_doc/1", {"ino": 1}, 406, ctype=None)
    bad("GET", "/files-1/_search?foo=1")
    bad("POST", "/files-1/_search", {"query": {"match_all": {}}, "sizee": 3}, etype="parsing_exception")
    bad("POST", "/files-1/_search", {"query": {"nested": {"path": "x", "query": {"match_all": {}}}}})
    bad("POST", "/files-1/_search", {"query": {"term": {"tags": {"value": "a", "bogus": 1}}}})
    bad("POST", "/files-1/_search", {"query": {"bool": {"must": ["x"]}}})
    bad("POST", "/files-1/_search", {"query": {"match_all": {}}}, ctype="text/plain", status=406)
    bad("POST", "/files-1/_search", b'{"query": {"match_all": {}}, "query": {}}')
    bad("GET", "/", b"{}")
    bad("POST", "/files-1/_search", {"sort": [{"text": "asc"}]}, etype="illegal_argument_exception")

    # bulk: 25 documents with external versions, conflicts, tombstones, strict mapping
    docs = {}
    for i in range(1, 26):
        docs[str(i)] = {"ino": i, "size": (i * 7) % 10, "deleted": False, "tags": [f"t{i % 4}", f"u{i % 5}"],
                        "names": [{"parent": 0, "name": f"f{i:02}.txt", "path": f"/d{i % 3}/f{i:02}.txt"}],
                        "text": "plain words", "cursor": i}
    docs["1"].update(text="Hello Wörld", names=[{"parent": 0, "name": "Report Final.txt",
                                                 "path": "/d1/Report Final.txt"},
                                                {"parent": 5, "name": "link", "path": "/a/b/c"}],
                     x={"color#s": "red", "weight#n": 1.5, "long#s": "y" * 9000, "flag#b": 1},
                     xf={"any": [[1, 2], ["x", {"y": None}]]})
    lines = []
    for i, d in docs.items():
        lines += [{"index": {"_index": "files-1", "_id": i, "version": 5, "version_type": "external"}}, d]
    r = bulk(lines)
    assert not r["errors"] and all(it["index"]["status"] == 201 for it in r["items"]), r
    r = bulk([{"index": {"_id": "1", "version": 5, "version_type": "external"}}, docs["1"],
              {"index": {"_id": "3", "version": 6, "version_type": "external_gte"}}, docs["3"],
              {"delete": {"_id": "2", "version": 7, "version_type": "external"}},
              {"index": {"_id": "2", "version": 6, "version_type": "external"}}, docs["2"],
              {"index": {"_id": "100"}}, {"bogus": 1},
              {"index": {"_id": "101"}}, {"ino": 1.5},
              {"create": {"_id": "4"}}, docs["4"]], path="/files-1/_bulk")
    expected_violations += 2
    st = [(next(iter(it)), next(iter(it.values()))["status"]) for it in r["items"]]
    assert r["errors"] and st == [("index", 409), ("index", 200), ("delete", 200), ("index", 409),
                                  ("index", 400), ("index", 400), ("create", 409)], st
    assert r["items"][0]["index"]["error"]["type"] == "version_conflict_engine_exception"
    assert "higher or equal to the one provided [5]" in r["items"][0]["index"]["error"]["reason"]
    assert r["items"][4]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"
    bad("POST", "/_bulk", '{"index":{"_index":"files-1","_id":"9"}}\n{"ino":9}\n', ctype="application/json",
        status=406)
    bad("POST", "/_bulk", '{"index":{"_index":"files-1","_id":"9"}}\n{"ino":9}', ctype="application/x-ndjson",
        etype="illegal_argument_exception")
    bad("POST", "/_bulk", '{"index":{"_index":"files-1","_id":"9","_type":"_doc"}}\n{"ino":9}\n',
        ctype="application/x-ndjson")
    bad("POST", "/_bulk", '{"index":{"_id":"9"}}\n{"ino":9}\n', ctype="application/x-ndjson",
        etype="action_request_validation_exception")
    bad("POST", "/_bulk", '{"index":{"_index":"files-1","_id":"9","version":3}}\n{"ino":9}\n',
        ctype="application/x-ndjson", etype="action_request_validation_exception")
    bad("POST", "/_bulk", json.dumps({"index": {"_index": "files-1", "_id": "x" * 513}}) + '\n{"ino":9}\n',
        ctype="application/x-ndjson", etype="action_request_validation_exception")
    r = bulk([{"index": {"_index": "nope", "_id": "1"}}, {"ino": 1}])
    expected_violations += 1
    assert r["items"][0]["index"]["error"]["type"] == "index_not_found_exception"

    # dynamic templates recorded in the mapping
    props = ok("GET", "/files-1")["files-1"]["mappings"]["properties"]
    assert props["x"]["properties"]["color#s"] == {"type": "keyword", "ignore_above": 8191}, props["x"]
    assert props["x"]["properties"]["weight#n"]["type"] == "double"
    assert props["x"]["properties"]["flag#b"]["type"] == "byte"

    # refresh visibility: realtime GET, search sees the last refresh only
    g = ok("GET", "/files-1/_doc/1")
    assert g["found"] and g["_version"] == 5 and g["_source"]["x"]["long#s"] == "y" * 9000
    assert ok("GET", "/files-1/_doc/2", status=404)["found"] is False
    assert search({"query": {"match_all": {}}})["total"]["value"] == 0
    ok("POST", "/files-1/_refresh")
    assert search({"query": {"match_all": {}}})["total"]["value"] == 24
    ok("PUT", "/files-1/_doc/26?refresh=false", {"ino": 26, "size": 3}, 201)
    assert search({"query": {"term": {"ino": 26}}})["total"]["value"] == 0
    ok("PUT", "/files-1/_doc/26?refresh=wait_for", {"ino": 26, "size": 3, "tags": ["b", "a", "c"]})
    assert search({"query": {"term": {"ino": "26"}}})["total"]["value"] == 1

    # queries
    h = search({"query": {"term": {"names.path.tree": "/a/b"}}})
    assert ids(h) == ["1"], h
    h = search({"query": {"term": {"names.path.tree": "/d1"}}, "size": 100})
    assert sorted(ids(h), key=int) == [str(i) for i in range(1, 26) if i % 3 == 1 and i != 2], ids(h)
    h = search({"query": {"bool": {"filter": [{"term": {"tags": "t1"}}, {"range": {"size": {"gte": 2, "lt": 8}}}],
                                   "must_not": {"term": {"ino": 9}}}}, "size": 100})
    want = [i for i, d in docs.items() if "t1" in d["tags"] and 2 <= d["size"] < 8 and i not in ("9", "2")]
    assert sorted(ids(h)) == sorted(want) and all(x["_score"] == 0.0 for x in h["hits"]), (ids(h), want)
    assert ids(search({"query": {"prefix": {"names.name": "Report"}}})) == ["1"]
    assert sorted(ids(search({"query": {"wildcard": {"names.name": {"value": "f?1.*"}}}}))) == ["11", "21"]
    assert ids(search({"query": {"exists": {"field": "x"}}})) == ["1"]
    assert search({"query": {"exists": {"field": "xf"}}})["total"]["value"] == 0
    assert search({"query": {"exists": {"field": "x.long#s"}}})["total"]["value"] == 0
    assert ids(search({"query": {"exists": {"field": "x.color#s"}}})) == ["1"]
    assert ids(search({"query": {"range": {"x.weight#n": {"gt": 1}}}})) == ["1"]
    assert ids(search({"query": {"match": {"text": "WORLD"}}})) == ["1"]
    h = search({"query": {"multi_match": {"query": "report final", "type": "phrase",
                                          "fields": ["names.name.words^10", "text^2"]}}})
    assert ids(h) == ["1"] and h["hits"][0]["_score"] > 0
    assert search({"query": {"match_phrase": {"names.name.words": "final report"}}})["total"]["value"] == 0
    h = search({"query": {"constant_score": {"filter": {"term": {"ino": 5}}, "boost": 3}}})
    assert ids(h) == ["5"] and h["hits"][0]["_score"] == 3.0
    h = search({"query": {"bool": {"should": [{"term": {"tags": {"value": "t1", "_name": "tag"}}},
                                              {"match": {"text": {"query": "hello", "_name": "hello"}}},
                                              {"exists": {"field": "nothing", "_name": "never"}}]}},
                "size": 100})
    mq = {x["_id"]: x.get("matched_queries") for x in h["hits"]}
    assert mq["1"] == ["hello", "tag"] and mq["5"] == ["tag"] and len(mq) == 7, mq
    assert "matched_queries" not in h["hits"][-1] or h["hits"][-1]["matched_queries"]

    # sort + search_after over 25 documents in pages of 10
    body = {"query": {"match_all": {}}, "size": 10, "sort": [{"size": "desc"}, {"ino": "asc"}]}
    seen = []
    while True:
        h = search(body)
        seen += h["hits"]
        if len(h["hits"]) < 10:
            break
        body["search_after"] = h["hits"][-1]["sort"]
    live = {i: d for i, d in docs.items() if i != "2"}
    live["26"] = {"ino": 26, "size": 3}
    want = [i for i, _ in sorted(live.items(), key=lambda kv: (-kv[1]["size"], kv[1]["ino"]))]
    assert [x["_id"] for x in seen] == want and seen[0]["_score"] is None, ([x["_id"] for x in seen], want)
    bad("POST", "/files-1/_search", {"sort": ["ino"], "search_after": [1, 2]})
    # keyword multi-value sort: doc 26 has tags [b, a, c]
    h = search({"query": {"terms": {"ino": [26, 3]}}, "sort": [{"tags": {"order": "asc", "mode": "min"}}]})
    assert [x["sort"] for x in h["hits"]] == [["a"], ["t3"]], h
    h = search({"query": {"terms": {"ino": [26, 3]}}, "sort": [{"tags": {"order": "desc", "mode": "max"}}]})
    assert [x["sort"] for x in h["hits"]] == [["u3"], ["c"]], h
    h = search({"query": {"terms": {"ino": [26, 1]}}, "sort": [{"x.weight#n": "asc"}, "_score"]})
    assert [x["sort"][0] for x in h["hits"]] == [1.5, "Infinity"], h

    # single-document versioning
    ok("PUT", "/files-2", CLIENT_MAPPING)
    assert ok("PUT", "/files-2/_doc/v", {"ino": 1}, 201)["_version"] == 1
    r = ok("PUT", "/files-2/_doc/v", {"ino": 1})
    assert r["_version"] == 2 and r["result"] == "updated"
    bad("PUT", "/files-2/_doc/v?version=3", {"ino": 1}, etype="action_request_validation_exception")
    assert ok("PUT", "/files-2/_doc/v?version=10&version_type=external", {"ino": 1})["_version"] == 10
    assert ok("PUT", "/files-2/_doc/v?version=10&version_type=external", {"ino": 1}, 409)["error"]["type"] == \
        "version_conflict_engine_exception"
    assert ok("PUT", "/files-2/_doc/v?version=10&version_type=external_gte", {"ino": 2})["_version"] == 10
    assert ok("DELETE", "/files-2/_doc/v?version=11&version_type=external")["result"] == "deleted"
    ok("PUT", "/files-2/_doc/v?version=11&version_type=external", {"ino": 1}, 409)
    assert ok("PUT", "/files-2/_doc/v?version=12&version_type=external", {"ino": 1}, 201)["result"] == "created"
    bad("PUT", "/files-2/_doc/w", {"_id": "w"}, etype="document_parsing_exception")

    # aliases: add, swap atomically, write through, multi-index write rejected
    ok("POST", "/_aliases", {"actions": [{"add": {"index": "files-1", "alias": "files"}}]})
    assert list(ok("GET", "/_alias/files")) == ["files-1"]
    ok("POST", "/_aliases", {"actions": [{"remove": {"index": "files-1", "alias": "files"}},
                                         {"add": {"index": "files-2", "alias": "files"}}]})
    assert ok("GET", "/_alias/files") == {"files-2": {"aliases": {"files": {}}}}
    assert ok("PUT", "/files/_doc/via-alias", {"ino": 7}, 201)["_index"] == "files-2"
    ok("HEAD", "/files")
    ok("HEAD", "/nope", status=404)
    assert ok("GET", "/_alias/nope", status=404)["error"] == "alias [nope] missing"
    ok("POST", "/_aliases", {"actions": [{"add": {"index": "files-1", "alias": "files"}}]})
    bad("PUT", "/files/_doc/z", {"ino": 1}, etype="illegal_argument_exception")
    bad("POST", "/_aliases", {"actions": [{"add": {"index": "files-2", "alias": "files-1"}}]},
        etype="invalid_alias_name_exception")
    bad("DELETE", "/files", etype="illegal_argument_exception")
    ok("POST", "/_aliases", {"actions": [{"nope": {}}]}, 400)
    expected_violations += 1
    ok("POST", "/_aliases", {"actions": [{"remove": {"index": "files-1", "alias": "files"}}]})

    # count and delete_by_query
    assert ok("POST", "/files-1/_count", {"query": {"term": {"tags": "t0"}}})["count"] == 6
    r = ok("POST", "/files-1/_delete_by_query?refresh=true", {"query": {"term": {"tags": "t0"}}})
    assert r["deleted"] == 6, r
    assert ok("GET", "/files-1/_count")["count"] == 19

    # fail plan
    with open(plan, "w") as f:
        json.dump({"bulk_429": 1, "bulk_item_429": 2, "bulk_item_400": 1, "search_503": 1}, f)
    three = [{"index": {"_index": "files-2", "_id": f"p{i}"}} if j == 0 else {"ino": i}
             for i in range(3) for j in range(2)]
    assert bulk(three, status=429)["error"]["type"] == "es_rejected_execution_exception"
    r = bulk(three)
    assert [it["index"]["status"] for it in r["items"]] == [400, 429, 429] and r["errors"], r
    assert r["items"][0]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert [it["index"]["status"] for it in bulk(three)["items"]] == [201, 201, 201]
    ok("POST", "/files-1/_search", {}, 503)
    ok("POST", "/files-1/_search", {})
    with open(plan) as f:
        assert not any(json.load(f).values())
    with open(plan, "w") as f:
        json.dump({"close_connection": 1}, f)
    try:
        call("GET", "/")
        raise AssertionError("close_connection did not drop the connection")
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        assert not isinstance(e, urllib.error.HTTPError)
    ok("GET", "/")

    # authentication
    auth_state = State(user="elastic", password="s3cret", api_key="a2V5", quiet=True)
    auth_srv = make_server(auth_state)
    threading.Thread(target=auth_srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    aurl = f"http://127.0.0.1:{auth_srv.server_address[1]}"
    assert ok("GET", "/", status=401, url=aurl)["error"]["type"] == "security_exception"
    wrong = "Basic " + base64.b64encode(b"elastic:wrong").decode()
    ok("GET", "/", status=401, url=aurl, headers={"Authorization": wrong})
    good = "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    ok("GET", "/", url=aurl, headers={"Authorization": good})
    ok("GET", "/", url=aurl, headers={"Authorization": "ApiKey a2V5"})
    assert auth_state.auth_failures == 2 and not auth_state.violations
    auth_srv.shutdown()

    # chunked request body over a raw keep-alive connection
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request("POST", "/files-1/_count", body=iter([b'{"query":', b'{"match_all":{}}}']),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["count"] == 19
    conn.request("HEAD", "/files-1")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    conn.close()

    # bookkeeping
    stats = ok("GET", "/_mock/stats")
    assert len(stats["violations"]) == expected_violations, (expected_violations, stats["violations"])
    assert not any(v.startswith("MOCK BUG") for v in stats["violations"])
    with open(log) as f:
        entries = [json.loads(x) for x in f]
    assert len(entries) == stats["requests"], (len(entries), stats["requests"])
    assert any(e.get("ndjson_lines") == 50 for e in entries)
    assert ok("GET", "/_mock/indices")["files-2"]["docs"]["v"]["_version"] == 12
    srv.shutdown()
    state.stop.set()
    auth_state.stop.set()
    print("self-test: ok")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Renders chat templates the way Hugging Face transformers does: the oracle for test_jinja.

Input (stdin, or the file named by the first argument): a JSON list of cases
    {"template": str, "context": {...}, "now": unix_seconds (optional)}
Output (stdout): a JSON list, one entry per case:
    {"ok": true, "text": str}
    {"ok": false, "raise": msg}     raise_exception(msg) was called by the template
    {"ok": false, "error": "Type: msg"}   any other error (syntax, undefined, sandbox, type)

The environment copies transformers' chat_template_utils._compile_jinja_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, jinja2.ext.loopcontrols]), the tojson filter replaced by
json.dumps without HTML escaping or key sorting, and the globals raise_exception and
strftime_now (here with a fixed clock, "now" seconds since the epoch in UTC).
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaise(Exception):
    pass


class AssistantTracker(jinja2.ext.Extension):
    # transformers renders {% generation %}...{% endgeneration %} as its body (it only records
    # the character span); the body is a CallBlock, i.e. it runs in its own scope like a macro.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(
            lineno)

    def _generation_support(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise TemplateRaise(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


_envs = {}
_compiled = {}


def render(case):
    now = case.get("now", 0)
    if now not in _envs:
        _envs[now] = make_env(now)
    env = _envs[now]
    try:
        key = (now, case["template"])
        if key not in _compiled:
            _compiled[key] = env.from_string(case["template"])
        text = _compiled[key].render(**case.get("context", {}))
        return {"ok": True, "text": text}
    except TemplateRaise as e:
        return {"ok": False, "raise": str(e)}
    except Exception as e:  # any other failure counts as an error of the template
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    src = open(sys.argv[1], encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    cases = json.load(src)
    out = [render(c) for c in cases]
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()

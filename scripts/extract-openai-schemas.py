#!/usr/bin/env python3
"""Extract OpenAI response schemas from the OpenAPI spec as a JSON Schema bundle.

Usage:
    python3 scripts/extract-openai-schemas.py PATH/TO/openapi.yaml > tests/fixtures/openai/schemas.json

PATH/TO/openapi.yaml is openapi.yaml from https://github.com/openai/openai-openapi
(openapi.json from the same repository works too). The checked-in
tests/fixtures/openai/schemas.json was generated from commit
f85dbe223d40e1a31cba812ab2d755c7e98a92a3 (2026-08-21, spec info.version 2.3.0).

Requires Python 3 and PyYAML (pip install pyyaml) for YAML input.

The output is one JSON Schema draft 2020-12 document,
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {NAME: schema, ...}}
holding the ROOTS below plus every component schema they reference,
transitively. Validate a document against "#/$defs/NAME". Conversions:
  * "#/components/schemas/X" refs become "#/$defs/X";
  * OpenAPI 3.0 `nullable: true` becomes a JSON Schema null alternative: "null"
    is added to a plain `type` (and None to its `enum`), otherwise the schema is
    wrapped as {"anyOf": [schema, {"type": "null"}]};
  * boolean exclusiveMinimum/exclusiveMaximum (OpenAPI 3.0) become numeric;
  * draft 2019-09 recursion inside a component ("$recursiveAnchor": true with
    "$recursiveRef": "#", as CompoundFilter has) becomes a plain "$ref" to the
    component itself;
  * OpenAPI-only keywords are dropped: x-* extensions, discriminator,
    example, non-array examples, xml, externalDocs.
Everything else (required, additionalProperties, enum, format, deprecated,
...) is kept as the spec says. Keys are sorted; output is deterministic.
"""

import argparse
import json
import sys

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "Response",
    "ResponseStreamEvent",
    "ResponseItemList",
]

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
OAS_PREFIX = "#/components/schemas/"
DEFS_PREFIX = "#/$defs/"

# Keywords whose value is a single subschema.
SCHEMA_KEYWORDS = {
    "items", "additionalItems", "additionalProperties", "unevaluatedItems",
    "unevaluatedProperties", "contains", "propertyNames", "not", "if", "then",
    "else", "contentSchema",
}
# Keywords whose value is a list of subschemas.
SCHEMA_LIST_KEYWORDS = {"allOf", "anyOf", "oneOf", "prefixItems"}
# Keywords whose value is a map of name -> subschema.
SCHEMA_MAP_KEYWORDS = {
    "properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
}
# OpenAPI-only keywords with no JSON Schema meaning.
DROP_KEYWORDS = {"discriminator", "example", "xml", "externalDocs", "nullable"}
# Keywords that describe a schema rather than constrain it; when a nullable
# schema is wrapped in anyOf they stay on the outer schema.
ANNOTATIONS = {
    "title", "description", "default", "deprecated", "readOnly", "writeOnly",
    "examples", "$comment",
}
# Keywords that make adding "null" to `type` insufficient.
COMPOSITION = {"$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"}


def load_spec(path):
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        pass

    # Keep YAML timestamps (e.g. unquoted dates in examples) as strings so the
    # result stays JSON-serialisable.
    Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in base.yaml_implicit_resolvers.items()
    }
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def ref_target(ref):
    if not ref.startswith(OAS_PREFIX):
        sys.exit(f"unsupported $ref (only {OAS_PREFIX}* is handled): {ref}")
    name = ref[len(OAS_PREFIX):]
    if "/" in name:
        sys.exit(f"unsupported $ref into a schema's inside: {ref}")
    return name.replace("~1", "/").replace("~0", "~")


def collect_refs(schema, out):
    """Add the component names that `schema` references to `out`."""
    if isinstance(schema, bool) or not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out.add(ref_target(value))
        elif key in SCHEMA_KEYWORDS:
            collect_refs(value, out)
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for sub in value:
                collect_refs(sub, out)
        elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for sub in value.values():
                collect_refs(sub, out)


def add_null(value):
    if isinstance(value, list):
        return value if "null" in value else value + ["null"]
    return value if value == "null" else [value, "null"]


def make_nullable(schema):
    """Return a schema accepting everything `schema` does, plus null."""
    constraints = {k for k in schema if k not in ANNOTATIONS}
    if not constraints:  # no constraint at all: null is already allowed
        return schema
    if "type" in schema and not constraints & COMPOSITION:
        out = dict(schema, type=add_null(schema["type"]))
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
        if "const" in out:  # const cannot also admit null
            return wrap_null(schema)
        return out
    if constraints == {"enum"} and isinstance(schema["enum"], list):
        if None in schema["enum"]:
            return schema
        return dict(schema, enum=schema["enum"] + [None])
    if constraints == {"anyOf"} and isinstance(schema["anyOf"], list):
        if {"type": "null"} in schema["anyOf"]:
            return schema
        return dict(schema, anyOf=schema["anyOf"] + [{"type": "null"}])
    return wrap_null(schema)


def wrap_null(schema):
    outer = {k: v for k, v in schema.items() if k in ANNOTATIONS}
    inner = {k: v for k, v in schema.items() if k not in ANNOTATIONS}
    outer["anyOf"] = [inner, {"type": "null"}]
    return outer


def convert(schema):
    """Convert one OpenAPI schema object to JSON Schema 2020-12."""
    if isinstance(schema, bool) or not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key.startswith("x-") or key in DROP_KEYWORDS:
            continue
        if key == "examples" and not isinstance(value, list):
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = DEFS_PREFIX + value[len(OAS_PREFIX):]
            ref_target(value)  # validates the form
        elif key in SCHEMA_KEYWORDS:
            out[key] = convert(value)
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            out[key] = [convert(sub) for sub in value]
        elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {name: convert(sub) for name, sub in value.items()}
        else:
            out[key] = value  # a value keyword (enum, default, required, ...)

    for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(excl), bool):
            if out[excl] and bound in out:
                out[excl] = out.pop(bound)
            else:
                del out[excl]

    if schema.get("nullable") is True:
        out = make_nullable(out)
    return out


def self_refs(schema, name):
    """Rewrite draft 2019-09 recursion (`$recursiveRef: "#"` under a
    `$recursiveAnchor`) as a `$ref` to the component `name` itself."""
    if isinstance(schema, list):
        return [self_refs(sub, name) for sub in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "$recursiveAnchor":
            continue
        if key == "$recursiveRef":
            if value != "#":
                sys.exit(f"unsupported $recursiveRef in {name}: {value}")
            out["$ref"] = DEFS_PREFIX + name
            continue
        out[key] = self_refs(value, name)
    return out


def extract(spec, roots):
    components = spec.get("components", {}).get("schemas", {})
    names, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in names:
            continue
        if name not in components:
            sys.exit(f"schema not found in components.schemas: {name}")
        names.add(name)
        refs = set()
        collect_refs(components[name], refs)
        todo.extend(sorted(refs - names))
    version = spec.get("info", {}).get("version", "?")
    return {
        "$schema": SCHEMA_URI,
        "$comment": (
            "Generated by scripts/extract-openai-schemas.py from openai/openai-openapi "
            f"(info.version {version}); do not edit by hand. Roots: {', '.join(roots)}."
        ),
        "$defs": {
            name: self_refs(convert(components[name]), name) for name in sorted(names)
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="path to openapi.yaml (or openapi.json)")
    parser.add_argument(
        "--schema", action="append", metavar="NAME",
        help="root component schema to extract (repeatable; default: %s)" % ", ".join(ROOTS),
    )
    args = parser.parse_args()
    bundle = extract(load_spec(args.spec), args.schema or ROOTS)
    json.dump(bundle, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

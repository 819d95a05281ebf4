#!/usr/bin/env python3
"""Kubernetes JSON schemas for kubeconform, built offline from the OpenAPI documents.

    python3 scripts/k8s_schemas.py --kubernetes-zip k8s-v1.33.13.zip --version 1.33.13 --out DIR
        [--crd-json servicemonitors-crd.json ...]

Reads ``api/openapi-spec/swagger.json`` out of a ``k8s.io/kubernetes`` module zip (the one the
Go module proxy serves: https://proxy.golang.org/k8s.io/kubernetes/@v/<version>.zip) and
writes one JSON schema per API kind in the layout kubeconform looks up with
``-schema-location DIR/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json``:

    DIR/v1.33.13-standalone-strict/deployment-apps-v1.json
    DIR/v1.33.13-standalone-strict/configmap-v1.json

* standalone: every ``$ref`` is replaced by the definition it names, so one file is the whole
  schema (a reference back into a definition being expanded, which only the recursive
  ``JSONSchemaProps`` of CRDs has, becomes an unconstrained schema);
* strict: every object that lists its properties gets ``additionalProperties: false``, so a
  misspelt or misplaced field is an error, as ``kubectl apply --validate=strict`` reports it;
* ``IntOrString`` accepts a string or an integer, ``Quantity`` a string or a number (YAML
  ``cpu: 1``); optional fields may be ``null`` (the API server treats null as unset);
* descriptions and formats are left out: kubeconform needs neither.

``--crd-json`` adds the kinds of CustomResourceDefinitions (a CRD as JSON, e.g. the
``servicemonitors-crd.json`` of the prometheus-operator module) from their
``openAPIV3Schema``, made strict the same way (``x-kubernetes-preserve-unknown-fields``
objects stay open).

Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SPECIAL: dict[str, dict[str, Any]] = {
    INT_OR_STRING: {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
}
KEEP = ("type", "enum", "items", "properties", "required", "additionalProperties",
        "oneOf", "anyOf", "allOf", "not", "minimum", "maximum", "minItems", "maxItems",
        "minLength", "maxLength", "pattern", "minProperties", "maxProperties",
        "uniqueItems", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")  # fmt: skip


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, also accepting null."""
    if not schema:
        return schema
    t = schema.get("type")
    if isinstance(t, str):
        return {**schema, "type": [t, "null"]}
    if isinstance(t, list):
        return schema if "null" in t else {**schema, "type": [*t, "null"]}
    if "oneOf" in schema:
        return {**schema, "oneOf": [*schema["oneOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


class Expander:
    """Turns the swagger definitions into standalone, strict schemas."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.defs = definitions
        self.cache: dict[str, dict[str, Any]] = {}

    def ref(self, name: str, stack: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
        """(schema, whether a cycle was cut while expanding it)."""
        if name in SPECIAL:
            return SPECIAL[name], False
        if name in stack:
            return {}, True
        if name in self.cache:
            return self.cache[name], False
        if name not in self.defs:
            raise SystemExit(f"k8s_schemas: unresolved $ref {name}")
        out, cut = self.schema(self.defs[name], (*stack, name))
        if not cut:
            self.cache[name] = out
        return out, cut

    def schema(self, node: Any, stack: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
        if not isinstance(node, dict):
            return {}, False
        if "$ref" in node:
            return self.ref(node["$ref"].rsplit("/", 1)[-1], stack)
        cut = False
        out: dict[str, Any] = {}
        for key in KEEP:
            if key not in node:
                continue
            value = node[key]
            if key == "properties":
                required = set(node.get("required", ()))
                props: dict[str, Any] = {}
                for pname, pnode in value.items():
                    sub, c = self.schema(pnode, stack)
                    cut |= c
                    props[pname] = sub if pname in required else nullable(sub)
                out["properties"] = props
            elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
                sub, c = self.schema(value, stack)
                cut |= c
                out[key] = sub
            elif key in ("oneOf", "anyOf", "allOf"):
                subs = []
                for item in value:
                    sub, c = self.schema(item, stack)
                    cut |= c
                    subs.append(sub)
                out[key] = subs
            else:
                out[key] = value
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
        open_object = node.get("x-kubernetes-preserve-unknown-fields") is True
        if "properties" in out and "additionalProperties" not in out and not open_object:
            out["additionalProperties"] = False
        if node.get("nullable") is True:
            out = nullable(out)
        return out, cut


def file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's name: kind, first label of the group (none for the core group), version."""
    parts = [kind.lower()]
    if group:
        parts.append(group.split(".")[0].lower())
    parts.append(version.lower())
    return "-".join(parts) + ".json"


def top_level(schema: dict[str, Any], group: str, version: str, kind: str) -> dict[str, Any]:
    api_version = f"{group}/{version}" if group else version
    out = dict(schema)
    props = dict(out.get("properties", {}))
    props["apiVersion"] = {"type": "string", "enum": [api_version]}
    props["kind"] = {"type": "string", "enum": [kind]}
    out["properties"] = props
    out["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    return out


def write(path: Path, schema: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def swagger_from_zip(zip_path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.endswith("/api/openapi-spec/swagger.json")]
        if not names:
            raise SystemExit(f"k8s_schemas: {zip_path} has no api/openapi-spec/swagger.json")
        with zf.open(names[0]) as fh:
            return json.load(fh)


def kinds_from_swagger(swagger: dict[str, Any], out_dir: Path) -> int:
    definitions = swagger["definitions"]
    expander = Expander(definitions)
    count = 0
    for name, node in sorted(definitions.items()):
        gvks = node.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1 or "properties" not in node:
            continue  # meta kinds shared by every group (DeleteOptions, WatchEvent, ...)
        gvk = gvks[0]
        schema, _ = expander.ref(name, ())
        schema = top_level(schema, gvk["group"], gvk["version"], gvk["kind"])
        write(out_dir / file_name(gvk["group"], gvk["version"], gvk["kind"]), schema)
        count += 1
    return count


def kinds_from_crd(crd: dict[str, Any], out_dir: Path) -> int:
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    expander = Expander({})
    count = 0
    for version in spec.get("versions", []):
        v3 = (version.get("schema") or {}).get("openAPIV3Schema")
        if not v3:
            continue
        schema, _ = expander.schema(v3, ())
        props = dict(schema.get("properties", {}))
        props["metadata"] = nullable({"type": "object"})
        schema["properties"] = props
        schema = top_level(schema, group, version["name"], kind)
        write(out_dir / file_name(group, version["name"], kind), schema)
        count += 1
    return count


def go_h1(zip_path: Path) -> str:
    """The Go checksum database's ``h1:`` hash of a module zip (dirhash Hash1: sha256 of the
    ``<sha256 hex>  <name>`` lines of its files, in name order)."""
    lines: list[tuple[str, str]] = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as fh:
                lines.append((info.filename, f"{hashlib.sha256(fh.read()).hexdigest()}  {info.filename}\n"))
    summary = "".join(line for _, line in sorted(lines)).encode()
    return "h1:" + base64.b64encode(hashlib.sha256(summary).digest()).decode()


def read_crd(where: str) -> dict[str, Any]:
    if "!" not in where:
        return json.loads(Path(where).read_text(encoding="utf-8"))
    zip_path, suffix = where.split("!", 1)
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.endswith("/" + suffix)]
        if len(names) != 1:
            raise SystemExit(f"k8s_schemas: {zip_path} has {len(names)} members ending in {suffix}")
        with zf.open(names[0]) as fh:
            return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubernetes-zip", type=Path, required=True,
                    help="k8s.io/kubernetes module zip from the Go module proxy")  # fmt: skip
    ap.add_argument("--version", required=True, help="its version, without v: 1.33.13")
    ap.add_argument("--out", type=Path, required=True, help="schema root (kubeconform -schema-location)")
    ap.add_argument("--crd-json", action="append", default=[],
                    help="a CustomResourceDefinition as JSON whose kinds are added: a file, "
                         "or ZIP!PATH-SUFFIX for a member of a module zip")  # fmt: skip
    ap.add_argument("--verify", action="append", default=[], metavar="ZIP=H1",
                    help="check a module zip against its go.sum hash (h1:...) first")  # fmt: skip
    args = ap.parse_args(argv)

    for item in args.verify:
        zip_path, expected = item.split("=", 1)
        actual = go_h1(Path(zip_path))
        if actual != expected:
            print(f"k8s_schemas: {zip_path}: checksum {actual}, expected {expected}", file=sys.stderr)
            return 1

    final = args.out / f"v{args.version}-standalone-strict"
    work = args.out / f".v{args.version}-standalone-strict.tmp"
    work.mkdir(parents=True, exist_ok=True)
    count = kinds_from_swagger(swagger_from_zip(args.kubernetes_zip), work)
    for crd in args.crd_json:
        count += kinds_from_crd(read_crd(crd), work)
    if final.exists():
        for old in final.iterdir():
            old.unlink()
        final.rmdir()
    os.replace(work, final)
    print(f"k8s_schemas: {count} kinds of Kubernetes {args.version} in {final}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

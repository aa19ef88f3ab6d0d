#!/usr/bin/env python3
"""Makes controller-gen's raw CRDs and webhook configurations installable for a local ASO.

What ASO's own build adds with aso-gen and kustomize, done per run: the labels ASO lists its CRDs
by (with --crd-management=none it only runs controllers for labelled CRDs), a conversion webhook
on every CRD (the served version converts to the storage hub), and webhook clientConfigs that
point at ASO's webhook server on loopback, trusting this run's CA.

    patch_crds.py RAW_DIR WEBHOOK_BASE_URL CA_PEM ASO_VERSION > manifests.yaml
"""
import base64
import pathlib
import sys

import yaml


def labelled(doc, version):
    labels = doc.setdefault("metadata", {}).setdefault("labels", {})
    labels["app.kubernetes.io/name"] = "azure-service-operator"
    labels["app.kubernetes.io/version"] = version
    return doc


def with_conversion(crd, base_url, ca_bundle):
    crd["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"url": f"{base_url}/convert", "caBundle": ca_bundle},
        },
    }
    return crd


def with_loopback_clients(config, base_url, ca_bundle):
    for webhook in config.get("webhooks", []):
        path = webhook["clientConfig"]["service"]["path"]
        webhook["clientConfig"] = {"url": f"{base_url}{path}", "caBundle": ca_bundle}
    return config


def main():
    raw, base_url, ca_file, version = sys.argv[1:5]
    ca_bundle = base64.b64encode(pathlib.Path(ca_file).read_bytes()).decode()
    docs = []
    for path in sorted(pathlib.Path(raw, "crd").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd:
                docs.append(labelled(with_conversion(crd, base_url, ca_bundle), version))
    for config in yaml.safe_load_all(pathlib.Path(raw, "webhook", "manifests.yaml").read_text()):
        if config:
            docs.append(labelled(with_loopback_clients(config, base_url, ca_bundle), version))
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
